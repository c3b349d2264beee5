"""A destination failing for 10 minutes under load (#31 item 2), in simulated time.

5,000 governed groups, each subscribed with the governor's filter to a same-account Kinesis stream, each writing a line a
second throughout (ingested ``INGESTION_LATENCY_MS`` later; the account keeps each line with its ingestion time and
FilterLogEvents answers from it, by timestamp, a page of at most ``limit`` at a time). The stream refuses every delivery
for 10 minutes. CloudWatch Logs delivers as localaws/delivery.py models it, a batch per group per second (a line each):
a batch to a disabled filter is skipped (no metric); else a batch the stream refuses fails (a DeliveryErrors datapoint
for its minute, the filter disabled ``DISABLED_FOR_S``); else it is delivered (ForwardedLogEvents). Each line keeps its
fate (delivered, failed, skipped) and each group its per-minute datapoints, which a fake of
governor.delivery_gaps.DeliveryMetrics answers from (ListMetrics and GetMetricData calls counted, 500 queries a call).

The real delivery-gaps function runs on it: its watch (governor.handlers.delivery_gaps.watch, the real GapWatch) every
WATCH_EVERY_MINUTES, and GAP_CONCURRENCY containers draining the gap queue with its batch handler (``consume``: the real
GapReplay and Replayer.gap), each paced by the handler's own pacer (GAP_QUOTA_SHARE / GAP_CONCURRENCY of each quota)
against an account answering ThrottlingException beyond the published quotas, writing into a recorder of the stream,
with an in-memory ledger (the watch's notices, the replay records), until the queue is empty.

Printed: lines AWS skipped (failed + skipped), lines replayed, lines lost (skipped and never in the stream: target 0),
lines in the stream twice (the subscription's and the replay's, bounded by the gaps' mayRepeat), the replay's lag (from
each skipped line's ingestion, from each gap's end), FilterLogEvents and GetMetricData calls per group, dead letters
(target 0), and the time until the last gap is replayed.

A run of batches that share a fate (all skipped until the filter's disabled period ends, all delivered until the stream
next refuses) is decided at once (``Delivery.advance``); ``Delivery.batch`` decides one, and the smoke test checks that
both give the same fates and datapoints.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import sys
from array import array
from bisect import bisect_right
from collections import Counter
from typing import Any

from botocore.exceptions import ClientError

from .burst import INGESTION_LATENCY_S, LATENCY_S, MEMBER, POLL_INTERVAL_S, REPLAY_DESTINATION, REPLAY_ROLE, QuotaAccount, SimQueue, _Client
from .common import bench_policy
from .cost_rows import _constant

from governor.aws import LogsGateway  # noqa: E402
from governor.aws.metrics import MAX_QUERIES  # noqa: E402
from governor.config import DEFAULT_API_QUOTAS_TPS  # noqa: E402
from governor.delivery_gaps import (DISABLED_MS, GAP_CONCURRENCY, GAP_QUOTA_SHARE, LOOKBACK_MS, MINUTE_MS,  # noqa: E402
                                    WATCH_EVERY_MINUTES, GapReplay, GapWatch, GapWindow)
from governor.drift import InMemoryLedger  # noqa: E402
from governor.handlers import delivery_gaps as gap_handler  # noqa: E402
from governor.replay import Replayer  # noqa: E402

from localaws.delivery import DISABLED_FOR_S  # noqa: E402
from localaws.lambda_runtime import LocalLambdaContext, handler_output_to  # noqa: E402
from localaws.virtual_time import VirtualTime  # noqa: E402

GROUPS = 5_000
#: The stream refuses from this virtual second, for this long (the groups write from second 0).
REFUSED_FROM_S = 330.0
REFUSED_FOR_S = 600.0
INGESTION_LATENCY_MS = int(INGESTION_LATENCY_S * 1000)
#: The gap queue and function as stacks/delivery_gaps.py makes them (its Durations, read by hand: the bench imports no CDK).
GAP_BATCH_SIZE = 5
GAP_TIMEOUT_S = 300.0
GAP_VISIBILITY_TIMEOUT_S = 1_800.0
GAP_MAX_RECEIVE_COUNT = _constant("delivery_gaps", "MAX_RECEIVE_COUNT")
#: ListMetrics answers up to 500 metrics a page (the CloudWatch API reference).
LIST_METRICS_PAGE = 500
FAILED, SKIPPED, DELIVERED = 0, 1, 2
FATES = ("failed", "skipped", "delivered")

assert DISABLED_FOR_S * 1000 == DISABLED_MS  # the model and the governor agree on the disabled period


class Lines:
    """Each group's lines: line k written at its phase + k seconds, ingested INGESTION_LATENCY_MS later (epoch ms)."""

    def __init__(self, names: list[str], epoch_ms: int) -> None:
        rng = random.Random(13)
        self.start_ms = {name: epoch_ms + rng.randrange(1000) for name in names}

    def timestamp_ms(self, group: str, k: int) -> int:
        return self.start_ms[group] + 1000 * k

    def ingestion_ms(self, group: str, k: int) -> int:
        return self.start_ms[group] + 1000 * k + INGESTION_LATENCY_MS

    def first_ingested_at(self, group: str, at_ms: float) -> int:
        """The first line ingested at ``at_ms`` or later."""
        return max(0, math.ceil((at_ms - self.start_ms[group] - INGESTION_LATENCY_MS) / 1000))

    def last_ingested_by(self, group: str, at_ms: int) -> int:
        """The last line ingested by ``at_ms`` (-1: none yet)."""
        return (at_ms - self.start_ms[group] - INGESTION_LATENCY_MS) // 1000


class Delivery:
    """The governor's filter on each group, delivered to as localaws.delivery.DeliveryModel decides each batch (a batch
    per group per second, the line of that second): disabled -> skipped; the stream refusing -> failed, DeliveryErrors,
    disabled DISABLED_FOR_S; else delivered, ForwardedLogEvents. Batches are decided in ingestion order, up to a time."""

    def __init__(self, lines: Lines, refused_from_ms: int, refused_until_ms: int) -> None:
        self.lines, self.refused_from_ms, self.refused_until_ms = lines, refused_from_ms, refused_until_ms
        groups = list(lines.start_ms)
        self.next_k = dict.fromkeys(groups, 0)
        self.disabled_until: dict[str, float] = dict.fromkeys(groups, float("-inf"))
        #: Each group's fates: runs [first line, last line + 1, fate], in order.
        self.runs: dict[str, list[list[int]]] = {g: [] for g in groups}
        self.errors: dict[str, dict[int, float]] = {g: {} for g in groups}
        self.forwarded: dict[str, dict[int, float]] = {g: {} for g in groups}
        #: The latest DeliveryErrors datapoint per group (epoch ms): ListMetrics' RecentlyActive.
        self.last_error_ms: dict[str, int] = {}

    def refusing(self, at_ms: int) -> bool:
        return self.refused_from_ms <= at_ms < self.refused_until_ms

    def _note(self, group: str, first: int, end: int, fate: int) -> None:
        runs = self.runs[group]
        if runs and runs[-1][2] == fate and runs[-1][1] == first:
            runs[-1][1] = end
        else:
            runs.append([first, end, fate])
        self.next_k[group] = end

    def batch(self, group: str, k: int) -> int:
        """One batch (line ``k``), decided as DeliveryModel.deliver decides it."""
        assert k == self.next_k[group]
        at_ms = self.lines.ingestion_ms(group, k)
        minute = at_ms - at_ms % MINUTE_MS
        if at_ms < self.disabled_until[group]:
            fate = SKIPPED
        elif self.refusing(at_ms):
            fate = FAILED
            self.errors[group][minute] = self.errors[group].get(minute, 0.0) + 1
            self.last_error_ms[group] = at_ms
            self.disabled_until[group] = at_ms + DISABLED_MS
        else:
            fate = DELIVERED
            self.forwarded[group][minute] = self.forwarded[group].get(minute, 0.0) + 1
        self._note(group, k, k + 1, fate)
        return fate

    def advance(self, now_ms: int) -> None:
        """Every batch ingested by ``now_ms``: a run of batches of one fate at once (the same fates as ``batch`` one by one)."""
        lines = self.lines
        for group in self.next_k:
            last = lines.last_ingested_by(group, now_ms)
            k = self.next_k[group]
            while k <= last:
                at_ms = lines.ingestion_ms(group, k)
                if at_ms < self.disabled_until[group]:
                    end = min(last + 1, lines.first_ingested_at(group, self.disabled_until[group]))
                    self._note(group, k, end, SKIPPED)
                elif self.refusing(at_ms):
                    self.batch(group, k)
                    end = k + 1
                else:
                    boundary = self.refused_from_ms if at_ms < self.refused_from_ms else None
                    end = last + 1 if boundary is None else min(last + 1, lines.first_ingested_at(group, boundary))
                    forwarded, step = self.forwarded[group], k
                    while step < end:
                        at = lines.ingestion_ms(group, step)
                        minute = at - at % MINUTE_MS
                        upto = min(end, lines.first_ingested_at(group, minute + MINUTE_MS))
                        forwarded[minute] = forwarded.get(minute, 0.0) + (upto - step)
                        step = upto
                    self._note(group, k, end, DELIVERED)
                k = end

    def fate(self, group: str, k: int) -> int:
        runs = self.runs[group]
        return runs[bisect_right([r[0] for r in runs], k) - 1][2]


class SimDeliveryMetrics:
    """governor.delivery_gaps.DeliveryMetrics over the model's datapoints (those published by the clock's now), with the
    calls CloudWatch would answer counted: ListMetrics pages of 500, GetMetricData 500 queries a call."""

    def __init__(self, delivery: Delivery, now_ms: Any) -> None:
        self.delivery, self.now_ms = delivery, now_ms
        self.calls: Counter[str] = Counter()

    def groups_with_errors(self, filter_name: str) -> list[tuple[str, str]]:
        now = self.now_ms()
        self.delivery.advance(now)
        found = sorted((g, "Kinesis") for g, at in self.delivery.last_error_ms.items() if at >= now - LOOKBACK_MS)
        self.calls["ListMetrics"] += max(1, math.ceil(len(found) / LIST_METRICS_PAGE))
        return found

    def per_minute(self, groups: list[tuple[str, str]], filter_name: str, *, start_ms: int, end_ms: int
                   ) -> dict[str, tuple[dict[int, float], dict[int, float]]]:
        self.delivery.advance(self.now_ms())
        self.calls["GetMetricData"] += math.ceil(2 * len(groups) / MAX_QUERIES)
        errors, forwarded = self.delivery.errors, self.delivery.forwarded
        return {g: ({m: v for m, v in errors[g].items() if start_ms <= m < end_ms},
                    {m: v for m, v in forwarded[g].items() if start_ms <= m < end_ms}) for g, _ in groups}


class GapAccount(QuotaAccount):
    def __init__(self, vt: VirtualTime, lines: Lines) -> None:
        super().__init__(vt, dict(DEFAULT_API_QUOTAS_TPS))
        self.lines = lines

    def client(self, who: str) -> Any:
        return _GapClient(self, who)


class _GapClient(_Client):
    account: GapAccount

    def filter_log_events(self, logGroupName: str, startTime: int | None = None, endTime: int | None = None, limit: int = 10_000,
                          nextToken: str | None = None, **_: Any) -> dict[str, Any]:
        """The group's lines ingested by now with a timestamp from ``startTime`` to ``endTime``, in timestamp order, at most
        ``limit`` a page (the next page's token: the line to go on from)."""
        def act() -> dict[str, Any]:
            if logGroupName not in self.account.groups:
                raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "gone"}}, "FilterLogEvents")
            lines, start = self.account.lines, self.account.lines.start_ms[logGroupName]
            now_ms = self.account.epoch_ms(self.account.vt.now)
            first = max(0, math.ceil(((startTime if startTime is not None else 0) - start) / 1000))
            if nextToken:
                first = max(first, int(nextToken))
            last = lines.last_ingested_by(logGroupName, now_ms)
            if endTime is not None:
                last = min(last, (endTime - start) // 1000)
            end = min(last + 1, first + limit)
            events = [{"eventId": f"{k:020d}", "logStreamName": "app", "timestamp": start + 1000 * k,
                       "ingestionTime": start + 1000 * k + INGESTION_LATENCY_MS, "message": f"line {k}"} for k in range(first, end)]
            return {"events": events, **({"nextToken": str(end)} if end <= last else {})}
        return self._attempts("FilterLogEvents", act)


class StreamRecorder:
    """The stream's side of the replay: per group, how many times each line arrived (by its event id) and when first."""

    def __init__(self, vt: VirtualTime) -> None:
        self.vt = vt
        self.counts: dict[str, bytearray] = {}
        self.first_at: dict[str, array] = {}
        self.last_at: dict[str, float] = {}
        self.events = self.records = 0

    def deliver(self, destination: Any, payload: bytes, *, partition_key: str) -> None:
        document = json.loads(gzip.decompress(payload))
        group, now = document["logGroup"], self.vt.now
        counts, first_at = self.counts.setdefault(group, bytearray()), self.first_at.setdefault(group, array("d"))
        for event in document["logEvents"]:
            k = int(event["id"])
            if k >= len(counts):
                grow = k + 1 - len(counts) + 1_000
                counts.extend(bytes(grow))
                first_at.extend([0.0] * grow)
            if not counts[k]:
                first_at[k] = now
            counts[k] = min(255, counts[k] + 1)
        self.events += len(document["logEvents"])
        self.records += 1
        self.last_at[group] = now


class GapQueue(SimQueue):
    """The gap queue as its event source mapping sees it: visibility timeout, receive count, redrive (stacks/delivery_gaps.py),
    taking a message's body as EventQueueSender.send does."""

    def __init__(self, vt: VirtualTime) -> None:
        super().__init__(vt, visibility_timeout_s=GAP_VISIBILITY_TIMEOUT_S, max_receive_count=GAP_MAX_RECEIVE_COUNT)
        self.bodies: list[str] = []

    def send(self, body: str) -> None:  # type: ignore[override]
        """EventQueueSender.send: a message on the queue."""
        self.bodies.append(body)
        self.visible.append({"messageId": f"gap-{len(self.bodies):06d}", "receiptHandle": f"rh-{len(self.bodies)}", "body": body,
                             "attributes": {"ApproximateReceiveCount": "0", "SentTimestamp": "0", "SenderId": "governor",
                                            "ApproximateFirstReceiveTimestamp": "0"},
                             "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                             "eventSourceARN": f"arn:aws:sqs:eu-west-1:{MEMBER}:delivery-gaps", "awsRegion": "eu-west-1"})


def _pick(values: list[float] | array, q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if len(values) else 0.0


def main(groups: int = GROUPS) -> dict[str, Any]:
    vt = VirtualTime()
    names = [f"/aws/lambda/team-{i:05d}" for i in range(groups)]
    epoch_s = QuotaAccount(vt, {}).epoch_s
    lines = Lines(names, int(epoch_s * 1000))
    account = GapAccount(vt, lines)
    for name in names:  # governed for a day, subscribed an hour ago
        account.groups[name] = {"class": "STANDARD", "retention": 30, "tags": {}, "created_s": -86_400.0,
                                "filter_created_s": {"log-group-governor": -3_600.0}, "filters": {"log-group-governor": REPLAY_DESTINATION},
                                "filter_roles": {"log-group-governor": REPLAY_ROLE}}
    policy = bench_policy(REPLAY_DESTINATION, destinationRoleArn=REPLAY_ROLE, replayWindowMinutes=180)
    refused_from_ms = account.epoch_ms(REFUSED_FROM_S)
    delivery = Delivery(lines, refused_from_ms, refused_from_ms + int(REFUSED_FOR_S * 1000))

    def wall() -> float:
        return account.epoch_s + vt.now

    metrics = SimDeliveryMetrics(delivery, lambda: int(wall() * 1000))
    ledger = InMemoryLedger(clock=wall)
    recorder = StreamRecorder(vt)
    queue = GapQueue(vt)
    watch = GapWatch(metrics, ledger, queue.send, filter_name=policy.config.filter_name, clock=wall)
    state: dict[str, Any] = {"all_queued": False, "watches": 0, "invocations": 0, "longest_s": 0.0, "timed_out": 0}

    def finished() -> bool:
        return state["all_queued"] and queue.drained

    def watcher() -> None:
        """The schedule: the handler's watch every WATCH_EVERY_MINUTES."""
        period, next_at = WATCH_EVERY_MINUTES * 60.0, WATCH_EVERY_MINUTES * 60.0
        while True:
            vt.sleep(max(0.0, next_at - vt.now))
            next_at += period
            if finished():
                return
            result = gap_handler.watch(gap_handler.GapParts(watch, None, queue))  # type: ignore[arg-type]
            state["watches"] += 1
            # The stream accepts again and no filter can be disabled any more: once no gap is open, every one is queued.
            if vt.now > REFUSED_FROM_S + REFUSED_FOR_S + DISABLED_FOR_S and result["open"] == 0 and queue.bodies:
                state["all_queued"] = True

    def container(number: int) -> Any:
        logs = LogsGateway(account.client("gaps"), pacer=gap_handler.pacer(policy.config.api_quotas_tps))
        replayer = Replayer(lambda: policy, logs, recorder, ledger, clock=wall)
        parts = gap_handler.GapParts(watch, GapReplay(replayer, logs.describe_log_groups, pull=None, clock=wall), queue)  # type: ignore[arg-type]

        def poll() -> None:
            while not finished():
                batch = queue.receive(GAP_BATCH_SIZE)
                if not batch:
                    vt.sleep(POLL_INTERVAL_S)
                    continue
                started = vt.now
                context = LocalLambdaContext(f"delivery-gaps-{number}", timeout_ms=int(GAP_TIMEOUT_S * 1000), clock=vt.monotonic,
                                             account=MEMBER, aws_request_id=f"req-{number}-{state['invocations']}")
                answer = gap_handler.consume({"Records": batch}, context, parts)
                state["invocations"] += 1
                took = vt.now - started
                state["longest_s"] = max(state["longest_s"], took)
                state["timed_out"] += took > GAP_TIMEOUT_S
                queue.settle(batch, {f["itemIdentifier"] for f in answer["batchItemFailures"]})
        return poll

    patched = {"wall_clock": wall, "clock": vt.monotonic, "sleep": vt.sleep}
    real = {name: getattr(gap_handler, name) for name in patched}
    for name, value in patched.items():
        setattr(gap_handler, name, value)
    try:
        with open(os.devnull, "w") as quiet, handler_output_to(quiet):
            vt.run([watcher] + [container(n) for n in range(GAP_CONCURRENCY)])
    finally:
        for name, value in real.items():
            setattr(gap_handler, name, value)
    delivery.advance(int(wall() * 1000))
    return _figures(groups, account, lines, delivery, metrics, recorder, queue, state, vt)


def _figures(groups: int, account: GapAccount, lines: Lines, delivery: Delivery, metrics: SimDeliveryMetrics, recorder: StreamRecorder,
             queue: GapQueue, state: dict[str, Any], vt: VirtualTime) -> dict[str, Any]:
    fates: Counter[int] = Counter()
    lost = twice = restored = 0
    line_lags = array("d")
    for group, runs in delivery.runs.items():
        counts, first_at = recorder.counts.get(group, bytearray()), recorder.first_at.get(group, array("d"))
        for first, end, fate in runs:
            fates[fate] += end - first
            arrived = counts[first:end] + bytes(max(0, end - max(first, len(counts))))
            if fate == DELIVERED:
                twice += len(arrived) - arrived.count(0)  # the subscription's, and the replay's again
                continue
            missing = arrived.count(0)
            lost += missing
            restored += len(arrived) - missing
            twice += len(arrived) - missing - arrived.count(1)
            epoch_ms = int(account.epoch_s * 1000)
            line_lags.extend(first_at[k] - (lines.ingestion_ms(group, k) - epoch_ms) / 1000 for k in range(first, min(end, len(counts)))
                             if counts[k])
    line_lags = array("d", sorted(line_lags))
    windows = {w.notice: w for w in map(GapWindow.from_body, queue.bodies)}
    gap_lags = sorted(recorder.last_at[w.log_group] - (w.until_ms / 1000 - account.epoch_s)
                      for w in windows.values() if w.log_group in recorder.last_at)
    calls = Counter({k.split(".", 1)[1]: v for k, v in account.served.items() if k.startswith("gaps.")})
    undelivered = fates[FAILED] + fates[SKIPPED]
    figures = {
        "groups": groups, "lines": sum(fates.values()), "failed": fates[FAILED], "skipped": fates[SKIPPED], "undelivered": undelivered,
        "gaps": len(windows), "replayed": recorder.events, "restored": restored, "lost": lost, "twice": twice,
        "may_repeat": sum(w.may_repeat for w in windows.values()), "errors_counted": sum(w.errors for w in windows.values()),
        "line_lag_s": {"p50": _pick(line_lags, 0.5), "p99": _pick(line_lags, 0.99)},
        "gap_lag_s": {"p50": _pick(gap_lags, 0.5), "p99": _pick(gap_lags, 0.99)},
        "calls_per_group": {op: n / groups for op, n in sorted(calls.items())},
        "filter_log_events_per_group": calls["FilterLogEvents"] / groups,
        "get_metric_data_per_group": metrics.calls["GetMetricData"] / groups, "metric_calls": dict(metrics.calls),
        "throttles": sum(v for k, v in account.throttled.items() if k.startswith("gaps.")),
        "dead_lettered": len(queue.dead_lettered), "watches": state["watches"], "invocations": state["invocations"],
        "timed_out": state["timed_out"], "longest_invocation_s": state["longest_s"],
        "last_replayed_s": queue.last_deleted_at, "after_refusal_s": queue.last_deleted_at - (REFUSED_FROM_S + REFUSED_FOR_S),
    }
    share = DEFAULT_API_QUOTAS_TPS["FilterLogEvents"] * GAP_QUOTA_SHARE
    print(f"A destination failing for {REFUSED_FOR_S / 60:.0f} minutes under load: {groups:,} governed groups writing a line a second "
          f"to a same-account Kinesis stream, simulated ({LATENCY_S * 1000:.0f} ms per call; the watch every {WATCH_EVERY_MINUTES} min; "
          f"{GAP_CONCURRENCY} replaying containers at {GAP_QUOTA_SHARE:.0%} of each quota, FilterLogEvents {share:.1f}/s in all)")
    print(f"  lines skipped by AWS: {undelivered:,} ({fates[FAILED]:,} failed, {fates[SKIPPED]:,} skipped while disabled) of "
          f"{figures['lines']:,} written, in {len(windows):,} gaps; replayed {recorder.events:,} lines, lost {lost:,} (target 0), "
          f"sent twice {twice:,} (bound: the gaps' mayRepeat {figures['may_repeat']:,})")
    print(f"  replay lag from each skipped line's ingestion p50 {figures['line_lag_s']['p50'] / 60:.1f} min, p99 "
          f"{figures['line_lag_s']['p99'] / 60:.1f} min; from each gap's end p50 {figures['gap_lag_s']['p50'] / 60:.1f} min, p99 "
          f"{figures['gap_lag_s']['p99'] / 60:.1f} min")
    print(f"  per group: FilterLogEvents {figures['filter_log_events_per_group']:.2f}, GetMetricData "
          f"{figures['get_metric_data_per_group']:.3f} ({metrics.calls['GetMetricData']:,} calls in {state['watches']} watches; ListMetrics "
          f"{metrics.calls['ListMetrics']:,}); API calls per group: {', '.join(f'{op} {n:.2f}' for op, n in figures['calls_per_group'].items())}; "
          f"throttles {figures['throttles']}")
    print(f"  dead letters: {len(queue.dead_lettered)} (target 0); invocations {state['invocations']:,}, timed out {state['timed_out']} "
          f"(target 0), longest {state['longest_s']:.0f} s of {GAP_TIMEOUT_S:.0f} s; the last gap replayed at "
          f"{queue.last_deleted_at / 60:.1f} min, {figures['after_refusal_s'] / 60:.1f} min after the stream accepted again")
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else GROUPS)

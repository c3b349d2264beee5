"""5,000 CreateLogGroup events within one minute, at the published quotas, in simulated time.

The real event path: EventBridge puts each record into the two handlers' queues; each queue is
drained by at most ``eventHandlerConcurrency`` containers running the real batch handler
(``handle``: partial batch responses, the time margin, pacing at the event share, the guard, the
policy core) against an in-memory CloudWatch Logs that answers ThrottlingException beyond each
operation's published quota, as AWS does, and retries like botocore's standard mode. Another tool in
the account wants 70% of both write quotas throughout. Printed: time until the last group is
governed and how it compares with the time its writes alone need at the share it can get (target 1.2x: a
batch's groups are looked up at once, #20 item 4), look-ups per group (target below 0.1 of each), peak
concurrency, API calls per group, throttles, invocations that ran out of time, and dead-lettered messages
(must be 0). Each group writes an event a second from its first: the organization's destination is in another
account, which the member never writes to; its subscribe handler asks the archive over the fleet bus, and the
archive's real pull (lambdas/governor/archive_pull.py: the intake, the FIFO batch, the Replayer reading through the member's
role at PULL_QUOTA_SHARE of the member's quotas, which the member's own calls share) writes the lines before each
filter into the archive's stream (#31). Printed: those lines, lost and sent twice (targets 0), and the pull's lag
from each group's creation to its first line in the archive (p50, p99).

Two more scenarios (#20) send the burst to a same-account Kinesis stream while each new group writes an event a
second from its first: without the replay, every line ingested before the governor's filter is lost; with it,
the real subscribe handler asks the replay function (governor.handlers.delivery_gaps, its containers paced at
GAP_QUOTA_SHARE), which reads the new filter's creationTime and replays them: off the subscription path, so the
subscribe handler reads each group's filters once and the writes set its pace (#31 item 3). Printed: the lines before
the filter, lost and delivered twice (targets 0), FilterLogEvents calls per subscribed group, and the replay's lag from
the group's creation and from its filter (p50, p99).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import sys
from collections import Counter, deque
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from botocore.exceptions import ClientError

from .common import bench_policy
from .cost_rows import billed_ms, cost_row, function_memory_mib

from governor.aws import DEFAULT_RETRY_ATTEMPTS, LogsGateway, Pacer, TaggingGateway  # noqa: E402
from governor.config import DEFAULT_API_QUOTAS_TPS, DEFAULT_EVENT_QUOTA_SHARE  # noqa: E402
from governor.drift import DriftGuard, InMemoryLedger  # noqa: E402
from governor.handlers import create_log_group as handlers  # noqa: E402
from governor.handlers.create_log_group import EventParts, handle  # noqa: E402
from governor.replay import Replayer  # noqa: E402
from governor.delivery_gaps import GapReplay  # noqa: E402
from governor.gap_settings import GAP_CONCURRENCY  # noqa: E402
from governor.handlers import delivery_gaps as gap_handler  # noqa: E402
from governor import archive_pull as pull  # noqa: E402
from governor.handlers.archive_pull import consume as pull_consume  # noqa: E402
from governor.pacing import (  # noqa: E402
    DEFAULT_EVENT_CONCURRENCY,
    EVENT_BATCH_SIZE,
    EVENT_HANDLER_TIMEOUT_S,
    EVENT_MAX_RECEIVE_COUNT,
    EVENT_VISIBILITY_TIMEOUT_S,
    event_handler_rates_tps,
)
from governor.service import Aspect, Governor  # noqa: E402

#: The two event handlers' aspects (the removal aspect is the uninstall's, not an event handler's).
EVENT_ASPECTS = (Aspect.SUBSCRIPTION, Aspect.RETENTION)
from localaws.events import create_log_group_event, sqs_batch  # noqa: E402
from localaws.lambda_runtime import LocalLambdaContext, handler_output_to  # noqa: E402
from localaws.virtual_time import VirtualTime  # noqa: E402

GROUPS = 5_000
ARRIVAL_WINDOW_S = 60.0
LATENCY_S = 0.03
#: The organization's archive: its CloudWatch Logs destination and its stream, in the central account (#31).
DESTINATION = "arn:aws:logs:eu-west-1:111111111111:destination:log-group-governor-archive"
ARCHIVE_STREAM = "arn:aws:kinesis:eu-west-1:111111111111:stream/log-archive"
MEMBER = "123456789012"
FOREIGN = "arn:aws:lambda:eu-west-1:123456789012:function:vendor-forwarder"
OPT_OUT = {"log-group-governor:opt-out": "true"}
#: The neighbour: another tool in the account, wanting this share of each write quota (the rest of
#: it; in the second scenario more than the governor leaves, so the account throttles).
NEIGHBOUR_SHARE = 0.7
GREEDY_NEIGHBOUR_SHARE = 0.9
NEIGHBOUR_OPERATIONS = ("PutSubscriptionFilter", "PutRetentionPolicy")
POLL_INTERVAL_S = 1.0
#: The look-ups a group costs (#20, item 4: in bulk, one of each per batch).
LOOKUPS = ("DescribeLogGroups", "ListTagsForResource", "GetResources")
#: The replay scenario (#20): a same-account Kinesis destination, each new group writing an event a second from its
#: first second, each event ingested this long after it is written.
REPLAY_DESTINATION = "arn:aws:kinesis:eu-west-1:123456789012:stream/team-logs"
REPLAY_ROLE = "arn:aws:iam::123456789012:role/CWLtoKinesisRole"
INGESTION_LATENCY_S = 0.2


class ReplayRecorder:
    """The destination's side of the replay: which event ids arrived, when, for which group."""

    def __init__(self, vt: VirtualTime) -> None:
        self.vt = vt
        self.arrived: dict[str, Counter[str]] = {}
        self.first_at: dict[str, float] = {}

    def deliver(self, destination: Any, payload: bytes, *, partition_key: str) -> None:
        document = json.loads(gzip.decompress(payload))
        self.arrived.setdefault(document["logGroup"], Counter()).update(e["id"] for e in document["logEvents"])
        self.first_at.setdefault(document["logGroup"], self.vt.now)


class ArchivePull:
    """The organization's archive in the simulation (#31), running lambdas/governor/archive_pull.py for real: the fleet bus hands the
    member's request to the function's intake (as EventBridge does, with the sender's account), which queues it on the
    FIFO queue under the member's account; one consumer at a time takes the member's batches (the FIFO group) and pulls
    each through the member's CloudWatch Logs (its quotas, shared with the member's own calls), paced at PULL_QUOTA_SHARE,
    writing into the archive's stream (the recorder)."""

    def __init__(self, vt: VirtualTime, account: QuotaAccount, recorder: ReplayRecorder) -> None:
        self.vt, self.account = vt, account
        self.queue: deque[dict[str, Any]] = deque()
        self.requests = 0
        rates = {op: DEFAULT_API_QUOTAS_TPS[op] * pull.PULL_QUOTA_SHARE for op in pull.PULL_OPERATIONS}
        member_logs = LogsGateway(account.client("archive"), pacer=Pacer(rates, clock=vt.monotonic, sleep=vt.sleep))
        self.puller = pull.ArchivePuller(region="eu-west-1", destination_arn=DESTINATION, stream=pull.stream_destination(ARCHIVE_STREAM),
                                         member_logs=lambda member: member_logs, writer=recorder,
                                         ledger=InMemoryLedger(clock=lambda: account.epoch_s + vt.now), send=self._send,
                                         clock=lambda: account.epoch_s + vt.now)
        self.invocations = 0

    def _send(self, body: str, group_id: str, deduplication_id: str) -> None:
        self.queue.append({"messageId": deduplication_id[:16] + str(len(self.queue)), "body": body, "attributes": {"MessageGroupId": group_id}})

    def request_replay(self, log_group: str, filter_name: str, bounds: dict[str, int] | None = None, *,
                       requested_at_ms: int | None = None) -> None:
        """The member's FleetBus.request_replay: the event EventBridge hands the archive's rule target."""
        self.requests += 1
        self.puller.intake({"version": "0", "id": f"req-{self.requests}", "source": "log-group-governor", "account": MEMBER,
                            "detail-type": "log-group-governor replay request", "region": "eu-west-1",
                            "detail": {"logGroup": log_group, "filterName": filter_name, **(bounds or {}),
                                       **({"requestedAtMs": requested_at_ms} if requested_at_ms is not None else {})}})

    def consumer(self, finished: Any) -> Any:
        def poll() -> None:
            while not (finished() and not self.queue):
                if not self.queue:
                    self.vt.sleep(POLL_INTERVAL_S)
                    continue
                batch = [self.queue.popleft() for _ in range(min(10, len(self.queue)))]
                context = LocalLambdaContext("archive-replay", timeout_ms=300_000, clock=self.vt.monotonic)
                answer = pull_consume(batch, context, self.puller)
                self.invocations += 1
                failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
                self.queue.extendleft(reversed([r for r in batch if r["messageId"] in failed]))  # FIFO: they come back first
        return poll


class QuotaAccount:
    """CloudWatch Logs in memory: token buckets at the published quotas (one second of burst), a
    latency per attempt, and botocore's standard retry loop in front (so the gateway's retry hook
    sees every throttled attempt, as it does with a real client)."""

    def __init__(self, vt: VirtualTime, quotas: dict[str, float]) -> None:
        self.vt = vt
        self.quotas = quotas
        self.tokens = {op: tps for op, tps in quotas.items()}
        self.updated = {op: 0.0 for op in quotas}
        self.groups: dict[str, dict[str, Any]] = {}
        self.served: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.random = random.Random(7)
        #: The simulation's epoch: virtual second 0 at wall-clock time (creation and ingestion times are epoch ms).
        self.epoch_s = 1_796_371_200.0

    def epoch_ms(self, at_s: float) -> int:
        return int((self.epoch_s + at_s) * 1000)

    def take(self, operation: str) -> bool:
        now, rate = self.vt.now, self.quotas.get(operation)
        if rate is None:
            return True
        self.tokens[operation] = min(rate, self.tokens[operation] + (now - self.updated[operation]) * rate)
        self.updated[operation] = now
        if self.tokens[operation] >= 1:
            self.tokens[operation] -= 1
            return True
        return False

    def client(self, who: str) -> Any:
        return _Client(self, who)


@dataclass
class _Events:
    hooks: list[Any] = field(default_factory=list)

    def register_first(self, name: str, hook: Any) -> None:
        self.hooks.append(hook)


class _Client:
    def __init__(self, account: QuotaAccount, who: str) -> None:
        self.account, self.who = account, who
        self.meta = SimpleNamespace(events=_Events())
        self.throttles = 0

    def _attempts(self, operation: str, act: Any) -> Any:
        for attempt in range(DEFAULT_RETRY_ATTEMPTS):
            self.account.vt.sleep(LATENCY_S)
            if self.account.take(operation):
                self.account.served[f"{self.who}.{operation}"] += 1
                return act()
            self.account.throttled[f"{self.who}.{operation}"] += 1
            answer = (None, {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}})
            verdicts = [hook(response=answer, operation=SimpleNamespace(name=operation)) for hook in self.meta.events.hooks]
            if False in verdicts or attempt == DEFAULT_RETRY_ATTEMPTS - 1:
                break
            self.account.vt.sleep(self.account.random.random() * min(2 ** attempt, 20))  # botocore standard backoff
        raise ClientError(answer[1], operation)

    def _described(self, name: str) -> list[dict[str, Any]]:
        group = self.account.groups.get(name)
        if group is None:
            return []
        return [{"logGroupName": name, "arn": f"{_arn(name)}:*", "logGroupClass": group["class"],
                 "creationTime": self.account.epoch_ms(group["created_s"]), **({"retentionInDays": group["retention"]} if group["retention"] else {})}]

    def describe_log_groups(self, logGroupNamePrefix: str | None = None, limit: int = 50, logGroupIdentifiers: list[str] | None = None,
                            **_: Any) -> dict[str, Any]:
        names = logGroupIdentifiers if logGroupIdentifiers is not None else [logGroupNamePrefix]
        return self._attempts("DescribeLogGroups", lambda: {"logGroups": [g for n in names for g in self._described(n)]})

    def get_resources(self, ResourceARNList: list[str], **_: Any) -> dict[str, Any]:
        """The tagging API: the listed groups that carry tags (its quota is not CloudWatch Logs': not limited here)."""
        self.account.served[f"{self.who}.GetResources"] += 1
        self.account.vt.sleep(LATENCY_S)
        named = {_arn(n): g for n, g in self.account.groups.items()}
        return {"ResourceTagMappingList": [{"ResourceARN": a, "Tags": [{"Key": k, "Value": v} for k, v in named[a]["tags"].items()]}
                                           for a in ResourceARNList if a in named and named[a]["tags"]], "PaginationToken": ""}

    def list_tags_for_resource(self, resourceArn: str) -> dict[str, Any]:
        name = resourceArn.split(":log-group:", 1)[1]
        return self._attempts("ListTagsForResource", lambda: {"tags": dict(self.account.groups[name]["tags"])})

    def describe_subscription_filters(self, logGroupName: str, **_: Any) -> dict[str, Any]:
        group = self.account.groups[logGroupName]
        return self._attempts("DescribeSubscriptionFilters", lambda: {"subscriptionFilters": [
            {"filterName": n, "destinationArn": d, "filterPattern": "", "creationTime": self.account.epoch_ms(group["filter_created_s"].get(n, 0.0)),
             **({"roleArn": group["filter_roles"][n]} if n in group.get("filter_roles", {}) else {})}
            for n, d in group["filters"].items()]})

    def filter_log_events(self, logGroupName: str, **_: Any) -> dict[str, Any]:
        """The group's events ingested by now (one a second from its first, WRITE_LATENCY_S to ingest): one page."""
        def act() -> dict[str, Any]:
            created, now = self.account.groups[logGroupName]["created_s"], self.account.vt.now
            count = int(max(0.0, now - created - INGESTION_LATENCY_S)) + 1 if now >= created + INGESTION_LATENCY_S else 0
            return {"events": [{"eventId": f"{k:020d}", "logStreamName": "s", "timestamp": self.account.epoch_ms(created + k),
                                "ingestionTime": self.account.epoch_ms(created + k + INGESTION_LATENCY_S), "message": f"line {k}"}
                               for k in range(count)]}
        return self._attempts("FilterLogEvents", act)

    def put_subscription_filter(self, logGroupName: str, filterName: str, destinationArn: str, roleArn: str | None = None,
                                **_: Any) -> dict[str, Any]:
        def act() -> dict[str, Any]:
            filters = self.account.groups[logGroupName]["filters"]
            if filterName not in filters and len(filters) >= 2:
                raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "full"}}, "PutSubscriptionFilter")
            filters[filterName] = destinationArn
            if roleArn:  # DescribeSubscriptionFilters answers it, as AWS does
                self.account.groups[logGroupName].setdefault("filter_roles", {})[filterName] = roleArn
            self.account.groups[logGroupName]["filter_created_s"].setdefault(filterName, self.account.vt.now)
            return {}
        return self._attempts("PutSubscriptionFilter", act)

    def put_retention_policy(self, logGroupName: str, retentionInDays: int) -> dict[str, Any]:
        def act() -> dict[str, Any]:
            self.account.groups[logGroupName]["retention"] = retentionInDays
            return {}
        return self._attempts("PutRetentionPolicy", act)


class SimQueue:
    """An SQS queue as an event source mapping sees it: visibility timeout, receive count, redrive."""

    def __init__(self, vt: VirtualTime, *, visibility_timeout_s: float = EVENT_VISIBILITY_TIMEOUT_S,
                 max_receive_count: int = EVENT_MAX_RECEIVE_COUNT) -> None:
        self.vt, self.visibility_timeout_s, self.max_receive_count = vt, visibility_timeout_s, max_receive_count
        self.visible: deque[dict[str, Any]] = deque()
        self.hidden: dict[str, tuple[float, dict[str, Any]]] = {}
        self.dead_lettered: list[dict[str, Any]] = []
        self.last_deleted_at = 0.0

    def send(self, record: dict[str, Any]) -> None:
        self.visible.append(record)

    def receive(self, limit: int) -> list[dict[str, Any]]:
        for message_id, (until, record) in list(self.hidden.items()):
            if until <= self.vt.now:
                del self.hidden[message_id]
                self.visible.append(record)
        batch = []
        while self.visible and len(batch) < limit:
            record = self.visible.popleft()
            count = int(record["attributes"]["ApproximateReceiveCount"]) + 1
            if count > self.max_receive_count:
                self.dead_lettered.append(record)
                continue
            record["attributes"]["ApproximateReceiveCount"] = str(count)
            self.hidden[record["messageId"]] = (self.vt.now + self.visibility_timeout_s, record)
            batch.append(record)
        return batch

    def settle(self, batch: list[dict[str, Any]], failed: set[str]) -> None:
        for record in batch:
            if record["messageId"] not in failed:
                self.hidden.pop(record["messageId"], None)
                self.last_deleted_at = self.vt.now

    @property
    def drained(self) -> bool:
        return not self.visible and not self.hidden


def _arn(name: str) -> str:
    return f"arn:aws:logs:eu-west-1:123456789012:log-group:{name}"


def _group_kind(i: int) -> str:
    return ("opted-out" if i % 20 == 3 else "infrequent-access" if i % 20 == 7 else "full" if i % 20 == 11 else "plain")


def _as_the_policy_says(kind: str, group: dict[str, Any]) -> bool:
    """Plain groups: subscribed, 30 days; opted out: untouched; Infrequent Access and full groups:
    30 days and no filter of ours (no subscription possible / a conflict)."""
    ours = "log-group-governor" in group["filters"]
    if kind == "opted-out":
        return group["retention"] is None and not ours
    return group["retention"] == 30 and ours == (kind == "plain")


def main(groups: int = GROUPS, *, concurrency: int = DEFAULT_EVENT_CONCURRENCY, share: float = DEFAULT_EVENT_QUOTA_SHARE,
         neighbour_share: float = NEIGHBOUR_SHARE, replay: bool | None = None) -> dict[str, Any]:
    """``replay``: None, the burst to the organization's cross-account destination; True or False, to a same-account
    Kinesis stream with the replay on or off (replayWindowMinutes null), each group writing from its first second."""
    vt = VirtualTime()
    account = QuotaAccount(vt, dict(DEFAULT_API_QUOTAS_TPS))
    if replay is None:
        policy = bench_policy(DESTINATION)
    else:
        policy = bench_policy(REPLAY_DESTINATION, destinationRoleArn=REPLAY_ROLE, replayWindowMinutes=180 if replay else None)
    recorder = ReplayRecorder(vt)
    ledger = InMemoryLedger(clock=lambda: account.epoch_s + vt.now)  # the handlers' wall clock in this simulation
    archive = ArchivePull(vt, account, recorder) if replay is None else None
    queues = {aspect: SimQueue(vt) for aspect in EVENT_ASPECTS}
    from .delivery_gap import GAP_BATCH_SIZE, GAP_TIMEOUT_S, GapQueue  # (it imports this module's account)
    #: The replay function's queue (#31 item 3): the subscribe handler asks there, the replay function reads and sends.
    lane = GapQueue(vt) if replay else None
    arrivals = sorted(random.Random(11).uniform(0, ARRIVAL_WINDOW_S) for _ in range(groups))
    stats: dict[str, Any] = {"peak": Counter(), "invocations": 0, "timed_out": 0, "longest_s": 0.0, "done": False, "billed_ms": 0,
                             "replay_invocations": 0, "replay_billed_ms": 0}
    running: Counter[Aspect] = Counter()

    def deploy() -> None:
        """The burst: a group is created, CloudTrail's record reaches both queues."""
        for i, at in enumerate(arrivals):
            vt.sleep(max(0.0, at - vt.now))
            name, kind = f"/aws/lambda/burst-{i:05d}", _group_kind(i)
            account.groups[name] = {"class": "INFREQUENT_ACCESS" if kind == "infrequent-access" else "STANDARD", "retention": None,
                                    "tags": OPT_OUT if kind == "opted-out" else {}, "created_s": vt.now, "filter_created_s": {},
                                    "filters": {"vendor-a": FOREIGN, "vendor-b": FOREIGN} if kind == "full" else {}}
            [record] = sqs_batch([create_log_group_event(name)])["Records"]
            for queue in queues.values():
                queue.send(json.loads(json.dumps(record)))
        stats["done"] = True

    def container(aspect: Aspect, number: int) -> Any:
        rates = event_handler_rates_tps(DEFAULT_API_QUOTAS_TPS, share, aspect.value, concurrency)
        client = account.client("governor")
        governor = Governor(policy, LogsGateway(client, pacer=Pacer(rates, clock=vt.monotonic, sleep=vt.sleep)), tagging=TaggingGateway(client))
        parts = EventParts(governor, DriftGuard(policy.config, ledger, clock=vt.monotonic),
                           replay_queue=lane if aspect is Aspect.SUBSCRIPTION else None,
                           pull=archive if aspect is Aspect.SUBSCRIPTION else None)
        queue = queues[aspect]

        def poll() -> None:
            while not (stats["done"] and queue.drained):
                batch = queue.receive(EVENT_BATCH_SIZE)
                if not batch:
                    vt.sleep(POLL_INTERVAL_S)
                    continue
                stats["peak"][aspect.value] = max(stats["peak"][aspect.value], running[aspect] + 1)
                running[aspect] += 1
                started = vt.now
                context = LocalLambdaContext(f"{aspect.value}-{number}", timeout_ms=int(EVENT_HANDLER_TIMEOUT_S * 1000), clock=vt.monotonic)
                result = handle({"Records": batch}, context, lambda: parts, aspect)
                running[aspect] -= 1
                stats["invocations"] += 1
                took = vt.now - started
                stats["billed_ms"] += billed_ms(took)  # Lambda bills the wall time, here simulated: calls and the pacer's waits
                stats["longest_s"] = max(stats["longest_s"], took)
                stats["timed_out"] += took > EVENT_HANDLER_TIMEOUT_S
                queue.settle(batch, {f["itemIdentifier"] for f in result["batchItemFailures"]})
        return poll

    def replaying(number: int) -> Any:
        """A container of the replay function (governor.handlers.delivery_gaps), draining the replay queue with its batch
        handler, paced by its own pacer (GAP_QUOTA_SHARE of each quota, split among GAP_CONCURRENCY containers)."""
        assert lane is not None
        wall = lambda: account.epoch_s + vt.now  # noqa: E731
        logs = LogsGateway(account.client("governor"), pacer=gap_handler.pacer(DEFAULT_API_QUOTAS_TPS))
        parts = gap_handler.GapParts(None, GapReplay(Replayer(lambda: policy, logs, recorder, ledger, clock=wall), logs.describe_log_groups,  # type: ignore[arg-type]
                                                     clock=wall), lane)  # type: ignore[arg-type]

        def poll() -> None:
            while not (stats["done"] and all(q.drained for q in queues.values()) and lane.drained):
                batch = lane.receive(GAP_BATCH_SIZE)
                if not batch:
                    vt.sleep(POLL_INTERVAL_S)
                    continue
                started = vt.now
                context = LocalLambdaContext(f"replay-{number}", timeout_ms=int(GAP_TIMEOUT_S * 1000), clock=vt.monotonic,
                                             account=MEMBER)
                answer = gap_handler.consume({"Records": batch}, context, parts)
                stats["replay_invocations"] += 1
                stats["replay_billed_ms"] += billed_ms(vt.now - started)
                lane.settle(batch, {f["itemIdentifier"] for f in answer["batchItemFailures"]})
        return poll

    def neighbour(operation: str) -> Any:
        client = account.client("neighbour")
        interval = 1.0 / (DEFAULT_API_QUOTAS_TPS[operation] * neighbour_share)

        def work() -> None:
            next_at = 0.0
            while not (stats["done"] and all(q.drained for q in queues.values())):
                try:
                    client._attempts(operation, lambda: {})
                except ClientError:
                    pass
                next_at += interval
                vt.sleep(max(0.0, next_at - vt.now))
        return work

    actors = [deploy] + [container(a, n) for a in EVENT_ASPECTS for n in range(concurrency)] + [neighbour(op) for op in NEIGHBOUR_OPERATIONS]
    if archive is not None:
        actors.append(archive.consumer(lambda: stats["done"] and all(q.drained for q in queues.values())))
    if lane is not None:
        actors += [replaying(n) for n in range(GAP_CONCURRENCY)]
    real_wall_clock, handlers.wall_clock = handlers.wall_clock, lambda: account.epoch_s + vt.now  # the handlers' wall clock: virtual
    patched = {"wall_clock": lambda: account.epoch_s + vt.now, "clock": vt.monotonic, "sleep": vt.sleep}
    real_gap = {name: getattr(gap_handler, name) for name in patched}
    for name, value in patched.items():
        setattr(gap_handler, name, value)
    try:
        with open(os.devnull, "w") as quiet, handler_output_to(quiet):
            vt.run(actors)
    finally:
        handlers.wall_clock = real_wall_clock
        for name, value in real_gap.items():
            setattr(gap_handler, name, value)

    governed = sum(1 for name, g in account.groups.items() if _as_the_policy_says(_group_kind(int(name[-5:])), g))
    calls = Counter({k.split(".", 1)[1]: v for k, v in account.served.items() if k.startswith("governor.")})
    throttles = sum(v for k, v in account.throttled.items() if k.startswith("governor."))
    last_s = max(q.last_deleted_at for q in queues.values())
    neighbour_rate = {op: account.served[f"neighbour.{op}"] / vt.now for op in NEIGHBOUR_OPERATIONS}
    # The time the writes alone need at the share the governor can get (the event share, or what a greedier neighbour
    # leaves of the write quotas): each write operation belongs to one handler.
    got = min(share, 1.0 - neighbour_share)
    write_bound_s = max(calls[op] / (DEFAULT_API_QUOTAS_TPS[op] * got) for op in NEIGHBOUR_OPERATIONS)
    figures = {
        "groups": groups, "governed": governed, "last_governed_s": last_s, "peak": dict(stats["peak"]),
        "invocations": stats["invocations"], "timed_out": stats["timed_out"], "longest_invocation_s": stats["longest_s"],
        "calls_per_group": {op: n / groups for op, n in sorted(calls.items())}, "throttles": throttles,
        "dead_lettered": sum(len(q.dead_lettered) for q in queues.values()),
        "governor_write_tps": {op: calls[op] / last_s for op in NEIGHBOUR_OPERATIONS},
        "neighbour_tps": neighbour_rate,
        "neighbour_throttles": sum(v for k, v in account.throttled.items() if k.startswith("neighbour.")),
        "write_bound_s": write_bound_s, "bound_ratio": last_s / write_bound_s,
        "lookups_per_group": {op: calls[op] / groups for op in LOOKUPS},
        **_replay_figures(account, recorder, groups, caller="archive" if archive is not None else "governor",
                          window_minutes=policy.config.replay_window_minutes),
        "pull_invocations": archive.invocations if archive is not None else 0,
        "billed_ms": stats["billed_ms"],
    }
    # Lambda's bill: each invocation's simulated duration (its calls and the pacer's waits), both handlers at their memory.
    cost = cost_row("governor Lambda (the event handlers)", per=1_000, unit="new groups", counted=groups,
                    invocations=stats["invocations"], billed_ms_total=stats["billed_ms"], memory_mib=function_memory_mib()["event_handler"],
                    how="invocations and durations simulated, memory as the stack sets it")
    figures["cost"] = cost.as_dict()
    print(f"A burst of {groups:,} CreateLogGroup events within {ARRIVAL_WINDOW_S:.0f} s at the published quotas, simulated "
          f"({LATENCY_S * 1000:.0f} ms per call; event share {share:.0%} of each quota; {concurrency} containers per handler; "
          f"another tool wanting {neighbour_share:.0%} of each write quota)")
    print(f"  governed as the policy says: {governed:,} of {groups:,}; the last at {last_s / 60:.1f} min, "
          f"{figures['bound_ratio']:.2f}x the {write_bound_s / 60:.1f} min its writes need at the {got:.0%} it can get (target 1.2x)")
    print(f"  look-ups per group: {', '.join(f'{op} {n:.3f}' for op, n in figures['lookups_per_group'].items())} (target below 0.1 each)")
    print(f"  dead-lettered messages: {figures['dead_lettered']} (target 0); invocations: {stats['invocations']}, "
          f"timed out: {stats['timed_out']} (target 0), longest {stats['longest_s']:.0f} s of {EVENT_HANDLER_TIMEOUT_S:.0f} s")
    print(f"  peak concurrency per handler: {dict(stats['peak'])}")
    print(f"  {cost.line()}")
    print(f"  API calls per group: {', '.join(f'{op} {n:.2f}' for op, n in figures['calls_per_group'].items())}")
    print(f"  governor's write rate: {', '.join(f'{op} {r:.2f}/s' for op, r in figures['governor_write_tps'].items())} "
          f"(quota 5/s each); throttles absorbed: {throttles}")
    print(f"  the other tool got: {', '.join(f'{op} {r:.2f}/s' for op, r in neighbour_rate.items())} of "
          f"{DEFAULT_API_QUOTAS_TPS['PutRetentionPolicy'] * neighbour_share:.2f}/s wanted; its throttled attempts: {figures['neighbour_throttles']}")
    if replay is None:
        lag = figures["replay_lag_s"]
        print(f"  to the organization's archive in another account, pulled by the archive (#31): lines written before the filter "
              f"{figures['before_filter']:,}, lost {figures['lost']:,} (target 0; of those, in groups filtered more than replayWindowMinutes "
              f"({policy.config.replay_window_minutes}) after their creation, history by that bound: {figures['lost_beyond_window']:,}), "
              f"sent twice {figures['twice']} (target 0); "
              f"the archive's FilterLogEvents per subscribed group {figures['filter_log_events_per_group']:.2f} (the member's quota, "
              f"at {pull.PULL_QUOTA_SHARE:.0%}); replay lag from the group's creation p50 {lag['p50']:.0f} s, p99 {lag['p99']:.0f} s "
              f"(from its filter: p50 {figures['replay_after_filter_s']['p50']:.0f} s, p99 {figures['replay_after_filter_s']['p99']:.0f} s); "
              f"archive invocations {figures['pull_invocations']:,}")
    else:
        lag = figures["replay_lag_s"]
        print(f"  {'with' if replay else 'without'} replay: events written before the filter {figures['before_filter']:,}, lost "
              f"{figures['lost']:,} (target 0), delivered twice {figures['twice']} (target 0); FilterLogEvents per subscribed group "
              f"{figures['filter_log_events_per_group']:.2f}; replay lag p50 {lag['p50']:.0f} s, p99 {lag['p99']:.0f} s"
              + (f" (from the filter: p50 {figures['replay_after_filter_s']['p50']:.0f} s, p99 {figures['replay_after_filter_s']['p99']:.0f} s; "
                 f"by the replay function, off the subscription path: {stats['replay_invocations']:,} invocations)" if replay else ""))
        if replay:
            print(f"  ingested in the filter's millisecond and replayed (a duplicate if AWS's subscription takes that millisecond "
                  f"too): {figures['at_filter_millisecond']:,} of {figures['before_filter'] + figures['at_filter_millisecond']:,} "
                  f"replayed events")
    return figures


def _replay_figures(account: QuotaAccount, recorder: ReplayRecorder, groups: int, caller: str = "governor",
                    window_minutes: int | None = None) -> dict[str, Any]:
    """Per subscribed group: the events ingested before the governor's filter (the gap); of those, lost (never
    replayed), and any event replayed twice or replayed though it came after the filter (the subscription's). An event
    ingested in the filter's very millisecond is replayed (#26: no page says the subscription takes it, so the side
    that loses nothing); counted apart, as the duplicates a subscription that does take it would make."""
    before = lost = twice = boundary = beyond_window = 0
    lags: list[float] = []
    #: From the filter's creation to the group's first replayed line: what the replay (or the archive's pull) adds.
    after_filter: list[float] = []
    subscribed = [(n, g) for n, g in account.groups.items() if "log-group-governor" in g["filter_created_s"]]
    for name, group in subscribed:
        gap_s = group["filter_created_s"]["log-group-governor"] - group["created_s"]
        filter_ms = account.epoch_ms(group["filter_created_s"]["log-group-governor"])
        # Event k is ingested at created + k + latency: those before the filter's creation are the gap's.
        ingested = {f"{k:020d}": account.epoch_ms(group["created_s"] + k + INGESTION_LATENCY_S)
                    for k in range(int(max(0.0, gap_s - INGESTION_LATENCY_S)) + 2)}
        in_gap = {event for event, at_ms in ingested.items() if at_ms < filter_ms}
        at_filter = {event for event, at_ms in ingested.items() if at_ms == filter_ms}
        arrived = recorder.arrived.get(name, Counter())
        before += len(in_gap)
        lost += len(in_gap - set(arrived))
        if window_minutes is not None and gap_s > window_minutes * 60:
            beyond_window += len(in_gap - set(arrived))  # filtered after replayWindowMinutes: history, not a gap (the bound)
        boundary += len(at_filter & set(arrived))
        twice += sum(1 for event, n in arrived.items() if n > 1 or event not in in_gap | at_filter)
        if name in recorder.first_at:
            lags.append(recorder.first_at[name] - group["created_s"])
            after_filter.append(recorder.first_at[name] - group["filter_created_s"]["log-group-governor"])
    lags.sort()
    after_filter.sort()
    pick = (lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]) if lags else (lambda q: 0.0)
    pick_after = (lambda q: after_filter[min(len(after_filter) - 1, int(q * len(after_filter)))]) if after_filter else (lambda q: 0.0)
    calls = account.served[f"{caller}.FilterLogEvents"]
    return {"before_filter": before, "lost": lost, "twice": twice, "at_filter_millisecond": boundary, "lost_beyond_window": beyond_window,
            "filter_log_events_per_group": calls / max(1, len(subscribed)), "replay_lag_s": {"p50": pick(0.5), "p99": pick(0.99)},
            "replay_after_filter_s": {"p50": pick_after(0.5), "p99": pick_after(0.99)}}


def scenarios(groups: int = GROUPS) -> list[dict[str, Any]]:
    figures = [main(groups)]
    print()
    figures.append(main(groups, neighbour_share=GREEDY_NEIGHBOUR_SHARE))
    for replay in (False, True):  # #20: the lines written before the subscription, without and with the replay
        print()
        figures.append(main(groups, replay=replay))
    return figures


if __name__ == "__main__":
    scenarios(int(sys.argv[1]) if len(sys.argv) > 1 else GROUPS)

"""The minutes a disabled subscription skips (#31 item 2), through the real delivery-gaps function: its schedule's event runs
the watch over CloudWatch Logs' own delivery metrics, its queue's batches replay each gap into the destination. AWS's part
is localaws.delivery (a refused delivery disables the filter for 10 minutes and the lines of those minutes are skipped:
localaws/FIDELITY.md S1-S8), on a clock the test moves."""

from __future__ import annotations

import base64
import gzip
import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from governor.delivery_gaps import windows
from governor.handlers import delivery_gaps as gaps
from localaws.account import LocalAccount
from localaws.delivery import DeliveryModel, subscription_delivery
from localaws.events import fixture, sqs_batch
from ship_logs.payload import decode_kinesis_record
from tests.conftest import call

GROUP = "/aws/lambda/orders-api"
STREAM = "2026/12/06/[$LATEST]0123456789abcdef"
ROLE = "arn:aws:iam::123456789012:role/CWLtoKinesisRole"
FILTER = "log-group-governor"
#: A whole minute an hour ago: the outage's first minute.
T0 = float(int(datetime.now(timezone.utc).timestamp()) // 60 * 60 - 3600)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def at(self, offset_s: float) -> None:
        assert T0 + offset_s >= self.now, "time runs forward"
        self.now = T0 + offset_s


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock(T0 - 600)
    monkeypatch.setattr(gaps, "wall_clock", found)
    return found


@pytest.fixture
def stream(account: LocalAccount, configure: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The team's Kinesis stream, the governor's configuration naming it, and the gap queue the stack makes."""
    kinesis = account.client("kinesis")
    kinesis.create_stream(StreamName="central-logs", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="central-logs")["StreamDescriptionSummary"]["StreamARN"]
    assert account.logs_delivery_role(ROLE.rsplit("/", 1)[-1]) == ROLE
    queue = account.client("sqs").create_queue(QueueName="delivery-gaps")["QueueUrl"]
    monkeypatch.setenv(gaps.ENV_GAP_QUEUE_URL, queue)
    configure(destinationArn=arn, destinationRoleArn=ROLE)
    gaps.parts.cache_clear()
    yield arn
    gaps.parts.cache_clear()


@pytest.fixture
def delivery(account: LocalAccount, stream: str, clock: Clock) -> Iterator[DeliveryModel]:
    with subscription_delivery(account, clock) as model:
        account.logs.create_log_group(logGroupName=GROUP)
        account.logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        account.logs.put_subscription_filter(logGroupName=GROUP, filterName=FILTER, filterPattern="", destinationArn=stream, roleArn=ROLE)
        yield model


def _write(account: LocalAccount, clock: Clock, *messages: str) -> None:
    account.logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM,
                                logEvents=[{"timestamp": int(clock() * 1000), "message": m} for m in messages])


def _in_stream(account: LocalAccount) -> list[str]:
    """Every line the stream holds, the subscription's and the replay's (read as ship-logs reads a record)."""
    kinesis = account.client("kinesis")
    shard = kinesis.list_shards(StreamName="central-logs")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="central-logs", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    found = []
    for record in kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]:
        document = json.loads(gzip.decompress(record["Data"]))
        if document["messageType"] != "DATA_MESSAGE":
            continue
        assert (document["logGroup"], document["owner"]) == (GROUP, account.account_id)
        if all(isinstance(e["id"], str) for e in document["logEvents"]):  # the replay's: ship-logs takes it whole
            batch = decode_kinesis_record({"kinesis": {"data": base64.b64encode(record["Data"]).decode()}, "awsRegion": account.region})
            assert batch.malformed_events == 0
        found += [e["message"] for e in document["logEvents"]]
    return found


def _watch(account: LocalAccount) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The schedule's event; then what the watch queued, taken off the queue as Lambda's event source would."""
    ran = call(gaps.handler, fixture("scheduled_event"), function_name="delivery-gaps")
    sqs = account.client("sqs")
    url = sqs.get_queue_url(QueueName="delivery-gaps")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return ran.result, [json.loads(m["Body"]) for m in messages]


def _outage(account: LocalAccount, clock: Clock, delivery: DeliveryModel, stream: str) -> None:
    """Lines before; the destination refuses for 10 minutes while the group writes a line a minute; it accepts again."""
    _write(account, clock, "before")                     # T0 - 10 min: delivered, outside any gap
    clock.at(10)
    _write(account, clock, "edge")                       # the first minute: delivered just before the error
    clock.at(70)
    delivery.refuse(stream)
    _write(account, clock, "refused")                    # DeliveryErrors; the filter is disabled for 10 minutes
    for minute in range(2, 11):
        clock.at(minute * 60 + 10)
        _write(account, clock, f"skipped-{minute}")      # skipped by CloudWatch Logs, no metric
    delivery.accept(stream)
    clock.at(11 * 60 + 20)
    _write(account, clock, "after")                      # delivered again: the gap ends with this minute


def test_a_ten_minute_refusal_is_found_in_the_metrics_and_every_skipped_line_replayed_once(
        account: LocalAccount, stream: str, clock: Clock, delivery: DeliveryModel) -> None:
    _outage(account, clock, delivery, stream)
    lost_by_aws = [e.message for e in (*delivery.failed, *delivery.skipped)]
    assert lost_by_aws == ["refused", *(f"skipped-{m}" for m in range(2, 11))]
    assert sorted(_in_stream(account)) == ["after", "before", "edge"]

    clock.at(13 * 60)  # the gap's end is not settled yet: the watch waits
    answer, queued = _watch(account)
    assert (answer["queued"], answer["open"], queued) == (0, 1, [])

    clock.at(20 * 60)
    answer, queued = _watch(account)
    assert (answer["groupsWithErrors"], answer["queued"]) == (1, 1)
    [gap] = queued
    assert (gap["logGroup"], gap["fromMs"], gap["untilMs"], gap["errors"]) == (GROUP, int(T0 * 1000), int(T0 * 1000) + 12 * 60_000 - 1, 1)

    replayed = call(gaps.handler, sqs_batch(queued, queue_arn="arn:aws:sqs:eu-west-1:123456789012:delivery-gaps"), function_name="delivery-gaps")
    assert replayed.result == {"batchItemFailures": []}
    seen = Counter(_in_stream(account))
    assert all(seen[line] == 1 for line in lost_by_aws), seen  # nothing lost, nothing sent twice of what AWS skipped
    # The edge minutes' delivered lines come again, within what the gap said it may repeat (ForwardedLogEvents of its minutes).
    repeated = sorted(line for line, n in seen.items() if n > 1)
    assert repeated == ["after", "edge"] and len(repeated) <= gap["mayRepeat"] == 2
    assert seen["before"] == 1
    assert replayed.metrics()[("GapReplayedEvents", None)] == 12 and ("GapUnreplayed", None) not in replayed.metrics()

    # The same gap again (a redelivered message) and the next watches: nothing more.
    again = call(gaps.handler, sqs_batch(queued, queue_arn="arn:aws:sqs:eu-west-1:123456789012:delivery-gaps"), function_name="delivery-gaps")
    assert again.result == {"batchItemFailures": []} and Counter(_in_stream(account)) == seen
    clock.at(25 * 60)
    answer, queued = _watch(account)
    assert (answer["queued"], answer["seenBefore"], queued) == (0, 1, [])


def test_a_gap_past_replay_max_events_is_counted_and_alarmed_with_its_group_and_window(
        account: LocalAccount, stream: str, clock: Clock, delivery: DeliveryModel, configure: Any) -> None:
    configure(destinationArn=stream, destinationRoleArn=ROLE, replayMaxEvents=4)
    gaps.parts.cache_clear()
    _outage(account, clock, delivery, stream)
    clock.at(20 * 60)
    _, queued = _watch(account)
    replayed = call(gaps.handler, sqs_batch(queued, queue_arn="arn:aws:sqs:eu-west-1:123456789012:delivery-gaps"), function_name="delivery-gaps")
    [line] = [line for line in replayed.logs if line["message"] == "a delivery gap that cannot be replayed whole"]
    assert line["level"] == "ERROR"
    assert (line["gap"]["logGroup"], line["gap"]["fromMs"], line["gap"]["unreplayedReason"]) == (GROUP, int(T0 * 1000), "past-replay-bounds")
    assert line["gap"]["replayed"] == 4 and line["gap"]["unreplayed"] == line["gap"]["truncated"] == 8
    assert replayed.metrics()[("GapUnreplayed", None)] == 1


def test_a_group_deleted_before_its_gap_is_replayed_is_counted_not_retried(
        account: LocalAccount, stream: str, clock: Clock, delivery: DeliveryModel) -> None:
    _outage(account, clock, delivery, stream)
    clock.at(20 * 60)
    _, queued = _watch(account)
    account.logs.delete_log_group(logGroupName=GROUP)
    replayed = call(gaps.handler, sqs_batch(queued, queue_arn="arn:aws:sqs:eu-west-1:123456789012:delivery-gaps"), function_name="delivery-gaps")
    assert replayed.result == {"batchItemFailures": []}
    [line] = [line for line in replayed.logs if line["message"] == "a delivery gap that cannot be replayed whole"]
    assert line["gap"]["unreplayedReason"] == "group-deleted" and replayed.metrics()[("GapUnreplayed", None)] == 1


def test_a_destination_still_refusing_fails_the_gap_so_that_it_comes_back(
        account: LocalAccount, stream: str, clock: Clock, delivery: DeliveryModel) -> None:
    """The group went quiet while the stream still refuses (the replay writes to it directly: here the stream is gone)."""
    _outage(account, clock, delivery, stream)
    clock.at(20 * 60)
    _, queued = _watch(account)
    account.client("kinesis").delete_stream(StreamName="central-logs")
    replayed = call(gaps.handler, sqs_batch(queued, queue_arn="arn:aws:sqs:eu-west-1:123456789012:delivery-gaps"), function_name="delivery-gaps")
    assert len(replayed.result["batchItemFailures"]) == 1  # back after the visibility timeout; dead-lettered and alarmed after 24 h


def test_windows_are_the_same_on_every_run_and_never_share_a_minute() -> None:
    minute = 60_000
    errors = {10 * minute: 5, 13 * minute: 1}
    forwarded = {12 * minute: 3, 14 * minute: 2}
    first = windows("g", errors, forwarded, now_ms=40 * minute)
    assert first == windows("g", dict(reversed(errors.items())), forwarded, now_ms=40 * minute)
    assert [(w.from_ms, w.until_ms) for w in first] == [(9 * minute, 13 * minute - 1), (13 * minute, 15 * minute - 1)]
    # A filter back after its error, quiet, then failing again 10 minutes on: two gaps; one still failing: open.
    [open_gap] = windows("g", {10 * minute: 1}, {}, now_ms=21 * minute)
    assert not open_gap.settled and open_gap.until_ms == 21 * minute - 1


# --- review of #31: gaps longer than the watch's look-back, a group created again mid-gap, a malformed message --------

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:delivery-gaps"


def _refused(account: LocalAccount, clock: Clock, delivery: DeliveryModel, stream: str, *, minutes: int) -> None:
    """The destination refuses for ``minutes`` while the group writes a line a minute (the filter comes back every 10
    minutes, fails again, is disabled again), then accepts for 10 more."""
    _write(account, clock, "before")
    clock.at(70)
    delivery.refuse(stream)
    for minute in range(1, minutes + 1):
        clock.at(minute * 60 + 10)
        _write(account, clock, f"m{minute}")
    delivery.accept(stream)
    for minute in range(minutes + 1, minutes + 11):
        clock.at(minute * 60 + 10)
        _write(account, clock, f"m{minute}")


def _watch_and_replay(account: LocalAccount, clock: Clock, *, from_minute: int, to_minute: int) -> list[dict[str, Any]]:
    """The schedule: a watch every 5 minutes, each queued gap replayed at once. Answers each replayed gap's report."""
    reports = []
    for at in range(from_minute, to_minute, 5):
        clock.at(at * 60)
        _, queued = _watch(account)
        if queued:
            replayed = call(gaps.handler, sqs_batch(queued, queue_arn=QUEUE_ARN), function_name="delivery-gaps")
            assert replayed.result == {"batchItemFailures": []}
            reports += [line["gap"] for line in replayed.logs if "gap" in line]
    return reports


def test_review31_a_gap_is_queued_once_though_its_first_minutes_leave_the_lookback(
        account: LocalAccount, stream: str, clock: Clock, delivery: DeliveryModel) -> None:
    """Its identity is its end: watched for the three hours its errors stay in view, it is replayed once."""
    _refused(account, clock, delivery, stream, minutes=24)

    reports = _watch_and_replay(account, clock, from_minute=45, to_minute=240)

    seen = Counter(_in_stream(account))
    assert len(reports) == 1 and reports[0]["fromMs"] == int(T0 * 1000)  # the minute before the first error minute
    assert all(seen[f"m{m}"] >= 1 for m in range(1, 35)) and max(seen.values()) <= 2


def test_review31_a_gap_longer_than_the_lookback_is_read_from_further_back_and_replayed_whole_once(
        account: LocalAccount, stream: str, clock: Clock, delivery: DeliveryModel) -> None:
    _refused(account, clock, delivery, stream, minutes=200)

    reports = _watch_and_replay(account, clock, from_minute=215, to_minute=420)

    seen = Counter(_in_stream(account))
    assert len(reports) == 1 and reports[0]["fromMs"] == int(T0 * 1000) and "unreplayedReason" not in reports[0]
    assert [m for m in range(1, 211) if not seen[f"m{m}"]] == []  # nothing lost
    assert max(seen.values()) <= 2  # the edge minutes' delivered lines, at most once more


def test_review31_a_group_created_again_during_its_gap_sends_its_first_lines_once_and_counts_its_earlier_lifes_loss(
        account: LocalAccount, stream: str, clock: Clock, delivery: DeliveryModel) -> None:
    from governor.handlers.create_log_group import subscribe_log_group
    from localaws.events import create_log_group_event
    from tests.conftest import run_replays

    _write(account, clock, "before")
    clock.at(70)
    delivery.refuse(stream)
    _write(account, clock, "refused")  # skipped: its life ends with the group
    clock.at(180)
    account.logs.delete_log_group(logGroupName=GROUP)
    account.logs.create_log_group(logGroupName=GROUP)
    account.logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    clock.at(190)
    _write(account, clock, "new-life-1")  # before the new life's filter: its first lines
    clock.at(240)
    delivery.accept(stream)
    call(subscribe_log_group, sqs_batch([create_log_group_event(GROUP)]))
    run_replays(account)  # the first lines, from the replay function's queue
    clock.at(12 * 60 + 10)
    _write(account, clock, "after")

    [report] = _watch_and_replay(account, clock, from_minute=25, to_minute=30)

    seen = Counter(_in_stream(account))
    assert seen["new-life-1"] == 1 and seen["refused"] == 0
    assert report["unreplayedReason"] == "group-deleted"  # counted and alarmed: the earlier life's skipped lines went with it


def test_review31_a_malformed_queued_message_is_dropped_not_retried_for_a_day(account: LocalAccount, stream: str, clock: Clock) -> None:
    bodies = ['{"logGroup": "/aws/lambda/orders-api", "fromMs": 1, "untilMs": 2, "errors": 1e400}',
              '{"logGroup": "/aws/lambda/orders-api", "fromMs": 1, "untilMs": 2, "mayRepeat": NaN}',
              '{"kind": "first-lines", "logGroup": 7, "requestedAtMs": 1}', "[]", "not json"]
    batch = sqs_batch([{} for _ in bodies], queue_arn=QUEUE_ARN)
    for record, body in zip(batch["Records"], bodies):
        record["body"] = body

    dropped = call(gaps.handler, batch, function_name="delivery-gaps")

    assert dropped.result == {"batchItemFailures": []}
    assert sum(1 for line in dropped.logs if line["message"] == "a queued replay request that is none: dropped") == len(bodies)

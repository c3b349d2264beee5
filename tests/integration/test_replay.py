"""Replay on subscribe (#20): what a new group held before the governor's filter reaches the destination
once, in the subscription's own shape, through the real subscribe handler and a moto account (whose
subscriptions deliver only what is put after the filter, as AWS's do: localaws/FIDELITY.md G10)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
from collections import Counter
from typing import Any

import pytest

from governor import replay
from governor.aws import ExpiredPageToken, FilterInPlace, IngestedEvent, ReplayProgress, ReplayWriter
from governor.config import parse_policy_config
from governor.drift import InMemoryLedger
from governor.handlers.create_log_group import subscribe_log_group
from governor.replay import Replayer, documents, encode
from governor.policy import Policy
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, sqs_batch
from ship_logs.payload import decode_batch, decode_kinesis_record
from tests.conftest import Invocation, call, run_replays

GROUP = "/aws/lambda/orders-api"
STREAM = "2026/12/04/[$LATEST]0123456789abcdef"
ROLE = "arn:aws:iam::123456789012:role/CWLtoKinesisRole"


@pytest.fixture
def stream(account: LocalAccount, configure: Any) -> str:
    """A Kinesis destination, as a team's log pipeline would have."""
    kinesis = account.client("kinesis")
    kinesis.create_stream(StreamName="central-logs", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="central-logs")["StreamDescriptionSummary"]["StreamARN"]
    assert account.logs_delivery_role(ROLE.rsplit("/", 1)[-1]) == ROLE  # CloudWatch Logs may assume it (localaws G19)
    configure(destinationArn=arn, destinationRoleArn=ROLE)
    return arn


def _new_function_logs(account: LocalAccount, first_invocations: int, *, group: str = GROUP) -> list[str]:
    """A new function's group and its first invocations, written before any filter exists."""
    account.logs.create_log_group(logGroupName=group)
    account.logs.create_log_stream(logGroupName=group, logStreamName=STREAM)
    messages = [f"{kind} RequestId: {n:08d}" for n in range(first_invocations) for kind in ("START", "END")]
    now_ms = int(time.time() * 1000)
    account.logs.put_log_events(logGroupName=group, logStreamName=STREAM,
                                logEvents=[{"timestamp": now_ms + i, "message": m} for i, m in enumerate(messages)])
    time.sleep(0.002)  # the filter is created in a later millisecond than these events, on any machine
    return messages


class Subscribed:
    """The subscribe handler's invocation, then the replay function's (#31 item 3: the replay runs off the subscription
    path, from the queue the handler asks on). ``result`` is the handler's, its ``replay`` what the replay function did."""

    def __init__(self, subscribed: Invocation, replayed: list[Invocation]) -> None:
        self.subscribed, self.replayed = subscribed, replayed
        reports = [line["replay"] for i in replayed for line in i.logs
                   if line.get("message") in ("replayed what came before the filter", "nothing to replay")]
        self.reports = reports
        self.result = dict(subscribed.result)
        if reports:
            merged = dict(reports[-1])
            for key in ("replayed", "deliveries", "truncated"):
                merged[key] = sum(r.get(key, 0) for r in reports)
            self.result["replay"] = merged

    def metrics(self) -> dict[tuple[str, str | None], float]:
        found = dict(self.subscribed.metrics())
        for invocation in self.replayed:
            for key, value in invocation.metrics().items():
                found[key] = found.get(key, 0) + value
        return found


def subscribe(account: LocalAccount, event: dict[str, Any]) -> Subscribed:
    """A CreateLogGroup record through the subscribe handler, then the replay queue through the replay function."""
    return Subscribed(call(subscribe_log_group, event), run_replays(account))


def _delivered(account: LocalAccount) -> list[str]:
    """Every log event the stream holds, in order. The replay's records are read by the archive's consumer
    (ship-logs) as they are; moto's own deliveries carry numeric event ids (AWS sends strings), so every
    record's messages are read from its document."""
    kinesis = account.client("kinesis")
    shard = kinesis.list_shards(StreamName="central-logs")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="central-logs", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    messages = []
    for record in kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]:
        document = json.loads(gzip.decompress(record["Data"]))
        if document["messageType"] != "DATA_MESSAGE":
            continue
        assert (document["logGroup"], document["logStream"], document["subscriptionFilters"], document["owner"]) == (
            GROUP, STREAM, ["log-group-governor"], account.account_id)
        if all(isinstance(e["id"], str) for e in document["logEvents"]):  # the replay's: ship-logs reads every event
            batch = decode_kinesis_record({"kinesis": {"data": base64.b64encode(record["Data"]).decode()}, "awsRegion": account.region})
            assert batch.malformed_events == 0 and [e.message for e in batch.events] == [e["message"] for e in document["logEvents"]]
        messages += [e["message"] for e in document["logEvents"]]
    return messages


def test_what_came_before_the_filter_arrives_once_and_after_it_the_subscription_takes_over(account: LocalAccount, stream: str) -> None:
    before = _new_function_logs(account, 10)

    subscribed = subscribe(account, create_log_group_event(GROUP))
    account.logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=[{"timestamp": int(time.time() * 1000) + 1_000, "message": "after"}])

    assert subscribed.result["action"] == "subscribe" and subscribed.result["replay"] == {"replayed": 20, "truncated": 0, "deliveries": 1}
    assert _delivered(account) == [*before, "after"]  # the first invocations, in order, then the subscription's own
    assert subscribed.metrics()[("ReplayedEvents", None)] == 20


def test_a_redelivered_event_replays_nothing_twice(account: LocalAccount, stream: str) -> None:
    before = _new_function_logs(account, 3)
    event = create_log_group_event(GROUP)

    first = subscribe(account, event)
    again = subscribe(account, event)

    assert first.result["replay"]["replayed"] == 6
    assert again.result["action"] == "leave" and again.result["replay"] == {"replayed": 0, "truncated": 0, "deliveries": 0,
                                                                             "skipped": "replayed already", "alreadyDelivered": 6}
    assert _delivered(account) == before


def test_past_its_bounds_the_replay_is_truncated_and_says_so(account: LocalAccount, stream: str, configure: Any) -> None:
    configure(destinationArn=stream, destinationRoleArn=ROLE, replayMaxEvents=5)
    before = _new_function_logs(account, 4)

    subscribed = subscribe(account, create_log_group_event(GROUP))

    assert subscribed.result["replay"] == {"replayed": 5, "truncated": 3, "deliveries": 1}
    assert _delivered(account) == before[:5]  # the first five, the same on every attempt
    assert subscribed.metrics()[("ReplayTruncated", None)] == 3


def test_a_replay_interrupted_mid_group_resumes_past_what_it_sent(account: LocalAccount, stream: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(replay.MAX_DOCUMENT_BYTES, replay.DestinationKind.KINESIS, 1_300)  # a few events a record
    before = _new_function_logs(account, 12)
    sent = Counter()
    deliver = ReplayWriter.deliver

    def fail_on_the_third(self: ReplayWriter, *args: Any, **kwargs: Any) -> None:
        sent["n"] += 1
        if sent["n"] == 3:
            raise ConnectionError("the stream's endpoint went away mid-replay")
        deliver(self, *args, **kwargs)

    monkeypatch.setattr(ReplayWriter, "deliver", fail_on_the_third)
    event = create_log_group_event(GROUP)

    first = subscribe(account, event)  # the replay's message fails: SQS delivers it again
    retried = run_replays(account)

    assert first.subscribed.result["action"] == "subscribe" and len(first.replayed[-1].result["batchItemFailures"]) == 1
    assert any("ConnectionError" in line.get("error", "") for line in first.replayed[-1].logs)
    [report] = [line["replay"] for i in retried for line in i.logs if line.get("message") == "replayed what came before the filter"]
    assert report["alreadyDelivered"] > 0
    assert _delivered(account) == before  # every event once, in order, across the two attempts


def test_a_group_older_than_the_window_is_history_not_a_gap(account: LocalAccount, stream: str, configure: Any) -> None:
    configure(destinationArn=stream, destinationRoleArn=ROLE, replayWindowMinutes=1)
    _new_function_logs(account, 2)
    later = time.time() + 3 * 86400  # the backfill finds it days later
    import governor.handlers.create_log_group as handlers

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(handlers, "wall_clock", lambda: later)
        found = subscribe(account, create_log_group_event(GROUP))

    assert found.result["replay"]["skipped"].startswith("the group is older than replayWindowMinutes")
    assert _delivered(account) == []
    assert account.calls["logs.FilterLogEvents"] == 0


def test_a_rules_filter_pattern_selects_what_is_replayed_as_it_selects_what_is_shipped(account: LocalAccount, stream: str,
                                                                                     configure: Any) -> None:
    """#21: a rule gives the group its own filter pattern; the replay reads with that filter's pattern."""
    configure(destinationArn=stream, destinationRoleArn=ROLE,
              rules=[{"match": {"namePrefixes": ["/aws/lambda/orders"]}, "shipping": {"enabled": True, "filterPattern": "START"}}])
    before = _new_function_logs(account, 3)

    subscribed = subscribe(account, create_log_group_event(GROUP))

    assert account.logs.describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"][0]["filterPattern"] == "START"
    assert subscribed.result["replay"]["replayed"] == 3
    assert _delivered(account) == [m for m in before if m.startswith("START")]


# --- a replay longer than its slice of an invocation --------------------------------------------------------

class _Ticking:
    """The handlers' wall clock, advancing ``step_s`` each time it is read: a replay's slice is spent after a few pages,
    whatever the machine's speed."""

    def __init__(self, step_s: float) -> None:
        self.now, self.step_s = time.time(), step_s

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    import governor.aws.logs as logs
    monkeypatch.setattr(logs, "FILTER_LOG_EVENTS_PAGE_SIZE", 5)  # FilterLogEvents' pages: 5 events instead of 10,000


def test_a_replay_longer_than_its_slice_goes_on_from_the_queue_and_delivers_each_event_once(
        account: LocalAccount, stream: str, small_pages: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import governor.handlers.delivery_gaps as replays
    monkeypatch.setattr(replays, "wall_clock", _Ticking(step_s=7.0))  # a slice (20 s) lasts about three pages
    before = _new_function_logs(account, 12)  # 24 events: five pages

    subscribed = subscribe(account, create_log_group_event(GROUP))

    assert all(i.result == {"batchItemFailures": []} for i in subscribed.replayed)  # each slice finishes; nothing is retried
    assert len(subscribed.replayed) > 1 and any(r.get("unfinished") for r in subscribed.reports) and not subscribed.reports[-1].get("unfinished")
    assert subscribed.result["replay"]["replayed"] == len(before) and subscribed.metrics()[("ReplayContinued", None)] >= 1
    assert _delivered(account) == before  # in order, each once, across the continuations


def test_the_subscribe_handler_reads_the_groups_filters_once_and_the_replay_function_the_filters_creation_time(
        account: LocalAccount, stream: str) -> None:
    """#31 item 3: the handler decides on one DescribeSubscriptionFilters and puts; the replay function reads the new filter's
    creationTime (which splits the replay's events from the subscription's) off the subscription path."""
    before = _new_function_logs(account, 2)
    account.calls.clear()

    subscribed = call(subscribe_log_group, create_log_group_event(GROUP))
    handler_reads = (account.calls["logs.DescribeSubscriptionFilters"], account.calls["logs.FilterLogEvents"])
    replayed = run_replays(account)

    assert subscribed.result["replay"] == {"queued": True} and subscribed.metrics()[("ReplayQueued", None)] == 1
    assert handler_reads == (1, 0)
    assert account.calls["logs.DescribeSubscriptionFilters"] == 2 and account.calls["logs.FilterLogEvents"] >= 1
    assert replayed[0].result == {"batchItemFailures": []} and _delivered(account) == before


def test_without_the_replay_queue_the_subscribe_handler_says_what_to_set(account: LocalAccount, stream: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import governor.handlers.create_log_group as handlers
    monkeypatch.delenv("GOVERNOR_GAP_QUEUE_URL")
    handlers.subscription_parts.cache_clear()

    failed = call(subscribe_log_group, sqs_batch([create_log_group_event(GROUP)]))

    assert len(failed.result["batchItemFailures"]) == 1
    assert any("GOVERNOR_GAP_QUEUE_URL is not set" in json.dumps(line) for line in failed.logs)


def test_past_its_bounds_with_pages_left_the_count_is_a_lower_bound_and_nothing_more_is_read(
        account: LocalAccount, stream: str, configure: Any, small_pages: None) -> None:
    configure(destinationArn=stream, destinationRoleArn=ROLE, replayMaxEvents=7)
    before = _new_function_logs(account, 12)

    subscribed = subscribe(account, create_log_group_event(GROUP))

    assert subscribed.result["replay"] == {"replayed": 7, "truncated": 3, "deliveries": 2, "truncatedAtLeast": True}
    assert _delivered(account) == before[:7]
    assert account.calls["logs.FilterLogEvents"] == 2  # the pages holding the first seven, no more


def test_a_page_token_no_longer_taken_reads_again_from_the_start_and_sends_nothing_twice() -> None:
    config = parse_policy_config({"destinationArn": "arn:aws:kinesis:eu-west-1:123456789012:stream/central-logs",
                                  "destinationRoleArn": ROLE})
    events = _events(6)
    sent: list[str] = []

    class Source:
        def own_filter(self, log_group: str, filter_name: str) -> FilterInPlace:
            return FilterInPlace(events[-1].ingestion_ms + 1, "")

        def event_pages(self, log_group: str, pattern: str, *, token: str | None = None, **_: Any):
            if token == "expired":
                raise ExpiredPageToken("The specified nextToken is no longer valid")
            yield events[:3], "p2"
            yield events[3:], None

    class Writer:
        def deliver(self, destination: Any, payload: bytes, *, partition_key: str) -> None:
            sent.extend(e["id"] for e in json.loads(gzip.decompress(payload))["logEvents"])

    ledger = InMemoryLedger()
    # An earlier invocation delivered four events and stopped at a page whose token has since expired.
    ledger.claim_replay(GROUP, ReplayProgress(events[-1].ingestion_ms + 1, 4, False, "expired", 3, 21), holder="earlier", lease_until_s=0)

    now_s = events[-1].ingestion_ms / 1000 + 60
    result = Replayer(lambda: Policy(config), Source(), Writer(), ledger, clock=lambda: now_s).after_subscribe(
        GROUP, events[0].timestamp_ms, owner="123456789012", holder="now", now_s=now_s, lease_until_s=now_s + 180)

    assert sent == ["4", "5"] and result.replayed == 2 and result.already_delivered == 4, result
    assert ledger.replay_progress(GROUP).done


# --- the payload's shape, for each kind of destination -----------------------------------------------------

def _events(count: int, stream: str = STREAM) -> list[IngestedEvent]:
    return [IngestedEvent(str(n), stream, 1_764_800_000_000 + n, 1_764_800_000_100 + n, f"line {n}") for n in range(count)]


def test_a_lambda_destination_is_invoked_with_the_subscription_event_ship_logs_reads() -> None:
    [(document, count)] = documents(_events(3), owner="123456789012", log_group=GROUP, filter_name="log-group-governor",
                                    max_document_bytes=replay.MAX_DOCUMENT_BYTES[replay.DestinationKind.LAMBDA])

    batch = decode_batch(json.loads(encode(document, replay.DestinationKind.LAMBDA)))

    assert count == 3 and batch.message_type == "DATA_MESSAGE" and [e.message for e in batch.events] == ["line 0", "line 1", "line 2"]
    assert (batch.owner, batch.log_group, batch.log_stream, batch.subscription_filters) == ("123456789012", GROUP, STREAM, ("log-group-governor",))


@pytest.mark.parametrize("kind", [replay.DestinationKind.KINESIS, replay.DestinationKind.FIREHOSE, replay.DestinationKind.LAMBDA])
def test_documents_keep_each_stream_apart_in_order_and_under_the_record_limit(kind: replay.DestinationKind) -> None:
    big = [IngestedEvent(str(n), "a" if n < 30 else "b", n, n, "x" * 50_000) for n in range(60)]

    found = list(documents(big, owner="123456789012", log_group=GROUP, filter_name="f", max_document_bytes=replay.MAX_DOCUMENT_BYTES[kind]))

    assert [e["id"] for d, _ in found for e in d["logEvents"]] == [str(n) for n in range(60)]
    stream_of = {e.event_id: e.stream for e in big}
    assert all(stream_of[e["id"]] == d["logStream"] for d, _ in found for e in d["logEvents"])  # one stream per document
    assert len(found) > 2 and [count for _, count in found] == [len(d["logEvents"]) for d, _ in found]
    limit = {replay.DestinationKind.LAMBDA: 1_000_000, replay.DestinationKind.KINESIS: 1_048_576, replay.DestinationKind.FIREHOSE: 1_024_000}[kind]
    assert all(len(encode(d, kind)) <= limit for d, _ in found)
    assert gzip.decompress(encode(found[0][0], replay.DestinationKind.KINESIS))  # the record is the gzip'd document


def test_a_cross_account_destination_is_not_replayed_to() -> None:
    config = parse_policy_config({"destinationArn": "arn:aws:logs:eu-west-1:111111111111:destination:central"})
    untouched = Counter()

    class Nothing:
        def __getattr__(self, name: str) -> Any:
            untouched[name] += 1
            raise AssertionError(f"{name} was called")

    result = Replayer(lambda: Policy(config), Nothing(), Nothing(), Nothing()).after_subscribe(
        GROUP, int(time.time() * 1000), owner="123456789012", holder="req", now_s=time.time(), lease_until_s=time.time() + 60)

    assert result.skipped == "cross-account destination: what came before the filter is not replayed" and not untouched


def test_a_group_a_rule_ships_elsewhere_is_subscribed_there_and_replayed_there(account: LocalAccount, configure: Any) -> None:
    """#21: a rule's own Kinesis destination; the main destination (a Lambda function) gets nothing of the group."""
    kinesis = account.client("kinesis")
    kinesis.create_stream(StreamName="central-logs", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="central-logs")["StreamDescriptionSummary"]["StreamARN"]
    account.logs_delivery_role(ROLE.rsplit("/", 1)[-1])
    configure(rules=[{"name": "orders to the stream", "match": {"namePrefixes": ["/aws/lambda/orders"]},
                      "shipping": {"enabled": True, "destinationArn": arn, "destinationRoleArn": ROLE}}])
    before = _new_function_logs(account, 2)

    subscribed = subscribe(account, create_log_group_event(GROUP))

    [ours] = account.logs.describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"]
    assert (ours["destinationArn"], ours["roleArn"]) == (arn, ROLE)
    assert subscribed.result["replay"]["replayed"] == 4 and _delivered(account) == before


# --- #26: every line once, whatever happens to the group, its streams and the invocation -------------------------

def test_issue26_a_group_created_again_under_its_name_is_replayed_in_its_new_life(account: LocalAccount, stream: str) -> None:
    """Item 1: a function redeployed (its group deleted and created again) replays its new first lines: the record of the
    earlier life says nothing of this one."""
    first = _new_function_logs(account, 2)
    assert subscribe(account, create_log_group_event(GROUP)).result["replay"]["replayed"] == 4
    account.logs.delete_log_group(logGroupName=GROUP)
    time.sleep(0.002)  # the new group is created in a later millisecond
    second = _new_function_logs(account, 3)

    again = subscribe(account, create_log_group_event(GROUP))

    assert again.result["action"] == "subscribe" and again.result["replay"]["replayed"] == 6, again.result
    assert _delivered(account) == [*first, *second]


def test_issue26_an_unfinished_replay_of_an_earlier_life_does_not_mislead_the_new_one(account: LocalAccount, stream: str,
                                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 1: the earlier life's replay failed half-way (its record unfinished, with its filter's creation time); the
    group created again must be replayed against its own filter, not resumed against the old one (which sends nothing)."""
    _new_function_logs(account, 2)
    deliver = ReplayWriter.deliver

    def unreachable(self: ReplayWriter, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the stream's endpoint went away")

    monkeypatch.setattr(ReplayWriter, "deliver", unreachable)
    subscribe(account, create_log_group_event(GROUP))  # its replay's message fails and stays on the queue
    monkeypatch.setattr(ReplayWriter, "deliver", deliver)
    account.logs.delete_log_group(logGroupName=GROUP)
    time.sleep(0.002)
    second = _new_function_logs(account, 3)

    again = subscribe(account, create_log_group_event(GROUP))

    assert again.result["replay"]["replayed"] == 6 and _delivered(account) == second


def test_issue26_a_stream_name_longer_than_a_partition_key_is_replayed_under_a_key_kinesis_takes(account: LocalAccount, stream: str) -> None:
    """Item 2: log stream names run to 512 characters (Kubernetes shippers write such), Kinesis partition keys to 256
    (localaws K1): the replay's records must still reach the stream, one key per stream, in order."""
    long_stream = "kube/" + "pod-" * 80 + "x" * 40  # 365 characters
    account.logs.create_log_group(logGroupName=GROUP)
    for name in (long_stream, long_stream[:-1] + "y"):
        account.logs.create_log_stream(logGroupName=GROUP, logStreamName=name)
        account.logs.put_log_events(logGroupName=GROUP, logStreamName=name,
                                    logEvents=[{"timestamp": int(time.time() * 1000), "message": f"{name[-1]} line {n}"} for n in range(3)])
    time.sleep(0.002)

    subscribed = subscribe(account, create_log_group_event(GROUP))

    assert subscribed.result["replay"] == {"replayed": 6, "truncated": 0, "deliveries": 2}
    kinesis = account.client("kinesis")
    shard = kinesis.list_shards(StreamName="central-logs")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="central-logs", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator)["Records"]
    keys = {json.loads(gzip.decompress(r["Data"]))["logStream"]: r["PartitionKey"] for r in records}
    assert set(keys) == {long_stream, long_stream[:-1] + "y"}
    assert all(len(key) <= 256 for key in keys.values()) and len(set(keys.values())) == 2


def test_issue26_localaws_refuses_a_partition_key_kinesis_would_refuse(account: LocalAccount, stream: str) -> None:
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as refused:
        account.client("kinesis").put_record(StreamName="central-logs", Data=b"x", PartitionKey="k" * 257)
    assert refused.value.response["Error"]["Code"] == "ValidationException"


class _Stopped(BaseException):
    """Lambda stopping the function at its timeout: nothing after it runs, not even an ``except Exception``."""


def test_issue26_no_delivery_outlives_the_invocation_so_a_redelivery_sends_nothing_twice(
        account: LocalAccount, stream: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 3: each PutRecord can take its whole retry budget; one that reaches the stream as the invocation's time runs
    out, and is never recorded, would be sent again by the message's redelivery. A delivery starts only when it and its
    record fit in the time left; the rest goes on in the next invocation."""
    import governor.handlers.delivery_gaps as replays
    monkeypatch.setitem(replay.MAX_DOCUMENT_BYTES, replay.DestinationKind.KINESIS, 1_300)  # a few events a record
    before = _new_function_logs(account, 20)  # 40 events: about ten records, all on one FilterLogEvents page
    clock = {"now": time.time()}
    monkeypatch.setattr(replays, "wall_clock", lambda: clock["now"])
    deliver, deadline = ReplayWriter.deliver, {"at": 0.0}

    def slow(self: ReplayWriter, *args: Any, **kwargs: Any) -> None:
        deliver(self, *args, **kwargs)  # it reaches the stream...
        clock["now"] += 30.0  # ...after retries and timeouts
        if clock["now"] > deadline["at"]:
            raise _Stopped()  # ...as Lambda stops the function

    monkeypatch.setattr(ReplayWriter, "deliver", slow)
    call(subscribe_log_group, create_log_group_event(GROUP))
    finished, invocations = False, 0
    while not finished and invocations < 20:
        deadline["at"] = clock["now"] + 300  # the stack's timeout for the replay function
        invocations += 1
        try:
            run_replays(account, batches=1)
            finished = not account.client("sqs").receive_message(QueueUrl=os.environ["GOVERNOR_GAP_QUEUE_URL"], VisibilityTimeout=0).get("Messages")
        except _Stopped:
            pass  # the function was stopped: SQS delivers the message again
        clock["now"] = max(clock["now"], deadline["at"])

    assert finished and invocations > 1
    assert _delivered(account) == before  # each once, in order


def test_issue26_a_line_ingested_in_the_filters_millisecond_is_replayed(account: LocalAccount, stream: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 4: no page says on which side of a filter's creationTime a subscription starts; the model delivers only what is
    ingested after (G10). A line of that very millisecond is replayed: the side that loses nothing."""
    import datetime
    import moto.logs.models as moto_logs
    frozen = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    monkeypatch.setattr(moto_logs, "utcnow", lambda: frozen)  # group, events and filter: one millisecond
    account.logs.create_log_group(logGroupName=GROUP)
    account.logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    account.logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=[{"timestamp": int(frozen.timestamp() * 1000)
                                if frozen.tzinfo else int(frozen.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000), "message": "INIT_START"}])

    subscribed = subscribe(account, create_log_group_event(GROUP))

    created = account.logs.describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"][0]["creationTime"]
    ingested = account.logs.filter_log_events(logGroupName=GROUP)["events"][0]["ingestionTime"]
    assert created == ingested  # the case in question
    assert subscribed.result["replay"]["replayed"] == 1 and _delivered(account) == ["INIT_START"]


def test_issue27_a_page_token_aws_no_longer_knows_is_read_again_from_the_start_not_taken_for_the_end(
        account: LocalAccount, stream: str, small_pages: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """#27 item 5: an unfinished replay holds a FilterLogEvents token; by the time its message comes back AWS no longer
    knows it and answers InvalidParameterException "The specified nextToken is invalid." (localaws G16; moto answered an
    empty last page, so the replay ended quietly with the rest unsent). It reads again from the start, sending nothing twice."""
    import governor.handlers.delivery_gaps as replays
    monkeypatch.setattr(replays, "wall_clock", _Ticking(step_s=7.0))  # the slice ends after a few pages
    before = _new_function_logs(account, 12)  # 24 events: five pages
    call(subscribe_log_group, create_log_group_event(GROUP))
    [first] = run_replays(account, batches=1)  # unfinished: its continuation is queued
    assert any(line.get("replay", {}).get("unfinished") for line in first.logs)
    dynamodb = account.client("dynamodb")
    table = dynamodb.list_tables()["TableNames"][0]
    dynamodb.update_item(TableName=table, Key={"pk": {"S": f"replay#{GROUP}"}}, UpdateExpression="SET pageToken = :old",
                         ExpressionAttributeValues={":old": {"S": "a-token-from-yesterday"}})

    run_replays(account)

    assert _delivered(account) == before  # every event once, in order

"""localaws.delivery: a refused subscription delivery, the filter's disabled window and the gap it leaves, as the
delivery-gap watch reads them (localaws/FIDELITY.md, "Delivery gaps", S1-S8)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from localaws.account import LocalAccount
from localaws.delivery import DISABLED_FOR_S, DeliveryModel, subscription_delivery

GROUP = "/aws/lambda/orders"
FILTER = "governor"
T0 = float(int(datetime.now(timezone.utc).timestamp()) // 60 * 60 - 3600)  # a whole minute, an hour ago


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def stream(account: LocalAccount) -> str:
    kinesis = account.client("kinesis")
    kinesis.create_stream(StreamName="central-logs", ShardCount=1)
    return kinesis.describe_stream_summary(StreamName="central-logs")["StreamDescriptionSummary"]["StreamARN"]


@pytest.fixture
def model(account: LocalAccount, stream: str, clock: Clock) -> Iterator[DeliveryModel]:
    with subscription_delivery(account, clock) as found:
        role = account.logs_delivery_role("central-logs-delivery")
        account.logs.create_log_group(logGroupName=GROUP)
        account.logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
        account.logs.put_subscription_filter(logGroupName=GROUP, filterName=FILTER, filterPattern="", destinationArn=stream, roleArn=role)
        yield found


def _put(account: LocalAccount, clock: Clock, *messages: str) -> None:
    account.logs.put_log_events(logGroupName=GROUP, logStreamName="s",
                                logEvents=[{"timestamp": int(clock() * 1000), "message": m} for m in messages])


def _delivered(account: LocalAccount) -> list[str]:
    kinesis = account.client("kinesis")
    shard = kinesis.list_shards(StreamName="central-logs")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="central-logs", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    documents = [json.loads(gzip.decompress(r["Data"])) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]
    return [e["message"] for d in documents if d["messageType"] == "DATA_MESSAGE" for e in d["logEvents"]]


def _sums(account: LocalAccount, clock: Clock, metric: str) -> dict[int, float]:
    """What the watch reads: the groups ListMetrics finds for the filter, then their Sums per minute."""
    cloudwatch = account.client("cloudwatch")
    listed = cloudwatch.list_metrics(Namespace="AWS/Logs", MetricName=metric, Dimensions=[{"Name": "FilterName", "Value": FILTER}],
                                     RecentlyActive="PT3H")["Metrics"]
    found: dict[int, float] = {}
    for i, listed_metric in enumerate(listed):
        [answer] = cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": f"m{i}", "MetricStat": {"Metric": listed_metric, "Period": 60, "Stat": "Sum"}}],
            StartTime=datetime.fromtimestamp(T0 - 7200, timezone.utc), EndTime=datetime.fromtimestamp(clock() + 60, timezone.utc),
            ScanBy="TimestampAscending")["MetricDataResults"]
        for at, value in zip(answer["Timestamps"], answer["Values"]):
            found[int(at.timestamp())] = found.get(int(at.timestamp()), 0.0) + value
    return found


def test_a_refused_batch_fails_then_the_filter_skips_for_ten_minutes_then_delivers(
        account: LocalAccount, stream: str, model: DeliveryModel, clock: Clock) -> None:
    _put(account, clock, "before 1", "before 2")
    assert _delivered(account) == ["before 1", "before 2"]
    assert _sums(account, clock, "ForwardedLogEvents") == {T0: 2.0}

    clock.advance(60)
    model.refuse(stream)
    _put(account, clock, "refused 1", "refused 2", "refused 3")
    assert [(e.log_group, e.filter_name, e.destination_arn, e.message) for e in model.failed] == [
        (GROUP, FILTER, stream, f"refused {i}") for i in (1, 2, 3)]
    assert _sums(account, clock, "DeliveryErrors") == {T0 + 60: 3.0}
    [listed] = account.client("cloudwatch").list_metrics(Namespace="AWS/Logs", MetricName="DeliveryErrors",
                                                         Dimensions=[{"Name": "FilterName", "Value": FILTER}])["Metrics"]
    assert sorted((d["Name"], d["Value"]) for d in listed["Dimensions"]) == [
        ("DestinationType", "Kinesis"), ("FilterName", FILTER), ("LogGroupName", GROUP)]

    model.accept(stream)  # the role is fixed at once: the filter stays disabled all the same
    for minute in (2, 5, 10):
        clock.now = T0 + 60 + minute * 60 - 1 if minute == 10 else T0 + 60 + minute * 60
        _put(account, clock, f"skipped at +{minute}")
    assert [e.message for e in model.skipped] == ["skipped at +2", "skipped at +5", "skipped at +10"]
    assert [e.ingestion_ms for e in model.skipped] == [int((T0 + 180) * 1000), int((T0 + 360) * 1000), int((T0 + 659) * 1000)]
    assert _delivered(account) == ["before 1", "before 2"]
    assert _sums(account, clock, "DeliveryErrors") == {T0 + 60: 3.0}  # a skipped batch counts nowhere
    assert _sums(account, clock, "ForwardedLogEvents") == {T0: 2.0}

    clock.now = T0 + 60 + DISABLED_FOR_S
    _put(account, clock, "after the window")
    assert _delivered(account)[-1] == "after the window"
    assert _sums(account, clock, "ForwardedLogEvents") == {T0: 2.0, T0 + 660: 1.0}


def test_a_destination_still_refusing_after_the_window_fails_again_and_disables_again(
        account: LocalAccount, stream: str, model: DeliveryModel, clock: Clock) -> None:
    model.refuse(stream)
    _put(account, clock, "first")
    clock.advance(DISABLED_FOR_S)
    _put(account, clock, "second")
    clock.advance(60)
    _put(account, clock, "third")
    assert [e.message for e in model.failed] == ["first", "second"]
    assert [e.message for e in model.skipped] == ["third"]
    assert model.disabled_until[(GROUP, FILTER)] == T0 + 2 * DISABLED_FOR_S
    assert _sums(account, clock, "DeliveryErrors") == {T0: 1.0, T0 + 600: 1.0}


def test_a_missing_destination_fails_as_a_refusing_one(account: LocalAccount, stream: str, model: DeliveryModel, clock: Clock) -> None:
    account.client("kinesis").delete_stream(StreamName="central-logs")
    _put(account, clock, "lost")
    assert [e.message for e in model.failed] == ["lost"]


def test_ingestion_and_creation_times_follow_the_clock(account: LocalAccount, model: DeliveryModel, clock: Clock) -> None:
    [created] = account.logs.describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"]
    assert created["creationTime"] == int(T0 * 1000)
    clock.advance(123.456)
    _put(account, clock, "late")
    [event] = account.logs.filter_log_events(logGroupName=GROUP)["events"]
    assert event["ingestionTime"] == int((T0 + 123.456) * 1000)


def test_recently_active_drops_metrics_without_a_datapoint_in_three_hours(
        account: LocalAccount, stream: str, model: DeliveryModel, clock: Clock) -> None:
    cloudwatch = account.client("cloudwatch")
    _put(account, clock, "old")

    def listed(**recently: Any) -> list[str]:
        return [m["MetricName"] for m in cloudwatch.list_metrics(Namespace="AWS/Logs", Dimensions=[{"Name": "FilterName", "Value": FILTER}],
                                                                 **recently)["Metrics"]]

    clock.advance(3 * 3600 - 1)
    assert listed(RecentlyActive="PT3H") == ["ForwardedLogEvents"]
    clock.advance(2)
    assert listed(RecentlyActive="PT3H") == []
    assert listed() == ["ForwardedLogEvents"]  # without RecentlyActive: every metric (of the last two weeks)
    _put(account, clock, "new")
    assert listed(RecentlyActive="PT3H") == ["ForwardedLogEvents"]  # one entry, however many datapoints


def test_get_metric_data_sums_per_minute_from_the_whole_minute(
        account: LocalAccount, stream: str, model: DeliveryModel, clock: Clock) -> None:
    for offset, messages in ((5, ["a"]), (40, ["b", "c"]), (65, ["d"]), (200, ["e", "f", "g"])):
        clock.now = T0 + offset
        _put(account, clock, *messages)
    assert _sums(account, clock, "ForwardedLogEvents") == {T0: 3.0, T0 + 60: 1.0, T0 + 180: 3.0}
    cloudwatch = account.client("cloudwatch")
    [answer] = cloudwatch.get_metric_data(MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {
        "Namespace": "AWS/Logs", "MetricName": "ForwardedLogEvents", "Dimensions": [
            {"Name": "LogGroupName", "Value": GROUP}, {"Name": "DestinationType", "Value": "Kinesis"}, {"Name": "FilterName", "Value": FILTER}]},
        "Period": 60, "Stat": "Sum"}}], StartTime=datetime.fromtimestamp(T0 + 30, timezone.utc),
        EndTime=datetime.fromtimestamp(T0 + 120, timezone.utc), ScanBy="TimestampAscending")["MetricDataResults"]
    assert [int(t.timestamp()) for t in answer["Timestamps"]] == [T0, T0 + 60]  # 00:30 rounded down to 00:00
    assert answer["Values"] == [3.0, 1.0]
    cloudwatch.put_metric_data(Namespace="Custom", MetricData=[{"MetricName": "ForwardedLogEvents", "Value": 100.0,
                                                                "Timestamp": datetime.fromtimestamp(T0 + 10, timezone.utc), "Dimensions": [
        {"Name": "LogGroupName", "Value": GROUP}, {"Name": "DestinationType", "Value": "Kinesis"}, {"Name": "FilterName", "Value": FILTER}]}])
    assert _sums(account, clock, "ForwardedLogEvents") == {T0: 3.0, T0 + 60: 1.0, T0 + 180: 3.0}  # another namespace's is not summed

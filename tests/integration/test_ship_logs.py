"""ship-logs through its entry point: real-format payloads, a real local HTTP log store, moto for the rest."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from ship_logs.config import ENV_ALLOW_LOOPBACK_HTTP, ENV_SHIP_LOGS, ENV_SHIP_LOGS_DLQ_URL, USAGE_METRIC_NAMES
from ship_logs import handler as ship_logs
from ship_logs.handler import handler
from ship_logs.redrive import redrive
from ship_logs.sinks import SinkRefused, SinkUnavailable
from ship_logs.aws import QueueGateway
from localaws.account import LocalAccount
from localaws.log_store import LogStore, log_store
from localaws.payloads import control_message_event, lambda_log_events, subscription_event
from tests.conftest import call, call_failing

GROUP = "/aws/lambda/orders-api"


@pytest.fixture
def store() -> Iterator[LogStore]:
    with log_store() as running:
        yield running


@pytest.fixture
def dlq(account: LocalAccount, monkeypatch: pytest.MonkeyPatch) -> str:
    url = account.client("sqs").create_queue(QueueName="ship-logs-dlq")["QueueUrl"]
    monkeypatch.setenv(ENV_SHIP_LOGS_DLQ_URL, url)
    return url


@pytest.fixture
def sink(account: LocalAccount, dlq: str, monkeypatch: pytest.MonkeyPatch):
    """Configure ship-logs' sink as the stack would (GOVERNOR_SHIP_LOGS), starting cold."""

    monkeypatch.setenv(ENV_ALLOW_LOOPBACK_HTTP, "1")  # the local log store speaks plain http on 127.0.0.1

    def _sink(**config: Any) -> None:
        monkeypatch.setenv(ENV_SHIP_LOGS, json.dumps(config))
        ship_logs.shipper.cache_clear()

    yield _sink
    ship_logs.shipper.cache_clear()


@pytest.fixture
def opensearch(account: LocalAccount, store: LogStore, sink: Any) -> str:
    secret = account.client("secretsmanager").create_secret(
        Name="opensearch-shipper", SecretString=json.dumps({"username": "shipper", "password": "s3cret-pw"}))["ARN"]
    sink(sink="opensearch", endpoint=store.url, auth="basic", secretArn=secret, index="logs-%Y.%m.%d")
    return secret


def _dead_letters(account: LocalAccount, url: str) -> list[dict[str, Any]]:
    sqs = account.client("sqs")
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _events(count: int = 120, **kwargs: Any) -> list[dict[str, Any]]:
    return lambda_log_events(count, **kwargs)


# --- OpenSearch _bulk ---------------------------------------------------------------------------

def test_batch_is_shipped_to_bulk_with_the_event_id_as_document_id(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    events = _events()

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    assert invocation.result["status"] == "shipped" and invocation.result["shipped"] == len(events)
    [request] = store.requests
    assert request.path == "/_bulk"
    assert request.headers["Content-Type"] == "application/x-ndjson" and request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"shipper:s3cret-pw").decode()
    lines = request.body.decode().splitlines()
    assert len(lines) == 2 * len(events)
    action, document = json.loads(lines[0]), json.loads(lines[1])
    assert action == {"create": {"_index": "logs-2026.11.28", "_id": events[0]["id"]}}
    assert (document["eventId"], document["logGroup"], document["function"]) == (events[0]["id"], GROUP, "orders-api")
    assert {d["eventId"] for d in store.documents()} == {e["id"] for e in events}
    assert invocation.metrics()[("RecordsShipped", None)] == len(events)


def test_a_redelivered_batch_does_not_duplicate(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    event = subscription_event(GROUP, _events())
    call(handler, event, function_name="ship-logs")

    again = call(handler, event, function_name="ship-logs")

    assert again.result["shipped"] == again.result["records"] and again.result["rejected"] == 0
    assert len(store.documents()) == again.result["records"]


def test_429_and_5xx_are_retried_with_backoff(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    store.fail_next = [503, 429]

    invocation = call(handler, subscription_event(GROUP, _events(40)), function_name="ship-logs")

    assert len(store.requests) == 3 and invocation.result["retries"] == 2
    assert len(store.documents()) == invocation.result["records"]
    assert invocation.metrics()[("SinkRetries", None)] == 2


def test_partial_bulk_failures_are_retried_item_by_item_and_refused_items_dead_lettered(
        account: LocalAccount, store: LogStore, opensearch: str, dlq: str) -> None:
    events = [{"id": f"e{i}", "timestamp": 1_795_850_000_000 + i, "message": f"line {i}"} for i in range(10)]
    events[3]["message"] = "line 3 BUSY"
    events[6]["message"] = "line 6 UNMAPPABLE"
    store.busy_marker, store.reject_marker = "BUSY", "UNMAPPABLE"

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    assert (invocation.result["shipped"], invocation.result["rejected"]) == (9, 1)
    first, second = store.requests
    assert len(second.body.decode().splitlines()) == 2  # only the item that answered 429
    assert json.loads(second.body.decode().splitlines()[0])["create"]["_id"] == "e3"
    [dead] = _dead_letters(account, dlq)
    [record] = dead["shipLogsRejected"]["records"]
    assert record["eventId"] == "e6" and "mapper_parsing_exception" in dead["shipLogsRejected"]["reasons"][0]
    assert invocation.metrics()[("RecordsRejected", None)] == 1


def test_a_sink_that_stays_down_fails_the_invocation_and_publishes_no_metrics(account: LocalAccount, store: LogStore, opensearch: str,
                                                                                sink: Any) -> None:
    _with_metrics(sink, store, opensearch, usage=True, custom=True)
    store.fail_next = [503] * 50

    # A short invocation: the backoff gives up when the time left would not cover the next pause.
    error, invocation = call_failing(handler, subscription_event(GROUP, _events(20)), function_name="ship-logs", timeout_ms=7_000)

    assert isinstance(error, SinkUnavailable) and "gave up after" in str(error)
    assert len(store.requests) > 1
    assert invocation.metrics()[("ShipFailures", None)] == 1
    assert account.client("cloudwatch").list_metrics()["Metrics"] == []


def test_refused_credentials_fail_the_invocation(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    store.fail_next = [401]

    error, invocation = call_failing(handler, subscription_event(GROUP, _events(5)), function_name="ship-logs")

    assert isinstance(error, SinkRefused)
    assert invocation.metrics()[("ShipFailures", None)] == 1


def test_a_batch_too_large_for_the_sink_is_halved(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    store.fail_next = [413]

    invocation = call(handler, subscription_event(GROUP, _events(30)), function_name="ship-logs")

    assert [len(r.body.splitlines()) // 2 for r in store.requests][1:] == [invocation.result["records"] // 2, invocation.result["records"] - invocation.result["records"] // 2]
    assert len(store.documents()) == invocation.result["records"]


def test_a_one_megabyte_batch_is_split_to_the_configured_batch_size(account: LocalAccount, store: LogStore, opensearch: str, sink: Any) -> None:
    sink(sink="opensearch", endpoint=store.url, auth="basic", secretArn=opensearch, maxBatchBytes=256 * 1024)
    events = [{"id": f"big{i}", "timestamp": 1_795_850_000_000 + i, "message": f"[INFO]\t2026-11-28T09:14:07.123Z\tr-{i}\t" + "x" * 1_000}
              for i in range(1_000)]
    assert len(json.dumps(events)) > 1_000_000

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    assert invocation.result["shipped"] == 1_000 and len(store.requests) >= 4
    assert all(len(r.body) <= 256 * 1024 for r in store.requests)
    assert len(store.documents()) == 1_000


# --- generic HTTPS NDJSON -----------------------------------------------------------------------

def test_ndjson_endpoint_with_a_header_from_ssm(account: LocalAccount, store: LogStore, sink: Any) -> None:
    parameter = account.client("ssm").put_parameter(Name="/logs/token", Type="SecureString", Value=json.dumps({"name": "X-Api-Key", "value": "k-123"}))
    arn = f"arn:aws:ssm:{account.region}:{account.account_id}:parameter/logs/token"
    assert parameter["Version"] == 1
    sink(sink="http", endpoint=f"{store.url}/ingest", auth="header", secretArn=arn, compress=False)
    events = _events(30)

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    [request] = store.requests
    assert request.path == "/ingest" and request.headers["X-Api-Key"] == "k-123" and "Content-Encoding" not in request.headers
    assert len(store.lines) == invocation.result["records"]
    assert store.lines[0]["eventId"] == events[0]["id"] and {line["eventId"] for line in store.lines} <= {e["id"] for e in events}


def test_ndjson_endpoint_refusing_a_batch_is_halved_until_the_bad_record_stands_alone(account: LocalAccount, store: LogStore, sink: Any, dlq: str) -> None:
    sink(sink="http", endpoint=f"{store.url}/ingest")
    events = [{"id": f"e{i}", "timestamp": 1_795_850_000_000 + i, "message": f"line {i}"} for i in range(2)]
    store.fail_next = [400, 400]  # both records alone: the first refused, the second accepted

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    assert (invocation.result["shipped"], invocation.result["rejected"]) == (1, 1)
    [dead] = _dead_letters(account, dlq)
    assert dead["shipLogsRejected"]["records"][0]["eventId"] == "e0"


# --- Firehose ------------------------------------------------------------------------------------

@pytest.fixture
def firehose_stream(account: LocalAccount, sink: Any) -> str:
    account.client("s3").create_bucket(Bucket="archive", CreateBucketConfiguration={"LocationConstraint": account.region})
    arn = account.client("firehose").create_delivery_stream(
        DeliveryStreamName="archive", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": account.logs_delivery_role(), "BucketARN": "arn:aws:s3:::archive"},
    )["DeliveryStreamARN"]
    sink(sink="firehose", deliveryStreamArn=arn)
    return arn


def test_firehose_sink_delivers_every_record(account: LocalAccount, firehose_stream: str) -> None:
    events = _events(600)

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    assert invocation.result["shipped"] == len(events) and invocation.result["requests"] == 2  # 500 records a call at most
    s3 = account.client("s3")
    body = b"".join(s3.get_object(Bucket="archive", Key=o["Key"])["Body"].read()
                    for o in s3.list_objects_v2(Bucket="archive")["Contents"])
    assert sorted(json.loads(line)["eventId"] for line in body.splitlines()) == sorted(e["id"] for e in events)


def test_firehose_failed_records_alone_are_sent_again(account: LocalAccount, firehose_stream: str) -> None:
    sent: list[int] = []

    def first_call_fails_two(params: dict[str, Any], **_: Any) -> Any:
        sent.append(len(params["Records"]))
        if len(sent) == 1:
            return _Http(), {"FailedPutCount": 2, "Encrypted": False, "RequestResponses": [
                {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"} if i in (0, 4) else {"RecordId": f"r{i}"}
                for i in range(len(params["Records"]))], "ResponseMetadata": {"HTTPStatusCode": 200}}
        return None

    boto3.DEFAULT_SESSION.events.register_first("before-call.firehose.PutRecordBatch", lambda params, **kw: first_call_fails_two(json.loads(params["body"]), **kw))

    invocation = call(handler, subscription_event(GROUP, _events(10)), function_name="ship-logs")

    assert sent == [invocation.result["records"], 2]
    assert invocation.result["retries"] == 1 and invocation.result["shipped"] == invocation.result["records"]


# --- what is not a batch to ship -----------------------------------------------------------------

def test_control_message_is_acknowledged_and_dropped(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    invocation = call(handler, control_message_event(), function_name="ship-logs")

    assert invocation.result == {"status": "control-message"} and store.requests == []
    assert invocation.metrics()[("ControlMessages", None)] == 1


@pytest.mark.parametrize("event", [{"awslogs": {"data": "%%%"}}, {"awslogs": {"data": "aGVsbG8="}}, {"Records": []}])
def test_corrupt_payload_is_dead_lettered_and_finished(account: LocalAccount, store: LogStore, opensearch: str, dlq: str, event: Any) -> None:
    invocation = call(handler, event, function_name="ship-logs")

    assert invocation.result["status"] == "corrupt" and store.requests == []
    assert [level["level"] for level in invocation.logs][-1] == "ERROR"
    [dead] = _dead_letters(account, dlq)
    assert dead["shipLogsCorrupt"]["event"] == event and dead["shipLogsCorrupt"]["reason"] == invocation.result["reason"]
    assert invocation.metrics()[("CorruptPayloads", None)] == 1


def test_empty_batch_ships_nothing(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    invocation = call(handler, subscription_event(GROUP, []), function_name="ship-logs")

    assert (invocation.result["status"], invocation.result["records"], store.requests) == ("shipped", 0, [])


# --- metrics --------------------------------------------------------------------------------------

def _with_metrics(sink: Any, store: LogStore, secret: str, **metrics: Any) -> None:
    """The opensearch fixture's sink, with shipLogs.metrics."""
    sink(sink="opensearch", endpoint=store.url, auth="basic", secretArn=secret, index="logs-%Y.%m.%d", metrics=metrics)


def _metric_lines(events: list[dict[str, Any]]) -> tuple[int, int]:
    """(REPORT lines, MONITORING lines) among ``events``."""
    reports = sum(1 for e in events if e["message"].startswith("REPORT") or '"platform.report"' in e["message"])
    return reports, sum(1 for e in events if e["message"].startswith("MONITORING|"))


def _published(account: LocalAccount) -> dict[str, set[tuple[str, str]]]:
    """Every metric in CloudWatch: namespace -> {(name, FunctionName)}."""
    found: dict[str, set[tuple[str, str]]] = {}
    for metric in account.client("cloudwatch").list_metrics()["Metrics"]:
        function = next((d["Value"] for d in metric["Dimensions"] if d["Name"] == "FunctionName"), "")
        found.setdefault(metric["Namespace"], set()).add((metric["MetricName"], function))
    return found


def test_by_default_no_metric_is_published(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    events = _events(400) + _events(200, seed=11, runtime="node", json_format=True)
    events.sort(key=lambda e: e["timestamp"])
    reports, monitoring = _metric_lines(events)
    assert reports and monitoring  # the batch has what both families would publish

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    assert account.calls["cloudwatch.PutMetricData"] == 0 and _published(account) == {}
    result = invocation.result
    assert (result["usageReports"], result["customMetrics"], result["metricDataPoints"], result["metricRequests"]) == (0, 0, 0, 0)
    assert result["cappedMetricLines"] == 0 and result["refusedCustomMetrics"] == 0
    # The lines are still shipped as records.
    types = [d["type"] for d in store.documents()]
    assert types.count("platform.report") == reports and result["shipped"] == len(store.documents())


@pytest.mark.parametrize("family", ["usage", "custom"])
def test_each_family_is_published_only_when_asked(account: LocalAccount, store: LogStore, opensearch: str, sink: Any, family: str) -> None:
    _with_metrics(sink, store, opensearch, **{family: True})
    events = _events(400) + _events(200, seed=11, runtime="node", json_format=True)
    events.sort(key=lambda e: e["timestamp"])
    reports, monitoring = _metric_lines(events)

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    published = _published(account)
    if family == "usage":
        assert published == {"LogGroupGovernor/Lambda": {(name, "orders-api") for name in USAGE_METRIC_NAMES}}
        assert (invocation.result["usageReports"], invocation.result["customMetrics"]) == (reports, 0)
    else:
        assert published == {"shop": {("orders_placed", "orders-api")}}
        malformed = invocation.result["malformedMonitoring"]  # shipped as records, never metrics
        assert (invocation.result["usageReports"], invocation.result["customMetrics"]) == (0, monitoring - malformed)
    assert account.calls["cloudwatch.PutMetricData"] == invocation.result["metricRequests"] == 1


def test_a_family_publishes_for_at_most_max_dimension_values_functions_per_container_and_counts_the_rest(
        account: LocalAccount, store: LogStore, opensearch: str, sink: Any) -> None:
    _with_metrics(sink, store, opensearch, usage=True, custom=True, maxDimensionValues=2)
    batches = {f"svc-{n}": _events(60, seed=n) for n in range(4)}
    lines = {name: _metric_lines(events) for name, events in batches.items()}
    assert all(reports and monitoring for reports, monitoring in lines.values())

    results = {}
    for name, events in [*batches.items(), ("svc-0", _events(30, seed=21))]:  # svc-0 again: admitted for good
        invocation = call(handler, subscription_event(f"/aws/lambda/{name}", events), function_name="ship-logs")
        results.setdefault(name, []).append(invocation)

    published = _published(account)
    assert {f for _, f in published["LogGroupGovernor/Lambda"]} == {f for _, f in published["shop"]} == {"svc-0", "svc-1"}
    for name in ("svc-2", "svc-3"):
        [invocation] = results[name]
        # Every REPORT and well-formed MONITORING line of the function, both families.
        capped = sum(lines[name]) - invocation.result["malformedMonitoring"]
        assert invocation.result["cappedMetricLines"] == capped and invocation.result["metricRequests"] == 0
        assert invocation.metrics()[("MetricLinesCapped", None)] == capped
        warning = next(line for line in invocation.logs if "maxDimensionValues" in line["message"])
        assert warning["functions"] == {"usage": [name], "custom": [name]} and warning["lines"] == capped
    again = results["svc-0"][1]
    assert again.result["cappedMetricLines"] == 0 and again.result["metricRequests"] >= 1
    assert ("MetricLinesCapped", None) not in again.metrics()
    # Capped functions' records are shipped all the same.
    assert {d["function"] for d in store.documents()} == set(batches)


def test_usage_and_custom_metrics_reach_cloudwatch_in_few_calls(account: LocalAccount, store: LogStore, opensearch: str, sink: Any) -> None:
    _with_metrics(sink, store, opensearch, usage=True, custom=True)
    events = _events(400) + _events(200, seed=11, runtime="node", json_format=True)
    events.sort(key=lambda e: e["timestamp"])

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    cloudwatch = account.client("cloudwatch")
    usage = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="LogGroupGovernor/Lambda")["Metrics"]}
    assert usage >= {"Invocations", "Duration", "BilledDuration", "MemorySize", "MaxMemoryUsed", "ColdStarts", "InitDuration"}
    assert all(m["Dimensions"] == [{"Name": "FunctionName", "Value": "orders-api"}]
               for m in cloudwatch.list_metrics(Namespace="LogGroupGovernor/Lambda")["Metrics"])
    reports = sum(1 for e in events if e["message"].startswith("REPORT") or '"platform.report"' in e["message"])
    stats = cloudwatch.get_metric_statistics(
        Namespace="LogGroupGovernor/Lambda", MetricName="Invocations", Dimensions=[{"Name": "FunctionName", "Value": "orders-api"}],
        StartTime="2026-11-28T00:00:00Z", EndTime="2026-11-29T00:00:00Z", Period=86400, Statistics=["Sum", "SampleCount"])
    assert sum(p["Sum"] for p in stats["Datapoints"]) == reports == invocation.result["usageReports"]
    assert {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="shop")["Metrics"]} == {"orders_placed"}
    assert account.calls["cloudwatch.PutMetricData"] == invocation.result["metricRequests"] == 2  # one per namespace


def test_malformed_monitoring_line_is_logged_and_shipped_as_a_record(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    events = [{"id": "m1", "timestamp": 1_795_850_000_000, "message": "MONITORING|lots|count|orders_placed|shop"}]

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    assert [d["message"] for d in store.documents()] == ["MONITORING|lots|count|orders_placed|shop"]
    warning = next(line for line in invocation.logs if line["message"].startswith("malformed MONITORING"))
    assert warning["line"] == "MONITORING|lots|count|orders_placed|shop"
    assert invocation.metrics()[("MalformedMonitoringLines", None)] == 1


# --- redrive --------------------------------------------------------------------------------------

def test_redrive_replays_failed_batches_and_refused_records(account: LocalAccount, store: LogStore, opensearch: str, dlq: str) -> None:
    sqs = account.client("sqs")
    failed_batch = subscription_event(GROUP, _events(20))
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(failed_batch))  # what Lambda's async DLQ holds
    events = [{"id": f"e{i}", "timestamp": 1_795_850_000_000 + i, "message": f"line {i} UNMAPPABLE" if i == 1 else f"line {i}"} for i in range(3)]
    store.reject_marker = "UNMAPPABLE"
    call(handler, subscription_event(GROUP, events), function_name="ship-logs")  # refuses e1 into the DLQ
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"shipLogsCorrupt": {"reason": "x", "event": {}}}))
    store.reject_marker = "\u0000never"  # the mapping was fixed

    result = redrive(QueueGateway(dlq, sqs), lambda body: call(handler, json.loads(body), function_name="ship-logs"))

    assert (result.replayed, result.failed, result.left_corrupt) == (2, [], 1)
    assert "e1" in {d["eventId"] for d in store.documents()}
    assert {e["id"] for e in lambda_log_events(20)} <= {d["eventId"] for d in store.documents()}


class _Http:
    status_code = 200
    headers: dict = {}
    raw = None
    content = b""
    text = ""


def test_sigv4_signs_each_request_for_opensearch_service(account: LocalAccount, store: LogStore, sink: Any) -> None:
    sink(sink="opensearch", endpoint=store.url, auth="sigv4", domainArn=f"arn:aws:es:{account.region}:{account.account_id}:domain/logs")

    call(handler, subscription_event(GROUP, _events(10)), function_name="ship-logs")

    [request] = store.requests
    authorization = request.headers["Authorization"]
    assert re.match(rf"AWS4-HMAC-SHA256 Credential=\w+/\d{{8}}/{account.region}/es/aws4_request, SignedHeaders=\S*host;x-amz-date", authorization)
    assert request.headers["X-Amz-Date"] and request.headers["X-Amz-Security-Token"]
    assert request.headers["Content-Encoding"] == "gzip"  # the signature covers the compressed body as sent


# --- records lost or leaked (#7) -------------------------------------------------------------------

def test_a_redrive_ends_while_the_sink_still_refuses_a_record(account: LocalAccount, store: LogStore, opensearch: str, dlq: str) -> None:
    sqs = account.client("sqs")
    store.reject_marker = "UNMAPPABLE"
    events = [{"id": "e0", "timestamp": 1_795_850_000_000, "message": "line UNMAPPABLE"}]
    call(handler, subscription_event(GROUP, events), function_name="ship-logs")  # refused into the DLQ
    replays = []

    def replay(body: str) -> None:
        replays.append(body)
        assert len(replays) < 5, "the redrive keeps replaying the record it re-dead-letters"
        call(handler, json.loads(body), function_name="ship-logs")

    result = redrive(QueueGateway(dlq, sqs), replay)

    assert result.replayed == 1 and len(replays) == 1
    assert result.left_new == 1  # refused again: a new message, left for the next redrive
    counts = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    assert sum(int(v) for v in counts["Attributes"].values()) == 1


def test_a_redirect_is_a_failure_never_followed(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    store.fail_next = [302, 302, 302, 302, 302, 302, 302]

    error, invocation = call_failing(handler, subscription_event(GROUP, _events(5)), function_name="ship-logs")

    assert isinstance(error, SinkRefused) and "redirect" in str(error)
    assert [r.method for r in store.requests] == ["POST"]  # no GET to wherever it pointed
    assert store.documents() == []
    assert invocation.metrics()[("ShipFailures", None)] == 1


def test_one_unencodable_line_does_not_sink_its_batch(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    events = _events(40)
    events[5]["message"] = '{"level": "INFO", "message": "upload \\udcff.txt"}'
    events[9]["message"] = "[" * 5000 + "]" * 5000
    events[12]["message"] = '{"level": "WARN", "message": "ratio", "value": NaN}'

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    assert invocation.result["status"] == "shipped"
    shipped = {d["eventId"]: d for d in store.documents()}
    assert {e["id"] for e in events} <= set(shipped)
    assert shipped[events[5]["id"]]["message"] == "upload \ufffd.txt"
    assert shipped[events[12]["id"]]["fields"]["value"] is None


def test_a_large_refused_record_of_non_ascii_text_fits_one_dead_letter_message(account: LocalAccount, store: LogStore,
                                                                              opensearch: str, dlq: str) -> None:
    store.reject_marker = "UNMAPPABLE"
    events = [{"id": "big", "timestamp": 1_795_850_000_000, "message": "UNMAPPABLE " + "ü€😀" * 60_000}]

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    assert invocation.result["rejected"] == 1
    raw = account.client("sqs").receive_message(QueueUrl=dlq)["Messages"][0]["Body"]
    assert len(raw.encode()) <= 256 * 1024
    [record] = json.loads(raw)["shipLogsRejected"]["records"]
    assert record["truncated"] is True and record["message"].startswith("UNMAPPABLE ü€😀")


def test_a_corrupt_payload_is_logged_by_size_and_digest_only(account: LocalAccount, store: LogStore, opensearch: str, dlq: str) -> None:
    secret = "password=hunter2-very-secret"
    event = {"awslogs": {"data": base64.b64encode(secret.encode()).decode()}}

    invocation = call(handler, event, function_name="ship-logs")

    assert invocation.result["status"] == "corrupt"
    assert secret not in json.dumps(invocation.lines) and event["awslogs"]["data"] not in json.dumps(invocation.lines)
    [line] = [line for line in invocation.logs if line.get("message") == "corrupt payload dead-lettered"]
    assert line["bytes"] > 0 and len(line["sha256"]) == 64
    assert json.loads(account.client("sqs").receive_message(QueueUrl=dlq)["Messages"][0]["Body"])["shipLogsCorrupt"]["sha256"] == line["sha256"]


def test_custom_metrics_outside_the_allowed_namespaces_are_not_published(account: LocalAccount, store: LogStore, sink: Any) -> None:
    sink(sink="http", endpoint=store.url + "/ingest", customMetricNamespaces=["Shop"], metrics={"custom": True})
    events = [{"id": f"m{i}", "timestamp": 1_795_850_000_000 + i, "message": line}
              for i, line in enumerate(["MONITORING|1|count|orders|Shop", "MONITORING|1|count|spoof|Billing"])]

    invocation = call(handler, subscription_event(GROUP, events), function_name="ship-logs")

    assert invocation.result["customMetrics"] == 1
    assert invocation.metrics()[("CustomMetricsRefused", None)] == 1


# --- the central archive: Kinesis batches from many accounts (#10) ---------------------------------

MEMBER_A, MEMBER_B = "210987654321", "345678901234"


def _kinesis(*documents: dict[str, Any], region: str = "eu-west-1") -> dict[str, Any]:
    from localaws.payloads import kinesis_event
    return kinesis_event(list(documents), region=region)


def _document(group: str, owner: str, count: int = 30, **kwargs: Any) -> dict[str, Any]:
    from localaws.payloads import subscription_document
    return subscription_document(group, _events(count, **kwargs), owner=owner)


def test_a_kinesis_batch_from_many_accounts_ships_every_record_with_its_account_and_region(
        account: LocalAccount, store: LogStore, opensearch: str, sink: Any) -> None:
    _with_metrics(sink, store, opensearch, usage=True)
    event = _kinesis(_document("/aws/lambda/orders-api", MEMBER_A), _document("/aws/lambda/billing", MEMBER_B, seed=4),
                     region="eu-central-1")

    invocation = call(handler, event, function_name="ship-logs")

    assert invocation.result["batchItemFailures"] == []
    documents = store.documents()
    assert {(d["owner"], d["region"]) for d in documents} == {(MEMBER_A, "eu-central-1"), (MEMBER_B, "eu-central-1")}
    assert invocation.result["shipped"] == len(documents) > 0
    usage = account.client("cloudwatch").list_metrics(Namespace="LogGroupGovernor/Lambda")["Metrics"]
    accounts = {d["Value"] for m in usage for d in m["Dimensions"] if d["Name"] == "Account"}
    assert accounts == {MEMBER_A, MEMBER_B}  # one set of usage metrics per source account


def test_a_poison_record_is_dead_lettered_and_the_batch_goes_on(account: LocalAccount, store: LogStore, opensearch: str, dlq: str) -> None:
    event = _kinesis(_document("/aws/lambda/orders-api", MEMBER_A), _document("/aws/lambda/billing", MEMBER_B, seed=4))
    event["Records"][0]["kinesis"]["data"] = base64.b64encode(b"not gzip at all").decode()

    invocation = call(handler, event, function_name="ship-logs")

    assert invocation.result["batchItemFailures"] == [] and invocation.result["corrupt"] == 1
    assert {d["owner"] for d in store.documents()} == {MEMBER_B}
    [kept] = _dead_letters(account, dlq)
    assert kept["shipLogsCorrupt"]["event"]["kinesis"]["sequenceNumber"] == event["Records"][0]["kinesis"]["sequenceNumber"]


def test_a_sink_failure_reports_that_record_and_starts_none_after_it(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    event = _kinesis(*(_document(f"/aws/lambda/svc-{n}", MEMBER_A, count=5, seed=n) for n in range(3)))
    store.down_marker = "svc-1"  # the store refuses the second record's data, whatever the retries

    invocation = call(handler, event, function_name="ship-logs")

    second = event["Records"][1]["kinesis"]["sequenceNumber"]
    assert invocation.result["batchItemFailures"] == [{"itemIdentifier": second}]
    assert not any(b"svc-2" in r.body for r in store.requests)  # the third record was never started
    assert invocation.metrics()[("ShipFailures", None)] == 1


def test_the_direct_path_records_the_functions_own_region(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    call(handler, subscription_event(GROUP, _events(10)), function_name="ship-logs")

    assert {d["region"] for d in store.documents()} == {account.region}


def test_a_record_that_inflates_too_far_or_nests_too_deep_is_dead_lettered_alone(
        account: LocalAccount, store: LogStore, opensearch: str, dlq: str) -> None:
    """One hostile record never fails the Kinesis batch (nor kills the function on every retry)."""
    import gzip as _gzip

    from ship_logs import codec

    event = _kinesis(*(_document(f"/aws/lambda/svc-{n}", MEMBER_A, count=5, seed=n) for n in range(4)))
    bomb = _gzip.compress(b"{" + b" " * codec.MAX_GUNZIPPED_BYTES + b"}", compresslevel=9)
    deep = _gzip.compress(b'{"messageType": "DATA_MESSAGE", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    event["Records"][1]["kinesis"]["data"] = base64.b64encode(bomb).decode()
    event["Records"][2]["kinesis"]["data"] = base64.b64encode(deep).decode()

    invocation = call(handler, event, function_name="ship-logs")

    assert invocation.result["batchItemFailures"] == [] and invocation.result["corrupt"] == 2
    assert {d["logGroup"] for d in store.documents()} == {"/aws/lambda/svc-0", "/aws/lambda/svc-3"}
    reasons = sorted(m["shipLogsCorrupt"]["reason"] for m in _dead_letters(account, dlq))
    assert reasons[0].startswith("kinesis.data cannot be read: RecursionError")
    assert reasons[1] == f"kinesis.data is not gzip: inflates past {codec.MAX_GUNZIPPED_BYTES:,} bytes"


def test_a_batch_of_ship_logs_own_log_group_is_dropped_counted_and_never_shipped(
        account: LocalAccount, store: LogStore, opensearch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop is cut at the receiving end, whatever subscribed the group (#18)."""
    monkeypatch.setenv("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ship-logs")

    events = _events(10)
    own = call(handler, subscription_event("/aws/lambda/ship-logs", events), function_name="ship-logs")
    other = call(handler, subscription_event(GROUP, _events(10)), function_name="ship-logs")

    assert own.result == {"status": "own-log-group-dropped", "events": len(events)}
    assert own.metrics()[("OwnLogGroupBatchesDropped", None)] == 1
    assert other.result["status"] == "shipped"
    assert {d["logGroup"] for d in store.documents()} == {GROUP}


def test_the_index_template_is_put_once_per_container_before_its_first_bulk(account: LocalAccount, store: LogStore, opensearch: str) -> None:
    """A fresh cluster never maps a field one way and refuses records that carry it another way (#18)."""
    import json as _json
    from pathlib import Path

    call(handler, subscription_event(GROUP, _events(10)), function_name="ship-logs")
    call(handler, subscription_event(GROUP, _events(10, seed=3)), function_name="ship-logs")

    [put] = store.template_requests  # one per container
    assert put.path == "/_index_template/log-group-governor" and store.requests[0].path.endswith("/_bulk")
    documented = _json.loads((Path(__file__).resolve().parents[2] / "lambdas/ship_logs/opensearch_index_template.json").read_text())
    assert store.templates["log-group-governor"] == {**documented, "index_patterns": ["logs-*"]}  # the configured index, logs-%Y.%m.%d


def test_review_custom_metric_names_count_against_the_cap_so_one_function_cannot_flood_cloudwatch(
        account: LocalAccount, store: LogStore, opensearch: str, sink: Any) -> None:
    _with_metrics(sink, store, opensearch, custom=True, maxDimensionValues=1)
    events = [{"id": f"m{i}", "timestamp": 1_795_850_000_000 + i, "message": f"MONITORING|1|count|order-{i}|Shop"} for i in range(200)]

    invocation = call(handler, subscription_event("/aws/lambda/orders-api", events), function_name="ship-logs")

    assert _published(account) == {"Shop": {("order-0", "orders-api")}}  # one metric: $0.30 a month, not 200 of them
    assert invocation.result["customMetrics"] == 1 and invocation.result["cappedMetricLines"] == 199
    assert len(store.documents()) == 200  # every line still shipped as a record

"""Parsing every line Lambda and its runtimes write, and the metrics derived from them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ship_logs.config import SHIP_LOGS, USAGE_METRIC_NAMES
from ship_logs.metrics import MAX_DATA_POINTS_PER_CALL, MetricSet
from ship_logs.parse import CustomMetric, parse_batch
from ship_logs.payload import CorruptPayload, LogBatch, LogEvent, decode_batch, encode_batch
from localaws.payloads import control_message_event, lambda_log_events, subscription_document

RID = "3f5c2b1a-7e8d-4c9b-a0f1-2e3d4c5b6a79"
T = 1_795_850_047_123  # 2026-11-28T07:14:07.123Z


def _parse(*messages: str, log_group: str = "/aws/lambda/orders-api"):
    batch = LogBatch("DATA_MESSAGE", "123456789012", log_group, "2026/11/28/[$LATEST]abc", ("f",),
                     tuple(LogEvent(f"id{i}", T + i, m) for i, m in enumerate(messages)))
    return parse_batch(batch)


def _only(*messages: str, **kwargs: Any) -> dict[str, Any]:
    [record] = _parse(*messages, **kwargs).records
    return record


def test_record_shape() -> None:
    record = _only("hello")

    assert record == {
        "@timestamp": "2026-11-28T07:14:07.123Z", "eventId": "id0", "logGroup": "/aws/lambda/orders-api",
        "logStream": "2026/11/28/[$LATEST]abc", "owner": "123456789012", "region": None, "function": "orders-api", "requestId": None,
        "level": None, "type": "app", "message": "hello", "fields": None,
    }


def test_structured_json_keeps_every_field_searchable() -> None:
    line = json.dumps({"level": "INFO", "message": "order accepted", "function_request_id": RID, "correlation_id": "c-1",
                       "user_agent": "curl/8.5", "debug": True, "order": {"id": 7}})

    record = _only(line)

    assert (record["level"], record["message"], record["requestId"]) == ("INFO", "order accepted", RID)
    assert record["fields"]["correlation_id"] == "c-1" and record["fields"]["user_agent"] == "curl/8.5"
    assert record["fields"]["debug"] is True and record["fields"]["order"] == {"id": 7}


def test_lambda_json_log_format_for_app_lines() -> None:
    record = _only(json.dumps({"timestamp": "2026-11-28T09:14:07Z", "level": "WARN", "message": "slow", "requestId": RID, "logger": "root"}))

    assert (record["level"], record["message"], record["requestId"], record["fields"]["logger"]) == ("WARN", "slow", RID, "root")


def test_python_runtime_lines_with_tabs_and_multi_line_messages() -> None:
    record = _only(f"[ERROR]\t2026-11-28T09:14:07.123Z\t{RID}\tpayment declined\rTraceback (most recent call last):\r  File \"app.py\", line 3\rValueError: card expired\n")

    assert (record["level"], record["requestId"]) == ("ERROR", RID)
    assert record["message"] == 'payment declined\nTraceback (most recent call last):\n  File "app.py", line 3\nValueError: card expired'


def test_python_runtime_uncaught_exception_line() -> None:
    record = _only("[ERROR] KeyError: 'order'\rTraceback (most recent call last):\r  File \"/var/task/app.py\", line 9, in handler")

    assert record["level"] == "ERROR" and record["message"].startswith("KeyError: 'order'\nTraceback")


def test_node_runtime_lines_with_tabs_and_stack_traces() -> None:
    record = _only(f"2026-11-28T09:14:07.123Z\t{RID}\tERROR\tInvoke Error \tTypeError: boom\n    at handler (/var/task/index.js:12:20)")

    assert (record["level"], record["requestId"]) == ("ERROR", RID)
    assert record["message"] == "Invoke Error \tTypeError: boom\n    at handler (/var/task/index.js:12:20)"


def test_stack_trace_written_line_by_line_is_joined_to_its_message() -> None:
    records = _parse(f"[ERROR]\t2026-11-28T09:14:07.123Z\t{RID}\tboom", "Traceback (most recent call last):",
                     '  File "app.py", line 3, in handler', "next line").records

    assert [r["message"] for r in records] == ['boom\nTraceback (most recent call last):\n  File "app.py", line 3, in handler', "next line"]


def test_plain_text_takes_the_request_id_of_the_running_invocation() -> None:
    records = _parse(f"START RequestId: {RID} Version: $LATEST", "cache warm", "ERROR: disk full", f"END RequestId: {RID}").records

    assert [(r["type"], r["requestId"], r["level"]) for r in records] == [
        ("platform.start", RID, "INFO"), ("app", RID, None), ("app", RID, "ERROR"), ("platform.end", RID, "INFO")]
    assert records[0]["fields"] == {"version": "$LATEST"}


def test_text_report_line_gives_usage() -> None:
    parsed = _parse(f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t\n")

    [usage] = parsed.usage
    assert (usage.function, usage.duration_ms, usage.billed_duration_ms, usage.memory_size_mb, usage.max_memory_used_mb, usage.init_duration_ms) == (
        "orders-api", 15.74, 16, 128, 56, 130.49)
    assert usage.cold_start and parsed.records[0]["type"] == "platform.report" and parsed.records[0]["requestId"] == RID


def test_warm_report_has_no_init_duration() -> None:
    [usage] = _parse(f"REPORT RequestId: {RID}\tDuration: 2.01 ms\tBilled Duration: 3 ms\tMemory Size: 256 MB\tMax Memory Used: 70 MB\t").usage

    assert usage.init_duration_ms is None and not usage.cold_start


def test_json_platform_report_gives_usage() -> None:
    line = json.dumps({"time": "2026-11-28T09:14:07.123Z", "type": "platform.report", "record": {
        "requestId": RID, "metrics": {"durationMs": 15.74, "billedDurationMs": 16, "memorySizeMB": 128, "maxMemoryUsedMB": 56,
                                      "initDurationMs": 130.49}, "status": "success"}})

    parsed = _parse(line)

    [usage] = parsed.usage
    assert (usage.duration_ms, usage.init_duration_ms) == (15.74, 130.49)
    assert (parsed.records[0]["type"], parsed.records[0]["requestId"]) == ("platform.report", RID)


def test_json_platform_start_and_runtime_done() -> None:
    records = _parse(json.dumps({"time": "x", "type": "platform.start", "record": {"requestId": RID, "version": "$LATEST"}}),
                     json.dumps({"time": "x", "type": "platform.runtimeDone", "record": {"requestId": RID, "status": "success"}})).records

    assert [(r["type"], r["requestId"]) for r in records] == [("platform.start", RID), ("platform.runtimeDone", RID)]


def test_init_start_line() -> None:
    record = _only("INIT_START Runtime Version: python:3.13.v16\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:abc")

    assert record["type"] == "platform.initStart" and record["fields"]["Runtime Version"] == "python:3.13.v16"


@pytest.mark.parametrize(
    ("line", "unit", "value"),
    [
        ("MONITORING|3|count|orders_placed|shop", "Count", 3.0),
        ("MONITORING|3|COUNT|orders_placed|shop", "Count", 3.0),
        ("MONITORING|12.5|ms|latency|shop", "Milliseconds", 12.5),
        ("MONITORING|12.5|Milliseconds|latency|shop", "Milliseconds", 12.5),
        ("MONITORING|2048|bytes|payload|shop", "Bytes", 2048.0),
        ("MONITORING|99|%|hit_rate|shop", "Percent", 99.0),
        ("MONITORING|1|seconds|wait|shop", "Seconds", 1.0),
    ],
)
def test_monitoring_lines_with_units_as_people_write_them(line: str, unit: str, value: float) -> None:
    parsed = _parse(line)

    name, namespace = line.split("|")[3:5]
    assert parsed.custom == [CustomMetric("orders-api", T, namespace, name, unit, value)]
    assert parsed.records[0]["message"] == line  # shipped as a record too


def test_monitoring_line_inside_a_runtime_line() -> None:
    assert _parse(f"2026-11-28T09:14:07.123Z\t{RID}\tINFO\tMONITORING|1|count|orders_placed|shop").custom[0].name == "orders_placed"


@pytest.mark.parametrize("line", ["MONITORING|lots|count|orders|shop", "MONITORING|1|parsecs|orders|shop", "MONITORING|1|count|orders",
                                  "MONITORING|1|count||shop", "MONITORING|1|count|x|AWS/Lambda", "MONITORING|nan|count|x|shop"])
def test_malformed_monitoring_lines_are_kept_as_records(line: str) -> None:
    parsed = _parse(line)

    assert parsed.custom == [] and parsed.malformed_monitoring == [line]
    assert parsed.records[0]["message"] == line


def test_custom_log_group_takes_the_function_from_powertools() -> None:
    record = _only(json.dumps({"level": "INFO", "message": "x", "function_name": "billing"}), log_group="/platform/billing")

    assert record["function"] == "billing"


def test_generated_payload_parses_into_one_record_per_line() -> None:
    events = lambda_log_events(500)
    parsed = parse_batch(decode_batch(encode_batch(subscription_document("/aws/lambda/orders-api", events))))

    assert len(parsed.records) == len(events)
    assert {r["type"] for r in parsed.records} >= {"platform.start", "platform.end", "platform.report", "app"}
    assert len(parsed.usage) == sum(1 for e in events if e["message"].startswith("REPORT"))


# --- decoding -----------------------------------------------------------------------------------

def test_control_message_is_recognised() -> None:
    assert decode_batch(control_message_event()).is_control


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"awslogs": {"data": "not base64!"}}, "not base64 of gzip of JSON"),
        ({"awslogs": {"data": "aGVsbG8="}}, "not gzip"),
        ({"awslogs": {}}, "awslogs.data is missing"),
        ({"Records": []}, "not a CloudWatch Logs subscription event"),
        ([], "not a CloudWatch Logs subscription event"),
        (encode_batch({"messageType": "SOMETHING"}), "messageType is 'SOMETHING'"),
        (encode_batch({"messageType": "DATA_MESSAGE", "logEvents": "x"}), "logEvents is not a list"),
    ],
)
def test_corrupt_payloads_are_refused_with_a_clear_error(event: Any, message: str) -> None:
    with pytest.raises(CorruptPayload, match=message):
        decode_batch(event)


def test_gzip_of_something_else_is_corrupt() -> None:
    import base64
    import gzip

    with pytest.raises(CorruptPayload, match="not base64 of gzip of JSON"):
        decode_batch({"awslogs": {"data": base64.b64encode(gzip.compress(b"\xff\xfe not json")).decode()}})


def test_malformed_events_are_left_out_and_the_rest_of_the_batch_kept() -> None:
    events = [{"id": "1", "timestamp": T, "message": "ok"}, {"id": 2, "timestamp": T, "message": "bad id"},
              {"id": "3", "message": "no timestamp"}, {"id": "4", "timestamp": T, "message": "ok too"}]

    batch = decode_batch(encode_batch(subscription_document("/aws/lambda/x", events)))

    assert [e.id for e in batch.events] == ["1", "4"] and batch.malformed_events == 2


# --- metrics ------------------------------------------------------------------------------------

def test_usage_is_aggregated_per_function_and_minute() -> None:
    parsed = _parse(*(f"REPORT RequestId: r{i}\tDuration: {10 * (i + 1)} ms\tBilled Duration: 100 ms\tMemory Size: 128 MB\tMax Memory Used: 50 MB"
                      for i in range(3)))
    metric_set = MetricSet()
    metric_set.add_usage(parsed.usage)

    [request] = metric_set.requests()
    duration = next(d for d in request["MetricData"] if d["MetricName"] == "Duration")
    assert request["Namespace"] == "LogGroupGovernor/Lambda"
    assert duration["Dimensions"] == [{"Name": "FunctionName", "Value": "orders-api"}]
    assert duration["StatisticValues"] == {"SampleCount": 3, "Sum": 60.0, "Minimum": 10.0, "Maximum": 30.0}
    cold = next(d for d in request["MetricData"] if d["MetricName"] == "ColdStarts")
    assert cold["StatisticValues"]["Sum"] == 0


def test_the_usage_metrics_the_configuration_reference_prices_are_those_a_function_gets() -> None:
    """shipLogs.metrics' help counts USAGE_METRIC_NAMES per function: a cold start's batch makes every one, one dimension set each."""
    parsed = _parse("REPORT RequestId: r1\tDuration: 12.5 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 50 MB"
                    "\tInit Duration: 200.1 ms",
                    "REPORT RequestId: r2\tDuration: 10 ms\tBilled Duration: 10 ms\tMemory Size: 128 MB\tMax Memory Used: 51 MB")
    metric_set = MetricSet()
    metric_set.add_usage(parsed.usage)

    [request] = metric_set.requests()
    metrics = {(d["MetricName"], json.dumps(d["Dimensions"])) for d in request["MetricData"]}
    assert sorted(name for name, _ in metrics) == sorted(USAGE_METRIC_NAMES)
    assert "$2.10 a month per function, $210 per 100 functions" in SHIP_LOGS["metrics"].help


def test_requests_respect_the_put_metric_data_limits() -> None:
    metric_set = MetricSet()
    for i in range(2_500):
        metric_set.add("shop", f"metric_{i}", (), "Count", T, 1)
    metric_set.add("other", "x", (), "Count", T, 1)

    requests = list(metric_set.requests())

    assert sorted(len(r["MetricData"]) for r in requests) == [1, 500, MAX_DATA_POINTS_PER_CALL, MAX_DATA_POINTS_PER_CALL]
    assert all(len(json.dumps(r, default=str)) < 1_000_000 for r in requests)
    assert {r["Namespace"] for r in requests} == {"shop", "other"}


# --- one bad line never sinks a batch; tracebacks stay with their own record (#7) -----------------

def test_a_traceback_printed_line_by_line_is_a_record_of_its_own_not_glued_to_the_previous_one() -> None:
    records = _parse(f"[INFO]\t2026-11-28T09:14:07.123Z\t{RID}\torder 1 accepted",
                     "Traceback (most recent call last):", '  File "app.py", line 3, in handler', "ValueError: card expired",
                     "order 2 accepted").records

    assert [r["message"] for r in records] == [
        "order 1 accepted",
        'Traceback (most recent call last):\n  File "app.py", line 3, in handler\nValueError: card expired',
        "order 2 accepted",
    ]
    assert records[1]["level"] == "ERROR"


def test_chained_tracebacks_stay_one_record() -> None:
    records = _parse("Traceback (most recent call last):", '  File "a.py", line 1', "KeyError: 'x'", "",
                     "During handling of the above exception, another exception occurred:", "",
                     "Traceback (most recent call last):", '  File "b.py", line 2', "RuntimeError: wrapped").records

    assert [r["message"] for r in records] == [
        'Traceback (most recent call last):\n  File "a.py", line 1\nKeyError: \'x\'\n\n'
        "During handling of the above exception, another exception occurred:\n\n"
        'Traceback (most recent call last):\n  File "b.py", line 2\nRuntimeError: wrapped'
    ]


@pytest.mark.parametrize("line", [
    '{"level": "INFO", "message": "file \\udcff.txt"}',          # a lone surrogate escape: valid JSON
    "[" * 5000 + "]" * 5000,                                        # nested deeper than Python parses
    '{"level": "INFO", "message": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
    '{"level": "INFO", "message": "ratio", "value": NaN, "limit": Infinity}',
])
def test_a_hostile_line_is_parsed_without_raising_and_every_record_encodes_as_standard_json(line: str) -> None:
    from ship_logs.sinks import encode_record

    records = _parse("first", line, "last").records

    assert [r["message"] for r in records][::2] == ["first", "last"]
    for record in records:
        encoded = encode_record(record)
        decoded = json.loads(encoded.decode("utf-8"), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
        assert decoded["eventId"] == record["eventId"]


def test_a_timestamp_past_year_9999_is_clamped_not_fatal() -> None:
    batch = LogBatch("DATA_MESSAGE", "123456789012", "/aws/lambda/orders-api", "s", ("f",),
                     (LogEvent("a", 10**15, "far future"), LogEvent("b", T, "now")))

    records = parse_batch(batch).records

    assert records[0]["@timestamp"] == "9999-12-31T23:59:59.999Z" and records[1]["message"] == "now"


def test_metrics_come_only_from_a_lambda_functions_log_group_never_from_a_field_in_a_line() -> None:
    report = f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB"
    spoof = json.dumps({"level": "INFO", "message": "MONITORING|1|count|Orders|Billing", "function_name": "billing"})

    foreign = _parse(report, "MONITORING|9|count|Fake|AWS/Lambda-ish", spoof, log_group="/ecs/payments")
    lambda_group = _parse(report, "MONITORING|1|count|Orders|Billing", log_group="/aws/lambda/orders-api")

    assert foreign.usage == [] and foreign.custom == []
    assert [u.function for u in lambda_group.usage] == ["orders-api"]
    assert [(m.function, m.namespace) for m in lambda_group.custom] == [("orders-api", "Billing")]


def test_a_stack_written_line_by_line_after_a_plain_message_is_joined_to_it() -> None:
    """Node.js and Java print frames as indented lines; they belong to the message before them."""
    records = _parse("Error: connection refused", "    at Socket.connect (net.js:1:1)", "    at main (app.js:9:3)",
                     "Caused by: java.io.IOException: reset", "\tat com.example.Db.open(Db.java:42)", "next").records

    assert [r["message"] for r in records] == [
        "Error: connection refused\n    at Socket.connect (net.js:1:1)\n    at main (app.js:9:3)\n"
        "Caused by: java.io.IOException: reset\n\tat com.example.Db.open(Db.java:42)",
        "next",
    ]


# --- what Lambda really writes (#18: 59 lines of other projects' fixtures and captured logs, 52 read right before) ---

RID = "5f2c8a3e-1b4d-4c6e-9f0a-2b4d6f8a0c1e"


@pytest.mark.parametrize(("line", "level"), [
    (f"2026-11-28T07:13:23.001Z {RID} Task timed out after 3.00 seconds", "ERROR"),
    (f"2026-11-28T07:13:23.001Z {RID} Error: Runtime exited with error: signal: killed", "ERROR"),
    (f"2026-11-28T07:13:23.001Z {RID} Runtime.OutOfMemory: Runtime exited with error: signal: killed", "ERROR"),
])
def test_timeout_and_out_of_memory_lines_carry_their_request_id_even_when_the_batch_starts_mid_invocation(line: str, level: str) -> None:
    record = _only(line)  # no START in this batch: the id is the line's own

    assert (record["requestId"], record["level"], record["message"]) == (RID, level, line.split(f"{RID} ", 1)[1])


def test_a_platform_report_with_only_its_duration_still_counts_the_invocation() -> None:
    """Lambda Managed Instances: the JSON report carries durationMs alone."""
    parsed = _parse(json.dumps({"time": "2026-11-28T07:13:23.001Z", "type": "platform.report",
                                "record": {"requestId": RID, "metrics": {"durationMs": 41.5}, "status": "success"}}))

    [usage] = parsed.usage
    assert (usage.duration_ms, usage.billed_duration_ms, usage.memory_size_mb, usage.cold_start) == (41.5, None, None, False)
    metric_set = MetricSet()
    metric_set.add_usage(parsed.usage)
    names = {d["MetricName"]: d for r in metric_set.requests() for d in r["MetricData"]}
    assert names["Invocations"]["StatisticValues"]["SampleCount"] == 1 and names["Duration"]["StatisticValues"]["Sum"] == 41.5
    assert "BilledDuration" not in names and "MemorySize" not in names


def test_a_line_without_a_level_column_keeps_its_request_id() -> None:
    """Older Node.js runtimes: <time>\\t<request id>\\t<message>."""
    record = _only(f"2026-11-28T07:13:23.001Z\t{RID}\torder 42 shipped\tto: Paris")

    assert (record["requestId"], record["message"], record["level"]) == (RID, "order 42 shipped\tto: Paris", None)


def test_a_report_line_with_spaces_for_tabs_is_read_as_a_report_never_as_a_long_request_id() -> None:
    line = f"REPORT RequestId: {RID}  Duration: 15.74 ms  Billed Duration: 16 ms  Memory Size: 128 MB  Max Memory Used: 56 MB  Init Duration: 130.49 ms"
    parsed = _parse(line)

    [record] = parsed.records
    assert (record["type"], record["requestId"]) == ("platform.report", RID)
    [usage] = parsed.usage
    assert (usage.duration_ms, usage.billed_duration_ms, usage.memory_size_mb, usage.max_memory_used_mb, usage.init_duration_ms) == (
        15.74, 16.0, 128.0, 56.0, 130.49)

"""The shortcuts of ship-logs' record path (#11) against the general way they stand in for: a REPORT
line's usual shape, the per-second timestamp cache, the metric request size bound."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from ship_logs.metrics import MAX_BYTES_PER_CALL, MetricSet
from ship_logs.parse import _tab_pairs, parse_batch
from ship_logs.payload import LogBatch, LogEvent

T = 1_795_850_047_123
RID = "3f5c2b1a-7e8d-4c9b-a0f1-2e3d4c5b6a79"


def _records(*messages: str, log_group: str = "/aws/lambda/orders-api") -> list[dict]:
    events = tuple(LogEvent(f"id{i}", T + i, m) for i, m in enumerate(messages))
    return parse_batch(LogBatch("DATA_MESSAGE", "1", log_group, "s", (), events)).records


@pytest.mark.parametrize("line", [
    f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\t",
    f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t",
    f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB",
    f"REPORT RequestId: {RID}\tDuration: 1.2.3 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB",
    f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tRestore Duration: 300.1 ms",
    f"REPORT RequestId: {RID}\tDuration: 1_000 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB",
    "REPORT RequestId: a:b\tDuration: 2 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB",
    "REPORT RequestId: two words\tDuration: 2 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB",
])
def test_a_report_line_reads_as_its_pairs_say(line: str) -> None:
    """The usual shape is matched in one call; its fields and usage are what reading pair by pair gives."""
    pairs = _tab_pairs(line[7:])
    [record] = _records(line)
    parsed = parse_batch(LogBatch("DATA_MESSAGE", "1", "/aws/lambda/f", "s", (), (LogEvent("a", T, line),)))

    assert record["fields"] == pairs and list(record["fields"]) == list(pairs) and record["requestId"] == pairs["RequestId"]
    try:
        duration = float(pairs["Duration"].split(" ", 1)[0])
    except ValueError:
        assert parsed.usage == []
    else:
        [usage] = parsed.usage
        assert usage.duration_ms == duration and usage.max_memory_used_mb == 56.0
        assert usage.init_duration_ms == (130.49 if "Init Duration" in pairs else None)


def test_timestamps_out_of_range_never_reach_the_per_second_cache() -> None:
    """Negative and far-future timestamps are clamped; in-range ones of the same batch keep their seconds."""
    stamps = [-1_000, -1, 0, 59_999, 60_000, T, 253_402_300_799_999, 10**16, T + 1_000]
    batch = LogBatch("DATA_MESSAGE", "1", "/aws/lambda/f", "s", (), tuple(LogEvent(str(i), t, f"line {i}") for i, t in enumerate(stamps)))

    records = parse_batch(batch).records

    expected = [datetime.fromtimestamp(min(max(t, 0), 253_402_300_799_999) // 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
                + f"{min(max(t, 0), 253_402_300_799_999) % 1000:03d}Z" for t in stamps]
    assert [r["@timestamp"] for r in records] == expected


def test_the_metric_request_size_bound_is_never_below_the_real_size() -> None:
    """Data points are counted against PutMetricData's 1 MB by a bound, not by encoding each one."""
    metric_set = MetricSet()
    names = ["x", 'quote"and\\backslash', "ünïcödé", "tab\there", "\u2028" * 40, "a" * 255]
    for i, name in enumerate(names * 400):
        metric_set.add("shop", name, (("FunctionName", name), ("Account", "123456789012")), "Count", T + i * 60_000, -1.2345678901234567e-300)

    requests = list(metric_set.requests())

    assert len(requests) > 1
    for request in requests:
        assert len(json.dumps(request, default=str)) < MAX_BYTES_PER_CALL + 10_000


@pytest.mark.parametrize(("line", "level"), [
    ("ERROR: disk full", "ERROR"), ("warning something", "WARN"), ("Critical: down", "FATAL"), ("iNFO: odd casing", "INFO"),
    ("ınfo: a dotless i upper-cases to INFO", "INFO"), ("cache warm, 65 keys", None), ("X-Ray segment", None),
    ("INFORMATION is not a level", None), ("", None), ("١٢ a digit of another script", None),
])
def test_a_plain_line_takes_its_first_words_level(line: str, level: str | None) -> None:
    """Lines are dispatched on their first character; whatever the dispatch, a first word that
    upper-cases to a level gives the record its level, as `str.upper` says."""
    records = _records("first", line)

    assert len(records) == 2 and records[-1]["level"] == level


def test_monitoring_lines_are_read_whatever_reader_sees_them_first() -> None:
    parsed = parse_batch(LogBatch("DATA_MESSAGE", "1", "/aws/lambda/f", "s", (), tuple(
        LogEvent(str(i), T + i, m) for i, m in enumerate([
            "MONITORING|3|ms|latency|shop", "[INFO]\t2026-11-28T09:14:07.123Z\tr-1\tMONITORING|4|ms|latency|shop",
            "2026-11-28T09:14:07.123Z\tr-1\tINFO\tMONITORING|5|ms|latency|shop",
            '{"level": "INFO", "message": "MONITORING|6|ms|latency|shop"}', "MONITORING|x|ms|latency|shop"]))))

    assert [m.value for m in parsed.custom] == [3.0, 4.0, 5.0, 6.0]
    assert parsed.malformed_monitoring == ["MONITORING|x|ms|latency|shop"]


class _BulkOnce:
    """An OpenSearch `_bulk` endpoint that answers the first request's last document with a 429."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        import gzip as gzip_module

        if "/_index_template/" in url:  # the sink's index template, put before its first _bulk
            return 200, b'{"acknowledged": true}'
        lines = gzip_module.decompress(body).splitlines()
        self.bodies.append(body)
        items = [{"create": {"status": 201}} for _ in lines[::2]]
        if len(self.bodies) == 1:
            items[-1] = {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception"}}}
        return 200, json.dumps({"errors": len(self.bodies) == 1, "items": items}).encode()


class _Kept:
    def __init__(self) -> None:
        self.sent: list = []

    def put_metric_data(self, request: dict) -> None:
        self.sent.append(request)

    def send(self, body: str) -> None:
        self.sent.append(body)


def test_a_retry_finds_its_records_by_parsing_again_and_publishes_each_metric_once() -> None:
    """The sink asks for the last document again: the batch is parsed again to find it (through every
    REPORT line), the metrics of that second pass are not published, and every record arrives."""
    from ship_logs.config import MetricsConfig, ShipLogsConfig, SinkKind
    from ship_logs.service import Shipper
    from ship_logs.sinks import Backoff, OpenSearchSink
    from localaws.payloads import lambda_log_events

    events = lambda_log_events(60, seed=5, runtime="python")
    transport, cloudwatch = _BulkOnce(), _Kept()
    sink = OpenSearchSink(ShipLogsConfig(sink=SinkKind.OPENSEARCH, endpoint="https://logs.example.com"), transport, lambda u, b, h: h)
    shipper = Shipper(sink, cloudwatch, _Kept(), metrics=MetricsConfig(usage=True))  # type: ignore[arg-type]
    batch = LogBatch("DATA_MESSAGE", "1", "/aws/lambda/orders-api", "s", (), tuple(LogEvent(e["id"], e["timestamp"], e["message"]) for e in events))

    outcome = shipper.ship_batch(batch, lambda: Backoff(sleep=lambda s: None))

    reports = sum(1 for e in events if e["message"].startswith("REPORT "))
    invocations = sum(d["StatisticValues"]["SampleCount"] for r in cloudwatch.sent for d in r["MetricData"] if d["MetricName"] == "Invocations")
    assert len(transport.bodies) == 2 and outcome.retries == 1 and outcome.shipped == outcome.records == len(parse_batch(batch).records)
    assert reports > 0 and invocations == reports


def test_a_one_way_iterator_of_records_is_kept_for_a_retry() -> None:
    from ship_logs.config import ShipLogsConfig, SinkKind
    from ship_logs.sinks import Backoff, OpenSearchSink

    records = _records(*(f"line {i}" for i in range(5)))
    transport = _BulkOnce()
    sink = OpenSearchSink(ShipLogsConfig(sink=SinkKind.OPENSEARCH, endpoint="https://logs.example.com"), transport, lambda u, b, h: h)

    result = sink.ship(iter(records), lambda: Backoff(sleep=lambda s: None))

    assert result.shipped == 5 and result.retries == 1
    import gzip as gzip_module
    assert json.loads(gzip_module.decompress(transport.bodies[1]).splitlines()[1])["message"] == "line 4"

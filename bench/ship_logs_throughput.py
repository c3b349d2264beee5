"""ship-logs throughput: events per second for decode only (the floor), parse + metrics, and the full
path up to the bytes ready to send, over realistic payloads (every line format, 40,000+ events); the
cold start of its handler module against boto3's alone; its peak memory for the largest batch.
Each figure is printed beside issue #11's target for it.

Each stage is timed on the same payloads, best of several rounds (the least disturbed by the machine).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable
from typing import Any

from . import common  # noqa: F401 (puts lambdas/ on the path)

from ship_logs.config import ShipLogsConfig, SinkKind  # noqa: E402
from ship_logs.metrics import MetricSet  # noqa: E402
from ship_logs.parse import parse_batch  # noqa: E402
from ship_logs.payload import LogBatch, LogEvent, decode_json  # noqa: E402
from ship_logs.sinks import GZIP_LEVEL, OpenSearchSink, ShipResult  # noqa: E402
from localaws.payloads import lambda_log_events, subscription_event  # noqa: E402

import gzip  # noqa: E402

ROUNDS = 5
#: Issue #11's targets: ratios to the decode floor, the cold start over `import boto3`, peak memory.
TARGET_DECODE_PARSE_METRICS = 0.5
TARGET_FULL_PATH = 0.3
TARGET_COLD_START_MS = 30.0
TARGET_PEAK_MEMORY = 3.0
#: Lambda's limit on an asynchronous invocation's payload: the largest batch CloudWatch Logs can send a function.
LARGEST_EVENT_BYTES = 256 * 1024
COLD_START_RUNS = 7
#: (log group, runtime, Lambda's JSON log format?) of the generated functions.
STREAMS = [
    ("/aws/lambda/orders-api", "python", False),
    ("/aws/lambda/checkout", "node", False),
    ("/aws/lambda/billing", "python", True),
    ("/aws/lambda/search", "node", True),
]
EVENTS_PER_BATCH = 2_500
BATCHES_PER_STREAM = 4


def payloads() -> list[dict[str, Any]]:
    events = []
    for s, (group, runtime, json_format) in enumerate(STREAMS):
        for b in range(BATCHES_PER_STREAM):
            batch = lambda_log_events(EVENTS_PER_BATCH, seed=100 * s + b, runtime=runtime, json_format=json_format)
            events.append(subscription_event(group, batch))
    return events


def _batch(document: dict[str, Any]) -> LogBatch:
    return LogBatch(document["messageType"], document["owner"], document["logGroup"], document["logStream"],
                    tuple(document["subscriptionFilters"]),
                    tuple(LogEvent(e["id"], e["timestamp"], e["message"]) for e in document["logEvents"]))


def _best(stage: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        stage()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> dict[str, float]:
    events = payloads()
    documents = [decode_json(e) for e in events]
    batches = [_batch(d) for d in documents]
    total = sum(len(d["logEvents"]) for d in documents)
    sink = OpenSearchSink(ShipLogsConfig(sink=SinkKind.OPENSEARCH, endpoint="https://logs.example.com"), transport=None, auth=lambda u, b, h: h)  # type: ignore[arg-type]

    def decode_only() -> None:
        for event in events:
            decode_json(event)

    def parse_and_metrics() -> None:
        for batch in batches:
            parsed = parse_batch(batch)
            metric_set = MetricSet()
            metric_set.add_usage(parsed.usage)
            metric_set.add_custom(parsed.custom)
            list(metric_set.requests())

    def full_path() -> None:
        for event in events:
            parsed = parse_batch(_batch(decode_json(event)))
            metric_set = MetricSet()
            metric_set.add_usage(parsed.usage)
            metric_set.add_custom(parsed.custom)
            list(metric_set.requests())
            for batch in sink._batches(sink.encode_all(parsed.records, ShipResult())):
                gzip.compress(b"".join(line for _, line in batch), compresslevel=GZIP_LEVEL)

    floor_s, parse_s, full_s = _best(decode_only), _best(parse_and_metrics), _best(full_path)
    figures = {"events": total, "decode": total / floor_s, "parse_metrics": total / parse_s, "full": total / full_s,
               "decode_parse_metrics": total / (floor_s + parse_s)}
    print(f"ship-logs throughput over {total:,} events in {len(events)} batches (4 functions: Python and Node.js, "
          f"text and JSON log formats), best of {ROUNDS}")
    print(f"  decode only (base64 + gunzip + JSON), the floor: {figures['decode']:>12,.0f} events/s")
    print(f"  parse + metrics:                                 {figures['parse_metrics']:>12,.0f} events/s "
          f"({figures['parse_metrics'] / figures['decode']:.2f}x the floor)")
    ratio = figures["decode_parse_metrics"] / figures["decode"]
    print(f"  decode + parse + metrics:                        {figures['decode_parse_metrics']:>12,.0f} events/s "
          f"({ratio:.2f}x the floor; target >= {TARGET_DECODE_PARSE_METRICS}x: {_verdict(ratio >= TARGET_DECODE_PARSE_METRICS)})")
    ratio = figures["full"] / figures["decode"]
    print(f"  full path, decode to gzip'd _bulk bytes:         {figures['full']:>12,.0f} events/s "
          f"({ratio:.2f}x the floor; target >= {TARGET_FULL_PATH}x: {_verdict(ratio >= TARGET_FULL_PATH)})")
    figures["cold_start_ms"] = cold_start_ms()
    print(f"  cold start: importing the handler costs {figures['cold_start_ms']:.0f} ms more than `import boto3` alone "
          f"(median of {COLD_START_RUNS} whole processes each; target <= {TARGET_COLD_START_MS:.0f} ms: "
          f"{_verdict(figures['cold_start_ms'] <= TARGET_COLD_START_MS)})")
    decoded, peak = peak_memory(sink)
    figures["peak_memory_ratio"] = peak / decoded
    print(f"  peak memory for the largest batch ({LARGEST_EVENT_BYTES // 1024} KiB event, {decoded / 1e6:.1f} MB decoded), decode to "
          f"_bulk bytes: {peak / 1e6:.1f} MB, {peak / decoded:.1f}x the decoded batch (target < {TARGET_PEAK_MEMORY:.0f}x: "
          f"{_verdict(peak / decoded < TARGET_PEAK_MEMORY)})")

    profile = cProfile.Profile()
    profile.enable()
    parse_and_metrics()
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(6)
    print("  where parse + metrics spends its time (cProfile, by own time):")
    for line in out.getvalue().splitlines():
        if line.strip() and (line.strip()[0].isdigit()) and "function calls" not in line:
            print("   ", line.strip()[:150])
    return figures


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def cold_start_ms() -> float:
    """Whole processes, alternating, so a drift of the machine's speed hits both alike."""
    import statistics
    import subprocess
    import sys
    from pathlib import Path

    lambdas = str(Path(__file__).resolve().parent.parent / "lambdas")

    def once(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=lambdas, check=True)
        return time.perf_counter() - started

    differences = []
    for _ in range(COLD_START_RUNS):
        handler, boto3_alone = once("import boto3, ship_logs.handler"), once("import boto3")
        differences.append((handler - boto3_alone) * 1000)
    return statistics.median(differences)


def peak_memory(sink: Any) -> tuple[int, int]:
    """(decoded bytes, peak bytes allocated) for the largest batch CloudWatch Logs can send a function."""
    import base64
    import tracemalloc

    count = 2_000
    while True:  # the most events whose subscription event still fits Lambda's payload limit
        event = subscription_event("/aws/lambda/orders-api", lambda_log_events(count, seed=7, runtime="python", json_format=True))
        if len(event["awslogs"]["data"]) > LARGEST_EVENT_BYTES:
            count = int(count * 0.9)
            break
        count = int(count * 1.25)
    event = subscription_event("/aws/lambda/orders-api", lambda_log_events(count, seed=7, runtime="python", json_format=True))
    decoded = len(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    tracemalloc.start()
    parsed = parse_batch(_batch(decode_json(event)))
    for batch in sink._batches(sink.encode_all(parsed.records, ShipResult())):
        gzip.compress(b"".join(line for _, line in batch), compresslevel=GZIP_LEVEL)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return decoded, peak


if __name__ == "__main__":
    main()

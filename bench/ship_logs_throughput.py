"""ship-logs throughput: events per second for decode only (the floor), parse + metrics, and the full
path up to the bytes ready to send, over realistic payloads (every line format, 40,000+ events).

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
    figures = {"events": total, "decode": total / floor_s, "parse_metrics": total / parse_s, "full": total / full_s}
    print(f"ship-logs throughput over {total:,} events in {len(events)} batches (4 functions: Python and Node.js, "
          f"text and JSON log formats), best of {ROUNDS}")
    print(f"  decode only (base64 + gunzip + JSON), the floor: {figures['decode']:>12,.0f} events/s")
    print(f"  parse + metrics:                                 {figures['parse_metrics']:>12,.0f} events/s "
          f"({figures['parse_metrics'] / figures['decode']:.2f}x the floor)")
    print(f"  full path, decode to gzip'd _bulk bytes:         {figures['full']:>12,.0f} events/s")

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


if __name__ == "__main__":
    main()

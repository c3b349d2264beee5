"""ship-logs throughput: events per second for decoding only (the floor), decode + parse + metrics,
and the full path a batch takes up to the bytes sent to the sink, over realistic payloads (every
line format, 40,000+ events); the cold start of its handler module against boto3's alone; its peak
memory for the largest batch. Each figure is printed beside issue #11's target for it.

The floor is measured twice: with the standard library (the yardstick #4 and #11 were measured
against) and with the compiled libraries the function's asset carries (msgspec, isal), the stricter
one. The paths are the production functions: ``decode_batch`` and ``Shipper.ship_batch``, with a sink that
only takes each record (decode + parse + metrics), and with an OpenSearch sink whose transport
answers 200 (the full path); run with the compiled libraries and again, in a process of its own,
with the standard library alone.

Each stage is timed on the same payloads, best of several rounds (the least disturbed by the machine).
"""

from __future__ import annotations

import base64
import cProfile
import gc
import gzip
import io
import json
import os
import platform
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import common  # noqa: F401 (puts lambdas/ on the path)
from .cost_rows import (DATADOG_FORWARDER_ARCHITECTURE, DATADOG_FORWARDER_MEMORY_MIB, DATADOG_FORWARDER_SOURCE, CostRow,
                        billed_ms, cost_row, function_memory_mib)

from ship_logs import codec  # noqa: E402
from ship_logs.config import MetricsConfig, ShipLogsConfig, SinkKind  # noqa: E402
from ship_logs.payload import decode_batch  # noqa: E402
from ship_logs.service import Shipper  # noqa: E402
from ship_logs.sinks import OpenSearchSink, ShipResult  # noqa: E402
from localaws.payloads import lambda_log_events, subscription_event  # noqa: E402

ROUNDS = 9
#: Issue #11's targets: ratios to the decode floor, the cold start over `import boto3`, peak memory.
TARGET_DECODE_PARSE_METRICS = 0.5
TARGET_FULL_PATH = 0.3
TARGET_COLD_START_MS = 30.0
TARGET_PEAK_MEMORY = 3.0
#: Lambda's limit on an asynchronous invocation's payload (1 MB in the pinned botocore's model of
#: Invoke; it was 256 KB): the largest batch CloudWatch Logs can send a function.
LARGEST_EVENT_BYTES = 1024 * 1024
COLD_START_RUNS = 11
#: (log group, runtime, Lambda's JSON log format?) of the generated functions.
STREAMS = [
    ("/aws/lambda/orders-api", "python", False),
    ("/aws/lambda/checkout", "node", False),
    ("/aws/lambda/billing", "python", True),
    ("/aws/lambda/search", "node", True),
]
EVENTS_PER_BATCH = 2_500
BATCHES_PER_STREAM = 4
_STDLIB_RUN = "--stdlib-figures"
#: "At 1,769 MB, a function has the equivalent of one vCPU" (Lambda's developer guide): CPU in proportion to memory.
VCPU_MEMORY_MIB = 1769
VCPU_SOURCE = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html"


def payloads() -> list[dict[str, Any]]:
    events = []
    for s, (group, runtime, json_format) in enumerate(STREAMS):
        for b in range(BATCHES_PER_STREAM):
            batch = lambda_log_events(EVENTS_PER_BATCH, seed=100 * s + b, runtime=runtime, json_format=json_format)
            events.append(subscription_event(group, batch))
    return events


def _best(stages: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Each stage's least time over ROUNDS rounds, the stages taking turns within a round, so that a
    drift of the machine's speed meets every stage alike (their ratios are what is judged)."""
    best = dict.fromkeys(stages, float("inf"))
    for _ in range(ROUNDS):
        for name, stage in stages.items():
            started = time.perf_counter()
            stage()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


class _Accepting:
    """An OpenSearch `_bulk` endpoint that takes everything; keeps only the bytes it was sent."""

    def __init__(self) -> None:
        self.bytes_received = 0

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.bytes_received += len(body)
        return 200, b'{"errors":false,"items":[]}'


class _Discard:
    def put_metric_data(self, request: Any) -> None:
        pass

    def send(self, body: str) -> None:
        raise AssertionError("nothing is dead-lettered in the benchmark")


#: Both metric families, as a deployment that asks for them runs (the default publishes none).
ALL_METRICS = MetricsConfig(usage=True, custom=True)


def shipper() -> Shipper:
    config = ShipLogsConfig(sink=SinkKind.OPENSEARCH, endpoint="https://logs.example.com", metrics=ALL_METRICS)
    sink = OpenSearchSink(config, transport=_Accepting(), auth=lambda url, body, headers: headers)
    return Shipper(sink, _Discard(), _Discard(), metrics=ALL_METRICS)  # type: ignore[arg-type]


def floor_stdlib(events: list[dict[str, Any]]) -> None:
    for event in events:
        for item in json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"], validate=True)))["logEvents"]:
            item["id"], item["timestamp"], item["message"]  # noqa: B018 (reading each event is the floor's iteration)


def floor_compiled(events: list[dict[str, Any]]) -> None:
    import msgspec
    from isal import isal_zlib

    decode = msgspec.json.Decoder().decode
    for event in events:
        for item in decode(isal_zlib.decompress(base64.b64decode(event["awslogs"]["data"], validate=True), 47))["logEvents"]:
            item["id"], item["timestamp"], item["message"]  # noqa: B018


class _Taking:
    """A sink that only takes each record it is given: what a batch costs up to the sink's own work."""

    def ship(self, records: Any, backoff: Any) -> ShipResult:
        result = ShipResult()
        for _ in records:
            result.records += 1
        result.shipped = result.records
        return result


def decode_parse_metrics(events: list[dict[str, Any]], ship: Shipper) -> None:
    """As ship_batch runs it: the batch's records parsed as the sink takes them (none held), its
    metrics aggregated and their PutMetricData requests made."""
    for event in events:
        ship.ship_batch(decode_batch(event))


def full_path(events: list[dict[str, Any]], ship: Shipper) -> None:
    for event in events:
        ship.ship_batch(decode_batch(event))


def path_stages(events: list[dict[str, Any]]) -> dict[str, Callable[[], Any]]:
    """Each path, with the codecs this process runs with."""
    ship, up_to_the_sink = shipper(), Shipper(_Taking(), _Discard(), _Discard(), metrics=ALL_METRICS)  # type: ignore[arg-type]
    return {"decode_parse_metrics": lambda: decode_parse_metrics(events, up_to_the_sink), "full": lambda: full_path(events, ship)}


def cost_figures(events: list[dict[str, Any]], *, rounds: int = ROUNDS) -> dict[str, Any]:
    """Lambda's cost per million events shipped (#29 item 4): the full path's CPU time per event, measured in this process
    (best of ``rounds``, with the codecs it runs with), times the events of one of the bench's batches makes one invocation's
    billed duration (no sink round trip: the bench's sink answers at once); at ship-logs' memory, and beside it the Datadog
    Forwarder's at its template's default memory, at the same duration per event (only the memory differs: both arm64).
    Each again at Lambda's CPU share (memory/1,769 MB of a vCPU), as if the path were CPU-bound there: an estimate."""
    ship = shipper()
    total = sum(len(decode_batch(e).events) for e in events)
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        full_path(events, ship)
        best = min(best, time.process_time() - started)
    per_event_s = best / total
    per_invocation = total / len(events)  # a subscription event is an invocation
    invocation_ms = billed_ms(per_event_s * per_invocation)
    functions = (("ship_logs", "ship-logs Lambda", function_memory_mib()["ship_logs"], "memory as the stack sets it"),
                 ("datadog_forwarder", "Datadog Forwarder Lambda", DATADOG_FORWARDER_MEMORY_MIB,
                  f"assumed: ship-logs' duration per event, at the Forwarder template's default MemorySize ({DATADOG_FORWARDER_ARCHITECTURE})"))
    rows: dict[str, CostRow] = {}
    for name, what, memory_mib, how in functions:
        rows[name] = cost_row(what, per=1_000_000, unit="events shipped", counted=per_invocation, invocations=1,
                              billed_ms_total=invocation_ms, memory_mib=memory_mib,
                              how=f"duration measured as CPU time on this machine; {how}")
        # Lambda gives a function memory/1,769 MB of a vCPU: a CPU-bound invocation lasts that much longer (an estimate).
        rows[f"{name}_cpu_share"] = cost_row(
            what, per=1_000_000, unit="events shipped", counted=per_invocation, invocations=1,
            billed_ms_total=billed_ms(per_event_s * per_invocation * VCPU_MEMORY_MIB / min(memory_mib, VCPU_MEMORY_MIB)),
            memory_mib=memory_mib, how=f"assumed: CPU-bound at {min(memory_mib, VCPU_MEMORY_MIB) / VCPU_MEMORY_MIB:.2f} vCPU; {how}")
    print(f"  cost per million events, from the full path's CPU time per event ({per_event_s * 1e6:.2f} us, measured on "
          f"{platform.machine()}, {codec.JSON_LIBRARY} + {codec.GZIP_LIBRARY}; no sink round trip) and the bench's "
          f"{per_invocation:,.0f} events an invocation (assumed: CloudWatch Logs sizes the batches), {invocation_ms:,} ms billed each:")
    for name, _, _, _ in functions:
        print(f"    {rows[name].line()}")
    print(f"    at Lambda's CPU share ({VCPU_MEMORY_MIB:,} MB is one vCPU: {VCPU_SOURCE}), the same CPU time lasts "
          f"{VCPU_MEMORY_MIB}/memory times as long, so the GB-seconds are alike:")
    for name, _, _, _ in functions:
        print(f"    {rows[name + '_cpu_share'].line()}")
    print(f"    (the Forwarder's defaults: {DATADOG_FORWARDER_SOURCE}; its own time per event is not measured here)")
    return {"cpu_s_per_event": per_event_s, "events_per_invocation": per_invocation, "billed_ms_per_invocation": invocation_ms,
            **{name: row.as_dict() for name, row in rows.items()}}


def stdlib_figures() -> dict[str, float]:
    """The same paths in a process that runs with the standard library alone."""
    environment = {**os.environ, codec.ENV_STDLIB_CODECS: "1"}
    answer = subprocess.run([sys.executable, "-m", "bench.ship_logs_throughput", _STDLIB_RUN], env=environment,
                            cwd=Path(__file__).resolve().parent.parent, check=True, capture_output=True, text=True)
    return json.loads(answer.stdout)


def main() -> dict[str, Any]:
    events = payloads()
    total = sum(len(decode_batch(e).events) for e in events)
    gc.freeze()  # as the function does once it is initialised (ship_logs.handler.shipper)
    compiled = codec.JSON_LIBRARY == "msgspec" and codec.GZIP_LIBRARY == "isal"
    stages = {"standard library": lambda: floor_stdlib(events), **path_stages(events)}
    if compiled:
        stages["msgspec + isal"] = lambda: floor_compiled(events)
    seconds = _best(stages)
    floors = {name: seconds[name] for name in ("standard library", "msgspec + isal") if name in seconds}
    paths = {f"{codec.JSON_LIBRARY} + {codec.GZIP_LIBRARY}": seconds}
    if compiled:
        paths["standard library"] = stdlib_figures()
    yardstick = floors["standard library"]
    figures: dict[str, Any] = {"events": total, "floor": total / yardstick}
    print(f"ship-logs throughput over {total:,} events in {len(events)} batches (4 functions: Python and Node.js, "
          f"text and JSON log formats), best of {ROUNDS}; events/s and the ratio to each floor")
    for name, seconds in floors.items():
        print(f"  decode floor (base64 + gunzip + JSON + read each event), {name + ':':<19} {total / seconds:>10,.0f}")
    for codecs, seconds in paths.items():
        for stage, label, target in (("decode_parse_metrics", "decode + parse + metrics", TARGET_DECODE_PARSE_METRICS),
                                     ("full", "full path to the gzip'd _bulk sent", TARGET_FULL_PATH)):
            ratios = "; ".join(f"{floor_s / seconds[stage]:.2f}x the {name} floor" for name, floor_s in floors.items())
            ratio = yardstick / seconds[stage]
            figures[f"{stage}[{codecs}]"] = total / seconds[stage]
            print(f"  {label + ', ' + codecs + ':':<56} {total / seconds[stage]:>10,.0f} ({ratios}; "
                  f"target >= {target}x the standard library's: {_verdict(ratio >= target)})")
    figures["cost"] = cost_figures(events)
    figures["decode_parse_metrics"] = yardstick / paths[next(iter(paths))]["decode_parse_metrics"]
    figures["full"] = yardstick / paths[next(iter(paths))]["full"]
    (figures["cold_start_ms"], boto3_ms), (figures["cold_start_sources_ms"], _) = cold_start_ms(), cold_start_ms(bytecode=False)
    print(f"  cold start: importing the handler from its asset adds {figures['cold_start_ms']:.0f} ms to `import boto3`'s "
          f"{boto3_ms:.0f} ms (medians of {COLD_START_RUNS} new processes; target <= {TARGET_COLD_START_MS:.0f} ms: "
          f"{_verdict(figures['cold_start_ms'] <= TARGET_COLD_START_MS)}); from its sources alone, without bytecode: "
          f"{figures['cold_start_sources_ms']:.0f} ms")
    decoded, peak = peak_memory()
    figures["peak_memory_ratio"] = peak / decoded
    print(f"  peak memory for the largest batch ({LARGEST_EVENT_BYTES // 1024} KiB event, {decoded / 1e6:.1f} MB decoded), decode to "
          f"_bulk bytes: {peak / 1e6:.1f} MB, {peak / decoded:.1f}x the decoded batch (target < {TARGET_PEAK_MEMORY:.0f}x: "
          f"{_verdict(peak / decoded < TARGET_PEAK_MEMORY)})")

    profile = cProfile.Profile()
    ship = shipper()
    profile.enable()
    full_path(events, ship)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(8)
    print("  where the full path spends its time (cProfile, by own time):")
    for line in out.getvalue().splitlines():
        if line.strip() and (line.strip()[0].isdigit()) and "function calls" not in line:
            print("   ", line.strip()[:150])
    return figures


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


#: What a new process runs: boto3 first, then the handler module, timed on their own.
_IMPORT_TIMES = ("import time; started = time.perf_counter(); import boto3; boto3_s = time.perf_counter() - started; "
                 "started = time.perf_counter(); import ship_logs.handler; print(boto3_s, time.perf_counter() - started)")


def cold_start_ms(*, bytecode: bool = True) -> tuple[float, float]:
    """(ms, ms): the median time ``import ship_logs.handler`` adds to a new process that has imported
    boto3, and the median time of ``import boto3`` itself, over COLD_START_RUNS processes. The handler
    is imported from ship-logs' asset as the stacks build it (for this machine's Python and
    architecture): its wheels, and its bytecode unless ``bytecode`` is false (then every import
    compiles the sources, as it did before the asset carried bytecode). boto3 comes from the
    environment's site-packages, with its bytecode, as the Lambda runtime has it."""
    import shutil
    import statistics
    import tempfile

    from stacks.ship_logs_asset import AssetBuild

    architecture = "x86_64" if platform.machine() in ("x86_64", "AMD64") else "arm64"
    asset = AssetBuild(architecture=architecture, python_version=f"{sys.version_info.major}.{sys.version_info.minor}").built()
    with tempfile.TemporaryDirectory() as scratch:
        if not bytecode:
            asset = Path(shutil.copytree(asset, Path(scratch) / "asset", ignore=shutil.ignore_patterns("__pycache__")))
        environment = {**os.environ, "PYTHONPATH": str(asset), "PYTHONDONTWRITEBYTECODE": "1"}
        runs = [subprocess.run([sys.executable, "-c", _IMPORT_TIMES], env=environment, check=True, capture_output=True, text=True)
                .stdout.split() for _ in range(COLD_START_RUNS)]
    return statistics.median(float(handler) for _, handler in runs) * 1000, statistics.median(float(boto3) for boto3, _ in runs) * 1000


def peak_memory() -> tuple[int, int]:
    """(decoded bytes, peak bytes allocated) for the largest batch CloudWatch Logs can send a function,
    shipped by the production path."""
    import tracemalloc

    count = 8_000
    while True:  # the most events whose subscription event still fits Lambda's payload limit
        event = subscription_event("/aws/lambda/orders-api", lambda_log_events(count, seed=7, runtime="python", json_format=True))
        if len(event["awslogs"]["data"]) > LARGEST_EVENT_BYTES:
            count = int(count * 0.9)
            break
        count = int(count * 1.25)
    event = subscription_event("/aws/lambda/orders-api", lambda_log_events(count, seed=7, runtime="python", json_format=True))
    decoded = len(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    ship = shipper()
    tracemalloc.start()
    ship.ship_batch(decode_batch(event))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return decoded, peak


if __name__ == "__main__":
    if sys.argv[1:] == [_STDLIB_RUN]:
        stdlib_events = payloads()
        gc.freeze()
        print(json.dumps(_best(path_stages(stdlib_events))))
    else:
        main()

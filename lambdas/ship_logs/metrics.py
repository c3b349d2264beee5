"""Metrics from a batch: usage per function from REPORT lines, custom ones from MONITORING lines.

Values are aggregated per metric, dimensions, unit and minute into statistic sets (count, sum,
min, max), so a batch of thousands of invocations becomes a handful of data points; those go to
PutMetricData in as few calls as its limits allow (one namespace, 1,000 data points and 1 MB a call).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .config import USAGE_METRICS_NAMESPACE
from .parse import CustomMetric, UsageReport

MAX_DATA_POINTS_PER_CALL = 1_000
#: PutMetricData's request limit is 1 MB; keep room for the envelope.
MAX_BYTES_PER_CALL = 1_000_000 - 10_000
MINUTE_MS = 60_000


@dataclass
class _Statistics:
    count: int = 0
    total: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)


class MetricSet:
    """Aggregated data points, by namespace."""

    def __init__(self) -> None:
        self._points: dict[tuple[str, str, tuple[tuple[str, str], ...], str, int], _Statistics] = {}

    def add(self, namespace: str, name: str, dimensions: tuple[tuple[str, str], ...], unit: str, timestamp_ms: int, value: float) -> None:
        key = (namespace, name, dimensions, unit, timestamp_ms - timestamp_ms % MINUTE_MS)
        statistics = self._points.get(key)
        if statistics is None:
            statistics = self._points[key] = _Statistics()
        statistics.add(value)

    def add_usage(self, reports: Iterable[UsageReport], *, account: str | None = None) -> None:
        """``account``: the source account, as a dimension (the central archive's metrics, from many accounts)."""
        for report in reports:
            dimensions = (("FunctionName", report.function or "unknown"), *((("Account", account),) if account else ()))
            at = report.timestamp_ms
            self.add(USAGE_METRICS_NAMESPACE, "Invocations", dimensions, "Count", at, 1)
            self.add(USAGE_METRICS_NAMESPACE, "Duration", dimensions, "Milliseconds", at, report.duration_ms)
            self.add(USAGE_METRICS_NAMESPACE, "BilledDuration", dimensions, "Milliseconds", at, report.billed_duration_ms)
            self.add(USAGE_METRICS_NAMESPACE, "MemorySize", dimensions, "Megabytes", at, report.memory_size_mb)
            self.add(USAGE_METRICS_NAMESPACE, "MaxMemoryUsed", dimensions, "Megabytes", at, report.max_memory_used_mb)
            self.add(USAGE_METRICS_NAMESPACE, "ColdStarts", dimensions, "Count", at, 1 if report.cold_start else 0)
            if report.init_duration_ms is not None:
                self.add(USAGE_METRICS_NAMESPACE, "InitDuration", dimensions, "Milliseconds", at, report.init_duration_ms)

    def add_custom(self, metrics: Iterable[CustomMetric], *, account: str | None = None) -> None:
        for metric in metrics:
            dimensions = (("FunctionName", metric.function),) if metric.function else ()
            if account:
                dimensions = (*dimensions, ("Account", account))
            self.add(metric.namespace, metric.name, dimensions, metric.unit, metric.timestamp_ms, metric.value)

    def __len__(self) -> int:
        return len(self._points)

    def requests(self) -> Iterator[dict[str, Any]]:
        """PutMetricData requests: one namespace each, within the data point and size limits."""
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for (namespace, name, dimensions, unit, minute_ms), statistics in sorted(self._points.items()):
            by_namespace.setdefault(namespace, []).append({
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions],
                "Timestamp": datetime.fromtimestamp(minute_ms / 1000, tz=timezone.utc),
                "StatisticValues": {"SampleCount": statistics.count, "Sum": statistics.total,
                                    "Minimum": statistics.minimum, "Maximum": statistics.maximum},
                "Unit": unit,
            })
        for namespace, data in by_namespace.items():
            chunk: list[dict[str, Any]] = []
            size = 0
            for datum in data:
                datum_size = len(json.dumps(datum, default=str)) + 2
                if chunk and (len(chunk) == MAX_DATA_POINTS_PER_CALL or size + datum_size > MAX_BYTES_PER_CALL):
                    yield {"Namespace": namespace, "MetricData": chunk}
                    chunk, size = [], 0
                chunk.append(datum)
                size += datum_size
            if chunk:
                yield {"Namespace": namespace, "MetricData": chunk}

"""Metrics from a batch: usage per function from REPORT lines, custom ones from MONITORING lines.

Values are aggregated per metric, dimensions, unit and minute into statistic sets (count, sum,
min, max), so a batch of thousands of invocations becomes a handful of data points; those go to
PutMetricData in as few calls as its limits allow (one namespace, 1,000 data points and 1 MB a call).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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

    def merge(self, values: Sequence[float]) -> None:
        """Adds a column of values at once: C builtins, not a Python call per value."""
        self.count += len(values)
        self.total += sum(values)
        self.minimum = min(self.minimum, min(values))
        self.maximum = max(self.maximum, max(values))


#: (name, unit, column of a UsageReport) of each usage metric.
_USAGE_COLUMNS = (
    ("Duration", "Milliseconds", 2), ("BilledDuration", "Milliseconds", 3),
    ("MemorySize", "Megabytes", 4), ("MaxMemoryUsed", "Megabytes", 5),
)


class MetricSet:
    """Aggregated data points, by namespace."""

    def __init__(self) -> None:
        self._points: dict[tuple[str, str, tuple[tuple[str, str], ...], str, int], _Statistics] = {}

    def add(self, namespace: str, name: str, dimensions: tuple[tuple[str, str], ...], unit: str, timestamp_ms: int, value: float) -> None:
        self.add_values(namespace, name, dimensions, unit, timestamp_ms, (value,))

    def add_values(self, namespace: str, name: str, dimensions: tuple[tuple[str, str], ...], unit: str, timestamp_ms: int,
                   values: Sequence[float]) -> None:
        """Values of one metric in the minute of ``timestamp_ms``."""
        if not values:
            return
        key = (namespace, name, dimensions, unit, timestamp_ms - timestamp_ms % MINUTE_MS)
        statistics = self._points.get(key)
        if statistics is None:
            statistics = self._points[key] = _Statistics()
        statistics.merge(values)

    def add_usage(self, reports: Iterable[UsageReport], *, account: str | None = None) -> None:
        """``account``: the source account, as a dimension (the central archive's metrics, from many accounts).

        Reports are grouped by function and minute first; each group's columns are then summed with builtins.
        """
        groups: dict[tuple[str | None, int], list[UsageReport]] = {}
        for report in reports:
            key = (report.function, report.timestamp_ms - report.timestamp_ms % MINUTE_MS)
            group = groups.get(key)
            if group is None:
                groups[key] = [report]
            else:
                group.append(report)
        for (function, minute_ms), group in groups.items():
            dimensions = (("FunctionName", function or "unknown"), *((("Account", account),) if account else ()))
            columns = list(zip(*group))
            self.add_values(USAGE_METRICS_NAMESPACE, "Invocations", dimensions, "Count", minute_ms, [1] * len(group))
            for name, unit, column in _USAGE_COLUMNS:
                self.add_values(USAGE_METRICS_NAMESPACE, name, dimensions, unit, minute_ms, columns[column])
            init_durations = [init for init in columns[6] if init is not None]
            self.add_values(USAGE_METRICS_NAMESPACE, "ColdStarts", dimensions, "Count", minute_ms,
                            [1] * len(init_durations) + [0] * (len(group) - len(init_durations)))
            self.add_values(USAGE_METRICS_NAMESPACE, "InitDuration", dimensions, "Milliseconds", minute_ms, init_durations)

    def add_custom(self, metrics: Iterable[CustomMetric], *, account: str | None = None) -> None:
        groups: dict[tuple[str, str, str | None, str, int], list[float]] = {}
        for metric in metrics:
            key = (metric.namespace, metric.name, metric.function, metric.unit, metric.timestamp_ms - metric.timestamp_ms % MINUTE_MS)
            values = groups.get(key)
            if values is None:
                groups[key] = [metric.value]
            else:
                values.append(metric.value)
        for (namespace, name, function, unit, minute_ms), values in groups.items():
            dimensions: tuple[tuple[str, str], ...] = (("FunctionName", function),) if function else ()
            if account:
                dimensions = (*dimensions, ("Account", account))
            self.add_values(namespace, name, dimensions, unit, minute_ms, values)

    def __len__(self) -> int:
        return len(self._points)

    def requests(self) -> Iterator[dict[str, Any]]:
        """PutMetricData requests: one namespace each, within the data point and size limits."""
        by_namespace: dict[str, list[tuple[dict[str, Any], int]]] = {}
        minutes: dict[int, datetime] = {}
        for (namespace, name, dimensions, unit, minute_ms), statistics in sorted(self._points.items()):
            timestamp = minutes.get(minute_ms)
            if timestamp is None:
                timestamp = minutes[minute_ms] = datetime.fromtimestamp(minute_ms / 1000, tz=timezone.utc)
            datum = {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions],
                "Timestamp": timestamp,
                "StatisticValues": {"SampleCount": statistics.count, "Sum": statistics.total,
                                    "Minimum": statistics.minimum, "Maximum": statistics.maximum},
                "Unit": unit,
            }
            size = _DATUM_BYTES + _text_bytes(name) + _text_bytes(unit) + sum(_DIMENSION_BYTES + _text_bytes(k) + _text_bytes(v) for k, v in dimensions)
            by_namespace.setdefault(namespace, []).append((datum, size))
        for namespace, data in by_namespace.items():
            chunk: list[dict[str, Any]] = []
            size = 0
            for datum, datum_size in data:
                if chunk and (len(chunk) == MAX_DATA_POINTS_PER_CALL or size + datum_size > MAX_BYTES_PER_CALL):
                    yield {"Namespace": namespace, "MetricData": chunk}
                    chunk, size = [], 0
                chunk.append(datum)
                size += datum_size
            if chunk:
                yield {"Namespace": namespace, "MetricData": chunk}


#: An upper bound of a datum's bytes in a request, but for its names (its keys, a timestamp, four
#: numbers of up to 24 characters), and of a dimension's: measured against json.dumps by the tests.
_DATUM_BYTES = 260
_DIMENSION_BYTES = 32


def _text_bytes(text: str) -> int:
    """A string's bytes in JSON, or more: printable ASCII but quotes and backslashes is itself;
    anything else counts six bytes a character (the longest escape)."""
    if text.isascii() and text.isprintable():
        return len(text) + text.count('"') + text.count("\\")
    return 6 * len(text)

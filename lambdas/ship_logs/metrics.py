"""Metrics from a batch: usage per function from REPORT lines, custom ones from MONITORING lines.

Values are aggregated per metric, dimensions, unit and minute into statistic sets (count, sum,
min, max), so a batch of thousands of invocations becomes a handful of data points; those go to
PutMetricData in as few calls as its limits allow (one namespace, 1,000 data points and 1 MB a call).

Each family is published only when shipLogs.metrics asks for it, and for at most as many functions
per container as its cap (:class:`DimensionCap`): CloudWatch bills each metric name and dimension set.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from .config import USAGE_METRICS_NAMESPACE
from .parse import CustomMetric, UsageReport

MAX_DATA_POINTS_PER_CALL = 1_000
#: PutMetricData's request limit is 1 MB; keep room for the envelope.
MAX_BYTES_PER_CALL = 1_000_000 - 10_000
MINUTE_MS = 60_000


class DimensionCap:
    """The dimension value sets one metric family publishes, first come first admitted, up to ``limit``, for the
    container's life (an invocation holds one log group, so a cap per invocation would never bind, while a container sees
    many): usage's a function (with its account on the central archive), whose 7 metrics come together; custom's a
    function and the namespace and name a MONITORING line gives, each one metric, so names cannot multiply the bill."""

    def __init__(self, limit: int, *, per_name: bool = False) -> None:
        self.limit, self.per_name = limit, per_name
        self.admitted: set[tuple[Any, ...]] = set()

    def key(self, line: Any, account: str | None) -> tuple[Any, ...]:
        return (line[0], account, line.namespace, line.name) if self.per_name else (line[0], account)

    def admits(self, key: tuple[Any, ...]) -> bool:
        if key in self.admitted:
            return True
        if len(self.admitted) >= self.limit:
            return False
        self.admitted.add(key)
        return True

    def split(self, lines: Sequence[Any], account: str | None) -> tuple[list[Any], set[str | None]]:
        """The lines (UsageReport, CustomMetric: their function first) the cap admits, and the functions of those refused."""
        verdicts = {key: self.admits(key) for key in dict.fromkeys(self.key(line, account) for line in lines)}
        if all(verdicts.values()):
            return list(lines), set()
        kept = [line for line in lines if verdicts[self.key(line, account)]]
        return kept, {key[0] for key, admitted in verdicts.items() if not admitted}


#: (name, unit, column of a UsageReport) of each usage metric.
_USAGE_COLUMNS = (
    ("Duration", "Milliseconds", 2), ("BilledDuration", "Milliseconds", 3),
    ("MemorySize", "Megabytes", 4), ("MaxMemoryUsed", "Megabytes", 5),
)


class MetricSet:
    """Aggregated data points, by namespace."""

    def __init__(self) -> None:
        #: Each data point's statistic set: [SampleCount, Sum, Minimum, Maximum].
        self._points: dict[tuple[str, str, tuple[tuple[str, str], ...], str, int], list[float]] = {}

    def add(self, namespace: str, name: str, dimensions: tuple[tuple[str, str], ...], unit: str, timestamp_ms: int, value: float) -> None:
        self.add_values(namespace, name, dimensions, unit, timestamp_ms, (value,))

    def add_values(self, namespace: str, name: str, dimensions: tuple[tuple[str, str], ...], unit: str, timestamp_ms: int,
                   values: Sequence[float]) -> None:
        """Values of one metric in the minute of ``timestamp_ms``."""
        if not values:
            return
        key = (namespace, name, dimensions, unit, timestamp_ms - timestamp_ms % MINUTE_MS)
        statistics = self._points.get(key)
        # A column of values at once: C builtins, not a Python call per value.
        if statistics is None:
            self._points[key] = [len(values), sum(values), min(values), max(values)]
        else:
            statistics[0] += len(values)
            statistics[1] += sum(values)
            statistics[2] = min(statistics[2], min(values))
            statistics[3] = max(statistics[3], max(values))

    def add_usage(self, reports: Iterable[UsageReport], *, account: str | None = None) -> None:
        """``account``: the source account, as a dimension (the central archive's metrics, from many accounts).

        Reports are grouped by function and minute first; each group's columns are then summed with builtins.
        """
        groups: dict[tuple[str | None, int], list[UsageReport]] = {}
        for report in reports:
            key = (report[0], report[1] - report[1] % MINUTE_MS)  # (function, minute): by index, not by name
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
                values = columns[column]
                if None in values:  # a report that does not say (durationMs only): counted where it says
                    values = [v for v in values if v is not None]
                self.add_values(USAGE_METRICS_NAMESPACE, name, dimensions, unit, minute_ms, values)
            init_durations = [init for init in columns[6] if init is not None]
            self.add_values(USAGE_METRICS_NAMESPACE, "ColdStarts", dimensions, "Count", minute_ms,
                            [1] * len(init_durations) + [0] * (len(group) - len(init_durations)))
            self.add_values(USAGE_METRICS_NAMESPACE, "InitDuration", dimensions, "Milliseconds", minute_ms, init_durations)

    def add_custom(self, metrics: Iterable[CustomMetric], *, account: str | None = None) -> None:
        groups: dict[tuple[str, str, str | None, str, int], list[float]] = {}
        for function, timestamp_ms, namespace, name, unit, value in metrics:
            key = (namespace, name, function, unit, timestamp_ms - timestamp_ms % MINUTE_MS)
            values = groups.get(key)
            if values is None:
                groups[key] = [value]
            else:
                values.append(value)
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
        # What many data points share, made once: their minute, dimensions, names' sizes.
        shared: dict[Any, Any] = {}
        for (namespace, name, dimensions, unit, minute_ms), (count, total, minimum, maximum) in sorted(self._points.items()):
            timestamp = minutes.get(minute_ms)
            if timestamp is None:
                timestamp = minutes[minute_ms] = datetime.fromtimestamp(minute_ms / 1000, tz=timezone.utc)
            rendered = shared.get((name, unit, dimensions))
            if rendered is None:
                rendered = shared[(name, unit, dimensions)] = (
                    _DATUM_BYTES + _text_bytes(name) + _text_bytes(unit) + sum(_DIMENSION_BYTES + _text_bytes(k) + _text_bytes(v) for k, v in dimensions),
                    [{"Name": k, "Value": v} for k, v in dimensions])
            size, rendered_dimensions = rendered
            datum = {
                "MetricName": name,
                "Dimensions": rendered_dimensions,
                "Timestamp": timestamp,
                "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": minimum, "Maximum": maximum},
                "Unit": unit,
            }
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

"""Ship one batch: parse it, forward its records, dead-letter what the sink refused, publish its metrics.

Records go first and metrics after them: when the sink fails, the invocation fails before any
metric is published, so Lambda's retry of the batch publishes them once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .aws import CloudWatchGateway, QueueGateway
from .config import MetricsConfig
from .metrics import DimensionCap, MetricSet
from .parse import Parsed, iter_records
from .payload import LogBatch
from .sinks import Backoff, ShipResult, Sink

#: SQS takes messages up to 256 KiB of UTF-8; keep room for the envelope. Sizes below are of the
#: encoded message (json.dumps escapes non-ASCII: one character can take up to 12 bytes).
MAX_DEAD_LETTER_BYTES = 200_000
REJECTED_KEY = "shipLogsRejected"
CORRUPT_KEY = "shipLogsCorrupt"


class ShipOutcome:
    """What became of a batch (a plain class: see parse.Parsed)."""

    def __init__(self, *, records: int = 0, shipped: int = 0, rejected: int = 0, degraded: int = 0, retries: int = 0,
                 requests: int = 0) -> None:
        self.records, self.shipped, self.rejected, self.degraded = records, shipped, rejected, degraded
        self.retries, self.requests = retries, requests
        self.usage_reports = self.custom_metrics = self.metric_data_points = self.metric_requests = 0
        self.malformed_monitoring: list[str] = []
        self.dead_letter_messages = 0
        #: MONITORING lines for a namespace outside the allow-list.
        self.refused_custom_metrics = 0
        #: REPORT and MONITORING lines of functions beyond metrics.maxDimensionValues: not published.
        self.capped_metric_lines = 0
        #: Those functions, by family (for the warning; not in as_dict).
        self.capped_functions: dict[str, list[str]] = {}

    def as_dict(self) -> dict[str, Any]:
        """camelCase, like every other handler result."""
        fields = {k: v for k, v in self.__dict__.items() if k not in ("malformed_monitoring", "capped_functions")}
        return {_camel(k): v for k, v in fields.items()} | {"malformedMonitoring": len(self.malformed_monitoring)}


class BatchRecords:
    """A batch's records, parsed again each time they are iterated, so that none are held while the
    sink works (a batch's records take several times its decoded size): the first pass collects the
    batch's metrics into ``parsed``; a later one (a sink finding the few it asks for again) does not."""

    def __init__(self, batch: LogBatch, parsed: Parsed) -> None:
        self.batch, self.parsed, self._passes = batch, parsed, 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._passes += 1
        return iter_records(self.batch, self.parsed if self._passes == 1 else Parsed())


class Shipper:
    def __init__(self, sink: Sink, cloudwatch: CloudWatchGateway, dead_letters: QueueGateway, *,
                 custom_namespaces: Sequence[str] = (), metrics: MetricsConfig = MetricsConfig()) -> None:
        """``custom_namespaces``: the only namespaces MONITORING lines may publish to (empty: any).
        ``metrics``: the families published (none by default); their caps last as long as the Shipper (the container)."""
        self.sink = sink
        self.custom_namespaces = frozenset(custom_namespaces)
        self.usage_cap = DimensionCap(metrics.max_dimension_values) if metrics.usage else None
        self.custom_cap = DimensionCap(metrics.max_dimension_values, per_name=True) if metrics.custom else None
        self.cloudwatch = cloudwatch
        self.dead_letters = dead_letters

    def ship_batch(self, batch: LogBatch, backoff: Callable[[], Backoff] = Backoff, *, account_dimension: bool = False) -> ShipOutcome:
        """``account_dimension``: metrics also carry the source account (batches from many accounts)."""
        parsed = Parsed()
        outcome = self._forward(BatchRecords(batch, parsed), backoff)
        self._publish_metrics(parsed, outcome, batch.owner if account_dimension else None)
        outcome.malformed_monitoring = parsed.malformed_monitoring
        return outcome

    def reship(self, records: Sequence[dict[str, Any]], backoff: Callable[[], Backoff] = Backoff) -> ShipOutcome:
        """Records a sink refused before (the redrive of a dead-lettered message)."""
        return self._forward(list(records), backoff)

    def dead_letter_corrupt(self, event: Any, reason: str, digest: str) -> None:
        """Keep a payload that cannot be decoded, so nothing is lost silently (the dead-letter queue is
        encrypted; the function's log gets only its size and digest, since it may hold secrets)."""
        body = json.dumps({CORRUPT_KEY: {"reason": reason, "sha256": digest, "event": event}}, default=str)
        if len(body) > MAX_DEAD_LETTER_BYTES:
            body = json.dumps({CORRUPT_KEY: {"reason": reason, "sha256": digest, "event": None,
                                             "note": f"too large for SQS ({len(body)} bytes); only its digest is kept"}})
        self.dead_letters.send(body)

    def _forward(self, records: Iterable[dict[str, Any]], backoff: Callable[[], Backoff]) -> ShipOutcome:
        result: ShipResult = self.sink.ship(records, backoff)
        outcome = ShipOutcome(records=result.records, shipped=result.shipped, rejected=len(result.rejected),
                              degraded=result.degraded, retries=result.retries, requests=result.requests)
        if result.rejected:
            outcome.dead_letter_messages = self._dead_letter(result.rejected)
        return outcome

    def _dead_letter(self, rejected: list[tuple[dict[str, Any], str]]) -> int:
        messages = 0
        chunk: list[tuple[dict[str, Any], str]] = []
        size = 0
        for record, reason in rejected:
            record = _fit(record, reason)
            entry_size = _encoded_size(record) + _encoded_size(reason) + 16
            if chunk and size + entry_size > MAX_DEAD_LETTER_BYTES:
                messages += self._send_rejected(chunk)
                chunk, size = [], 0
            chunk.append((record, reason))
            size += entry_size
        if chunk:
            messages += self._send_rejected(chunk)
        return messages

    def _send_rejected(self, chunk: list[tuple[dict[str, Any], str]]) -> int:
        body = {REJECTED_KEY: {"records": [r for r, _ in chunk], "reasons": [why for _, why in chunk]}}
        self.dead_letters.send(json.dumps(body, default=str))
        return 1

    def _publish_metrics(self, parsed: Parsed, outcome: ShipOutcome, account: str | None = None) -> None:
        """Only the families asked for, and within each only the functions its cap admits."""
        metric_set = MetricSet()
        usage: list[Any] = []
        if self.usage_cap is not None:
            usage = self._capped("usage", self.usage_cap, parsed.usage, account, outcome)
            metric_set.add_usage(usage, account=account)
        custom: list[Any] = []
        if self.custom_cap is not None:
            custom = parsed.custom
            if self.custom_namespaces:
                custom = [m for m in custom if m.namespace in self.custom_namespaces]
                outcome.refused_custom_metrics = len(parsed.custom) - len(custom)
            custom = self._capped("custom", self.custom_cap, custom, account, outcome)
            metric_set.add_custom(custom, account=account)
        outcome.usage_reports, outcome.custom_metrics, outcome.metric_data_points = len(usage), len(custom), len(metric_set)
        for request in metric_set.requests():
            self.cloudwatch.put_metric_data(request)
            outcome.metric_requests += 1


    @staticmethod
    def _capped(family: str, cap: DimensionCap, lines: Sequence[Any], account: str | None, outcome: ShipOutcome) -> list[Any]:
        if not lines:
            return []
        kept, refused = cap.split(lines, account)
        if refused:
            outcome.capped_metric_lines += len(lines) - len(kept)
            outcome.capped_functions[family] = sorted(str(f) for f in refused)
        return kept


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _encoded_size(value: Any) -> int:
    """Bytes ``value`` takes in a dead-letter message (json.dumps' ASCII output: bytes = characters)."""
    return len(json.dumps(value, default=str))


def _fit(record: dict[str, Any], reason: str) -> dict[str, Any]:
    """A record too large for one dead-letter message loses its fields and is cut to the start of its
    message, measured in encoded bytes, not characters."""
    if _encoded_size(record) + _encoded_size(reason) + 16 <= MAX_DEAD_LETTER_BYTES:
        return record
    fitted = {**record, "fields": None, "message": "", "truncated": True}
    budget = MAX_DEAD_LETTER_BYTES - _encoded_size(fitted) - _encoded_size(reason) - 16
    message = str(record.get("message", ""))
    cut = min(len(message), budget)  # at least one byte a character
    while cut > 0 and _encoded_size(message[:cut]) - 2 > budget:
        cut = cut * budget // (_encoded_size(message[:cut]) - 2)  # shrink in proportion; converges fast
    fitted["message"] = message[:max(0, cut)]
    return fitted

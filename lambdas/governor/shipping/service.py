"""Ship one batch: parse it, forward its records, dead-letter what the sink refused, publish its metrics.

Records go first and metrics after them: when the sink fails, the invocation fails before any
metric is published, so Lambda's retry of the batch publishes them once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..aws import CloudWatchGateway, QueueGateway
from .metrics import MetricSet
from .parse import Parsed, parse_batch
from .payload import LogBatch
from .sinks import Backoff, ShipResult, Sink

#: SQS takes messages up to 256 KiB; keep room for the envelope.
MAX_DEAD_LETTER_BYTES = 200_000
REJECTED_KEY = "shipLogsRejected"
CORRUPT_KEY = "shipLogsCorrupt"


@dataclass
class ShipOutcome:
    records: int = 0
    shipped: int = 0
    rejected: int = 0
    retries: int = 0
    requests: int = 0
    usage_reports: int = 0
    custom_metrics: int = 0
    metric_data_points: int = 0
    metric_requests: int = 0
    malformed_monitoring: list[str] = field(default_factory=list)
    dead_letter_messages: int = 0

    def as_dict(self) -> dict[str, Any]:
        """camelCase, like every other handler result."""
        fields = {k: v for k, v in self.__dict__.items() if k != "malformed_monitoring"}
        return {_camel(k): v for k, v in fields.items()} | {"malformedMonitoring": len(self.malformed_monitoring)}


class Shipper:
    def __init__(self, sink: Sink, cloudwatch: CloudWatchGateway, dead_letters: QueueGateway) -> None:
        self.sink = sink
        self.cloudwatch = cloudwatch
        self.dead_letters = dead_letters

    def ship_batch(self, batch: LogBatch, backoff: Callable[[], Backoff] = Backoff) -> ShipOutcome:
        parsed = parse_batch(batch)
        outcome = self._forward(parsed.records, backoff)
        self._publish_metrics(parsed, outcome)
        outcome.malformed_monitoring = parsed.malformed_monitoring
        return outcome

    def reship(self, records: Sequence[dict[str, Any]], backoff: Callable[[], Backoff] = Backoff) -> ShipOutcome:
        """Records a sink refused before (the redrive of a dead-lettered message)."""
        return self._forward(list(records), backoff)

    def dead_letter_corrupt(self, event: Any, reason: str) -> None:
        """Keep a payload that cannot be decoded, so nothing is lost silently."""
        body = json.dumps({CORRUPT_KEY: {"reason": reason, "event": event}}, default=str)
        if len(body) > MAX_DEAD_LETTER_BYTES:  # the handler logs the whole event; the message points there
            body = json.dumps({CORRUPT_KEY: {"reason": reason, "event": None, "note": "too large for SQS: the whole event is in the function's log"}})
        self.dead_letters.send(body)

    def _forward(self, records: list[dict[str, Any]], backoff: Callable[[], Backoff]) -> ShipOutcome:
        result: ShipResult = self.sink.ship(records, backoff)
        outcome = ShipOutcome(records=len(records), shipped=result.shipped, rejected=len(result.rejected),
                              retries=result.retries, requests=result.requests)
        if result.rejected:
            outcome.dead_letter_messages = self._dead_letter(result.rejected)
        return outcome

    def _dead_letter(self, rejected: list[tuple[dict[str, Any], str]]) -> int:
        messages = 0
        chunk: list[tuple[dict[str, Any], str]] = []
        size = 0
        for record, reason in rejected:
            entry_size = len(json.dumps(record, default=str)) + len(reason) + 16
            if chunk and size + entry_size > MAX_DEAD_LETTER_BYTES:
                messages += self._send_rejected(chunk)
                chunk, size = [], 0
            chunk.append((_fit(record, reason), reason))
            size += min(entry_size, MAX_DEAD_LETTER_BYTES)
        if chunk:
            messages += self._send_rejected(chunk)
        return messages

    def _send_rejected(self, chunk: list[tuple[dict[str, Any], str]]) -> int:
        body = {REJECTED_KEY: {"records": [r for r, _ in chunk], "reasons": [why for _, why in chunk]}}
        self.dead_letters.send(json.dumps(body, default=str))
        return 1

    def _publish_metrics(self, parsed: Parsed, outcome: ShipOutcome) -> None:
        metric_set = MetricSet()
        metric_set.add_usage(parsed.usage)
        metric_set.add_custom(parsed.custom)
        outcome.usage_reports, outcome.custom_metrics, outcome.metric_data_points = len(parsed.usage), len(parsed.custom), len(metric_set)
        for request in metric_set.requests():
            self.cloudwatch.put_metric_data(request)
            outcome.metric_requests += 1


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _fit(record: dict[str, Any], reason: str) -> dict[str, Any]:
    """A record too large for one dead-letter message keeps its fields and the start of its message."""
    if len(json.dumps(record, default=str)) + len(reason) + 16 <= MAX_DEAD_LETTER_BYTES:
        return record
    message = str(record.get("message", ""))
    return {**record, "fields": None, "message": message[: MAX_DEAD_LETTER_BYTES // 2], "truncated": True}

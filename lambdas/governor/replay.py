"""Replay on subscribe (#20): what a new group held before the governor's filter existed, delivered to the
destination as CloudWatch Logs would have, each event once.

A subscription delivers only what is ingested after its filter exists. Between CreateLogGroup and the
governor's PutSubscriptionFilter lie CloudTrail, EventBridge, a queue and the handler: the lines of those
seconds or minutes are a new function's first invocations. After subscribing, the governor reads the events
whose ``ingestionTime`` is earlier than the filter's ``creationTime`` (FilterLogEvents, with the filter's
pattern) and sends them in the subscription's own shape: the DATA_MESSAGE document, per log stream in
order, gzip'd (and, for a Lambda, base64'd under ``awslogs.data`` and invoked asynchronously). Events
ingested after the filter are the subscription's: selecting by ingestion time, not by event ids, is what
keeps every event once (no AWS page says a payload's ``id`` is FilterLogEvents' ``eventId``).

Logic only: the gateways (CloudWatch Logs, the destination, the state table) are passed in. The state
table records, per group and filter, how many of the (closed, ordered) events before the filter were
delivered: a retried batch or a redelivered event goes on from there and never sends one twice.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .aws import IngestedEvent, ReplayProgress
from .config import Destination, DestinationKind
from .policy import Policy

#: Uncompressed document sizes per delivery, so the encoded payload fits the destination's limit whatever the
#: data: Lambda's asynchronous Invoke takes up to 1 MB (AWS-FACTS) and base64 adds a third to the gzip'd bytes;
#: a Kinesis record's data is at most 1 MiB and a Firehose record's 1,000 KiB (the pinned models).
MAX_DOCUMENT_BYTES = {DestinationKind.LAMBDA: 700_000, DestinationKind.KINESIS: 1_000_000, DestinationKind.FIREHOSE: 1_000_000}
#: An unfinished replay is resumed by a retried event up to this long after the window (SQS retries for hours).
RESUME_HORIZON_S = 24 * 3600
#: A replay record's fixed part beside its events (names, owner, filter), counted against the size.
_DOCUMENT_OVERHEAD_BYTES = 1_024
_EVENT_OVERHEAD_BYTES = 64


@dataclass(frozen=True)
class ReplayResult:
    #: Why nothing was replayed (None when the replay ran).
    skipped: str | None = None
    replayed: int = 0
    #: Events before the filter past replayMaxEvents / replayMaxBytes: counted, reported, not sent.
    truncated: int = 0
    deliveries: int = 0
    #: Events an earlier attempt had delivered already (a retried batch, a redelivered event).
    already_delivered: int = 0

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"replayed": self.replayed, "truncated": self.truncated, "deliveries": self.deliveries}
        if self.skipped:
            found["skipped"] = self.skipped
        if self.already_delivered:
            found["alreadyDelivered"] = self.already_delivered
        return found


class EventSource(Protocol):
    def filter_created_ms(self, log_group: str, filter_name: str) -> int | None: ...
    def events(self, log_group: str, filter_pattern: str) -> Iterable[IngestedEvent]:
        """Every event of the group that matches the pattern, in FilterLogEvents' order (paged, paced)."""


class DestinationWriter(Protocol):
    def deliver(self, destination: Destination, payload: bytes, *, partition_key: str) -> None: ...


class ReplayLedger(Protocol):
    def replay_progress(self, log_group: str) -> ReplayProgress | None:
        """What earlier attempts did for this group; None when no replay started."""
    def claim_replay(self, log_group: str, progress: ReplayProgress, *, holder: str, lease_until_s: float) -> bool: ...
    def record_replay(self, log_group: str, progress: ReplayProgress, *, holder: str, lease_until_s: float) -> None: ...


def documents(events: Iterable[IngestedEvent], *, owner: str, log_group: str, filter_name: str,
              max_document_bytes: int) -> Iterator[tuple[dict[str, Any], int]]:
    """The subscription's documents for ``events`` (one stream per document, events in order), each at most
    ``max_document_bytes`` uncompressed; with the count of events it carries."""
    stream, batch, size = None, [], _DOCUMENT_OVERHEAD_BYTES
    for event in events:
        cost = len(event.message.encode()) + len(event.event_id) + _EVENT_OVERHEAD_BYTES
        if batch and (event.stream != stream or size + cost > max_document_bytes):
            yield _document(owner, log_group, stream, filter_name, batch), len(batch)
            batch, size = [], _DOCUMENT_OVERHEAD_BYTES
        stream = event.stream
        batch.append(event)
        size += cost
    if batch:
        yield _document(owner, log_group, stream, filter_name, batch), len(batch)


def _document(owner: str, log_group: str, stream: str | None, filter_name: str, events: list[IngestedEvent]) -> dict[str, Any]:
    return {"messageType": "DATA_MESSAGE", "owner": owner, "logGroup": log_group, "logStream": stream,
            "subscriptionFilters": [filter_name],
            "logEvents": [{"id": e.event_id, "timestamp": e.timestamp_ms, "message": e.message} for e in events]}


def encode(document: dict[str, Any], kind: DestinationKind) -> bytes:
    """The bytes the destination receives: a Kinesis or Firehose record's data is the gzip'd document; a Lambda is
    invoked with ``{"awslogs": {"data": base64(gzip(document))}}``."""
    data = gzip.compress(json.dumps(document, separators=(",", ":")).encode())
    if kind is DestinationKind.LAMBDA:
        return json.dumps({"awslogs": {"data": base64.b64encode(data).decode()}}).encode()
    return data


class Replayer:
    """After the governor subscribes a group: replay what came before its filter, bounded, once."""

    def __init__(self, policy: Callable[[], Policy], source: EventSource, writer: DestinationWriter, ledger: ReplayLedger) -> None:
        self._policy, self.source, self.writer, self.ledger = policy, source, writer, ledger

    def after_subscribe(self, log_group: str, group_created_ms: int | None, *, owner: str, holder: str, now_s: float,
                        lease_until_s: float) -> ReplayResult:
        """After the governor's filter is on ``log_group`` (put now, or found in place: a retried event resumes an
        unfinished replay). ``owner``: the account, as the subscription documents name it. ``holder``: this invocation
        (its request id), which holds the group's replay until ``lease_until_s``, the invocation's deadline: no other
        invocation replays the group meanwhile."""
        policy = self._policy()
        config = policy.config
        destination = config.destination
        assert destination is not None  # a Policy always has one
        window = config.replay_window_minutes
        if window is None:
            return ReplayResult(skipped="replayWindowMinutes is null")
        if group_created_ms is None or now_s * 1000 - group_created_ms > (window * 60 + RESUME_HORIZON_S) * 1000:
            return ReplayResult(skipped="the group is older than replayWindowMinutes: history, not a gap")  # no call made
        if destination.kind not in MAX_DOCUMENT_BYTES:
            # A member cannot write into another account's stream: its archive gets what comes after the filter only.
            return ReplayResult(skipped="cross-account destination: what came before the filter is not replayed")
        earlier = self.ledger.replay_progress(log_group)
        if earlier is not None and earlier.done:
            return ReplayResult(skipped="replayed already", already_delivered=earlier.delivered)
        if earlier is None:
            created_ms = self.source.filter_created_ms(log_group, config.filter_name)
            if created_ms is None:
                return ReplayResult(skipped="the governor's filter is gone")
            if not policy.replays(group_created_ms, created_ms):
                return ReplayResult(skipped="the group is older than replayWindowMinutes: history, not a gap")
            earlier = ReplayProgress(created_ms, 0, done=False)
        if not self.ledger.claim_replay(log_group, earlier, holder=holder, lease_until_s=lease_until_s):
            return ReplayResult(skipped="another invocation is replaying it")
        created_ms, done_before = earlier.filter_created_ms, earlier.delivered
        # The events before the first filter are a closed set in a fixed order: the first replayMaxEvents of them, up to
        # replayMaxBytes, are the replay's (the same ones on every attempt); an attempt sends those past done_before.
        chosen, truncated, size, index = [], 0, 0, 0
        for event in self.source.events(log_group, config.filter_pattern):
            if event.ingestion_ms >= created_ms:
                continue  # the subscription's
            size += len(event.message.encode())
            if truncated or index >= config.replay_max_events or size > config.replay_max_bytes:
                truncated += 1
                continue
            if index >= done_before:
                chosen.append(event)
            index += 1
        delivered, deliveries = done_before, 0
        try:
            for document, count in documents(chosen, owner=owner, log_group=log_group, filter_name=config.filter_name,
                                             max_document_bytes=MAX_DOCUMENT_BYTES[destination.kind]):
                self.writer.deliver(destination, encode(document, destination.kind), partition_key=document["logStream"])
                delivered, deliveries = delivered + count, deliveries + 1
                # A crash after this resumes past what was sent.
                self.ledger.record_replay(log_group, ReplayProgress(created_ms, delivered, done=False), holder=holder,
                                          lease_until_s=lease_until_s)
        except Exception:
            # The event fails and comes back: give the lease up, so its retry (or another invocation) goes on at once.
            self.ledger.record_replay(log_group, ReplayProgress(created_ms, delivered, done=False), holder=holder, lease_until_s=0)
            raise
        self.ledger.record_replay(log_group, ReplayProgress(created_ms, delivered, done=True), holder=holder, lease_until_s=lease_until_s)
        return ReplayResult(replayed=delivered - done_before, truncated=truncated, deliveries=deliveries, already_delivered=done_before)

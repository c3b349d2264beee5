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
delivered, and the page reading goes on from: a retried batch, a redelivered event or a continuation goes on
from there and never sends one twice. A replay takes at most ``REPLAY_SLICE_S`` of an invocation: one that
needs longer (FilterLogEvents' pages can be empty with more to come) stops between pages and says so, and its
caller queues a continuation, so a large group never holds the subscriptions behind it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .aws import ExpiredPageToken, FilterInPlace, IngestedEvent, ReplayProgress, client_config, retry_budget_s
from .config import Destination, DestinationKind
from .policy import Action, Policy, Reason

#: Uncompressed document sizes per delivery, so the encoded payload fits the destination's limit whatever the
#: data: Lambda's asynchronous Invoke takes up to 1 MB (AWS-FACTS) and base64 adds a third to the gzip'd bytes;
#: a Kinesis record's data is at most 1 MiB and a Firehose record's 1,000 KiB (the pinned models).
MAX_DOCUMENT_BYTES = {DestinationKind.LAMBDA: 700_000, DestinationKind.KINESIS: 1_000_000, DestinationKind.FIREHOSE: 1_000_000}
#: An unfinished replay is resumed by a retried event up to this long after the window (SQS retries for hours).
RESUME_HORIZON_S = 24 * 3600
_CROSS_ACCOUNT = "cross-account destination: what came before the filter is not replayed"
#: The skip that hands the replay to the organization's archive, which pulls it (#31).
CROSS_ACCOUNT = _CROSS_ACCOUNT
#: The longest one invocation spends on one group's replay before it stops between pages and a continuation takes
#: over: the subscriptions behind it in the batch wait no longer than this.
REPLAY_SLICE_S = 20.0
#: PutLogEvents rejects events more than 2 hours in the future and older than 14 days (the model): an event ingested
#: before the filter has a timestamp in [group created - 14 days, filter created + 2 hours]. Read only that range
#: (FilterLogEvents' startTime, endTime: "Set startTime explicitly to reduce the chances of empty pages").
_PAST_MS, _FUTURE_MS = 14 * 86_400_000, 2 * 3_600_000
#: A delivery gap's events are read by timestamp from this long before the gap to this long after it: a line is stamped
#: when written, near its ingestion; one stamped an hour before it was ingested, or a quarter hour after, is not found
#: (*assumed* bounds: docs/design.md, "Delivery gaps"). Reading the 14 days a timestamp may span would read a busy group's
#: fortnight for a 10-minute gap.
GAP_PAST_MS, GAP_FUTURE_MS = 3_600_000, 900_000
#: A Kinesis record's partition key is 1-256 characters (the Kinesis model's PutRecord); a log stream name may have 512.
MAX_PARTITION_KEY_CHARS = 256
#: Attempts of a replay's delivery and of the record of its progress (each call's client): fewer than the other calls',
#: so that both fit in the time the event handlers keep at the end of an invocation (RECORD_MARGIN_MS). A delivery
#: that fails for good fails the event, which comes back and goes on past what was recorded.
REPLAY_CALL_ATTEMPTS = 2
#: The longest one delivery and the record of its progress can take together (each a call within its retry budget: 23 s
#: with two attempts): a delivery starts only with this much of the invocation left, so none is cut off after it reached
#: the destination and before it was recorded (which its redelivery would send again).
DELIVERY_BUDGET_S = 2 * retry_budget_s(client_config(REPLAY_CALL_ATTEMPTS))
#: A replay record's fixed part beside its events (names, owner, filter), counted against the size.
_DOCUMENT_OVERHEAD_BYTES = 1_024
_EVENT_OVERHEAD_BYTES = 64


#: A subscription outcome that leaves the governor's filter on the group: a replay follows (or resumes).
_FILTER_IN_PLACE = (Action.SUBSCRIBE, Action.UPDATE_FILTER, Action.LEAVE)


def replay_is_due(window_minutes: int | None, group_created_ms: int | None, now_s: float) -> bool:
    """Whether a group created at ``group_created_ms`` may still have a new group's replay to send (or resume) now: the
    replay is on, and the group is younger than the window plus the time a retried event may take (RESUME_HORIZON_S)."""
    return (window_minutes is not None and group_created_ms is not None
            and now_s * 1000 - group_created_ms <= (window_minutes * 60 + RESUME_HORIZON_S) * 1000)


def replay_bounds(config: Any) -> dict[str, int]:
    """The replay keys a member hands the organization's archive with a request (its own bounds on its own data)."""
    return {"replayWindowMinutes": config.replay_window_minutes, "replayMaxEvents": config.replay_max_events,
            "replayMaxBytes": config.replay_max_bytes}


def replayable_here(destinations: Iterable[Destination]) -> bool:
    """Whether any of ``destinations`` is one this account writes a replay to (a Lambda, Kinesis or Firehose; a CloudWatch
    Logs destination in another account is not: the organization's archive pulls what its filters would have sent)."""
    return any(d.kind in MAX_DOCUMENT_BYTES for d in destinations)


def follows(action: Action, reason: str) -> bool:
    """Whether a subscription decision leaves the governor's own filter on the group, so a replay can follow it (an
    account-level policy ships the group with no filter of the governor's to measure ingestion against)."""
    return action in _FILTER_IN_PLACE and reason != Reason.SHIPPED_BY_ACCOUNT_POLICY.value


@dataclass(frozen=True)
class ReplayResult:
    #: Why nothing was replayed (None when the replay ran).
    skipped: str | None = None
    replayed: int = 0
    #: Events before the filter past replayMaxEvents / replayMaxBytes, on the pages read: counted, reported, not sent.
    truncated: int = 0
    deliveries: int = 0
    #: Events an earlier attempt had delivered already (a retried batch, a redelivered event).
    already_delivered: int = 0
    #: The replay stopped at the end of its slice of the invocation: a continuation must go on with it.
    unfinished: bool = False
    #: Past the bounds there were pages left unread: ``truncated`` is a lower bound.
    truncated_more: bool = False

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"replayed": self.replayed, "truncated": self.truncated, "deliveries": self.deliveries}
        if self.skipped:
            found["skipped"] = self.skipped
        if self.already_delivered:
            found["alreadyDelivered"] = self.already_delivered
        if self.unfinished:
            found["unfinished"] = True
        if self.truncated_more:
            found["truncatedAtLeast"] = True
        return found


class EventSource(Protocol):
    def own_filter(self, log_group: str, filter_name: str) -> FilterInPlace | None: ...
    def event_pages(self, log_group: str, filter_pattern: str, *, token: str | None = None, start_ms: int | None = None,
                    end_ms: int | None = None) -> Iterable[tuple[list[IngestedEvent], str | None]]:
        """The group's events matching the pattern, a FilterLogEvents page at a time from ``token``, each with the next
        page's token (None after the last); raises ExpiredPageToken for a token no longer taken."""


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


def partition_key(stream: str | None) -> str:
    """The Kinesis partition key of a stream's records: its name, which keeps a stream's records in one shard and in
    order; a name Kinesis would refuse (empty, or past 256 characters) becomes its SHA-256, as stable and as ordered."""
    if not stream:
        return "replay"
    if len(stream) <= MAX_PARTITION_KEY_CHARS:
        return stream
    return hashlib.sha256(stream.encode()).hexdigest()


def encode(document: dict[str, Any], kind: DestinationKind) -> bytes:
    """The bytes the destination receives: a Kinesis or Firehose record's data is the gzip'd document; a Lambda is
    invoked with ``{"awslogs": {"data": base64(gzip(document))}}``."""
    data = gzip.compress(json.dumps(document, separators=(",", ":")).encode())
    if kind is DestinationKind.LAMBDA:
        return json.dumps({"awslogs": {"data": base64.b64encode(data).decode()}}).encode()
    return data


@dataclass(frozen=True)
class ReplayMeasure:
    """What a history replay would send from one group (``cli plan --replay-hours``), within the bounds."""

    events: int = 0
    bytes: int = 0
    truncated: int = 0
    #: Pages past the bounds were left unread: ``truncated`` is a lower bound.
    truncated_more: bool = False
    skipped: str | None = None


class Replayer:
    """After the governor subscribes a group: replay what came before its filter, bounded, once."""

    def __init__(self, policy: Callable[[], Policy], source: EventSource, writer: DestinationWriter, ledger: ReplayLedger, *,
                 clock: Callable[[], float] = time.time, writes_to: Callable[[str | None], Destination | None] | None = None) -> None:
        """``clock``: the wall clock (epoch seconds) a replay's slice is measured by. ``writes_to``: where the replay of a
        filter shipping to a given ARN is written (None: it is not replayed); default, the filter's own destination, as
        the policy names it. The organization's archive (#31) reads a member's group through ``source`` (the member's
        read-only role) and writes to its own stream what the member's filter ships to its CloudWatch Logs destination."""
        self._policy, self.source, self.writer, self.ledger, self._clock = policy, source, writer, ledger, clock
        self._writes_to = writes_to

    def after_subscribe(self, log_group: str, group_created_ms: int | None, *, owner: str, holder: str, now_s: float,
                        lease_until_s: float, stop_by_s: float | None = None) -> ReplayResult:
        """After the governor's filter is on ``log_group`` (put now, or found in place: a retried event or a continuation
        resumes an unfinished replay). ``group_created_ms``: the group's ``creationTime``, which tells its life from an
        earlier one of the same name. ``owner``: the account, as the subscription documents name it. ``holder``: this
        invocation (its request id), which holds the group's replay until ``lease_until_s``, the invocation's deadline:
        no other invocation replays the group meanwhile, and no delivery starts that could outlast it. ``stop_by_s``: no
        page is read nor delivery started after this (epoch seconds; default ``now_s`` + REPLAY_SLICE_S); the replay
        then stops, unfinished, and gives its lease up."""
        policy = self._policy()
        config = policy.config
        window = config.replay_window_minutes
        if window is None:
            return ReplayResult(skipped="replayWindowMinutes is null")
        if not replay_is_due(window, group_created_ms, now_s):
            return ReplayResult(skipped="the group is older than replayWindowMinutes: history, not a gap")  # no call made
        earlier = self._earlier(log_group, group_created_ms)
        if isinstance(earlier, ReplayResult):
            return earlier
        if earlier is not None and earlier.done:
            return ReplayResult(skipped="replayed already", already_delivered=earlier.delivered)
        if earlier is None:
            ours = self.source.own_filter(log_group, config.filter_name)
            if ours is None:
                return ReplayResult(skipped="the governor's filter is gone")
            if not policy.replays(group_created_ms, ours.created_ms):
                return ReplayResult(skipped="the group is older than replayWindowMinutes: history, not a gap")
            if (refused := self._unreplayable(ours.destination_arn)) is not None:
                return ReplayResult(skipped=refused)
            earlier = ReplayProgress(ours.created_ms, 0, done=False, since_ms=group_created_ms - _PAST_MS, filter_pattern=ours.pattern,
                                     destination_arn=ours.destination_arn or None, group_created_ms=group_created_ms)
        return self._replay(log_group, earlier, owner=owner, holder=holder, now_s=now_s, lease_until_s=lease_until_s, stop_by_s=stop_by_s)

    def config(self) -> Any:
        """The policy's configuration, as the replay reads it now."""
        return self._policy().config

    def own_filter(self, log_group: str) -> FilterInPlace | None:
        """The governor's filter on ``log_group`` (None: it has none)."""
        return self.source.own_filter(log_group, self._policy().config.filter_name)

    def history(self, log_group: str, group_created_ms: int | None, *, since_ms: int, owner: str, holder: str, now_s: float,
                lease_until_s: float, stop_by_s: float | None = None) -> ReplayResult:
        """``cli apply --replay-hours``: what a group with the governor's filter held from ``since_ms`` (event timestamps)
        until the filter existed. Recorded in the same place as a new group's replay, so neither sends an event twice; a
        group an earlier, shorter history replay (or its own replay) covered from a later time gets the hours between."""
        earlier = self._earlier(log_group, group_created_ms)
        if isinstance(earlier, ReplayResult):
            return earlier
        if earlier is not None and earlier.done:
            if (earlier := self._older_hours(earlier, since_ms)) is None:
                return ReplayResult(skipped="replayed already")
        if earlier is None:
            ours = self.own_filter(log_group)
            if ours is None:
                return ReplayResult(skipped="the governor's filter is gone")
            if ours.created_ms + _FUTURE_MS < since_ms:
                # Every event since then was ingested after the filter (timestamps are at most 2 hours ahead): shipped.
                return ReplayResult(skipped="subscribed before the hours asked for: the subscription shipped them")
            if (refused := self._unreplayable(ours.destination_arn)) is not None:
                return ReplayResult(skipped=refused)
            earlier = ReplayProgress(ours.created_ms, 0, done=False, since_ms=since_ms, filter_pattern=ours.pattern,
                                     destination_arn=ours.destination_arn or None, group_created_ms=group_created_ms)
        result = self._replay(log_group, earlier, owner=owner, holder=holder, now_s=now_s, lease_until_s=lease_until_s, stop_by_s=stop_by_s)
        if not result.unfinished and result.skipped is None and earlier.since_ms is not None and earlier.since_ms > since_ms:
            # An earlier run's unfinished replay, finished now, started later than the hours asked for: the hours between
            # are still to send, from the record it left (the caller asks again while a result is unfinished).
            return replace(result, unfinished=True)
        return result

    def gap(self, log_group: str, group_created_ms: int | None, from_ms: int, until_ms: int, *, owner: str, holder: str, now_s: float,
            lease_until_s: float, stop_by_s: float | None = None) -> ReplayResult:
        """A delivery gap (#31): the events of ``log_group`` ingested from ``from_ms`` to ``until_ms`` (epoch ms, both
        included), which CloudWatch Logs skipped while the governor's filter was disabled after a delivery error
        (governor.delivery_gaps finds the window). Recorded under a key of its own (``gap_key``), so a redelivered or
        continued request goes on past what was sent and a finished one sends nothing; bounded by replayMaxEvents and
        replayMaxBytes like a new group's replay. Events are read by timestamp from ``GAP_PAST_MS`` before the window to
        ``GAP_FUTURE_MS`` after it (an event stamped further from its ingestion is not found: docs/design.md)."""
        policy = self._policy()
        if policy.config.replay_window_minutes is None:
            return ReplayResult(skipped="replayWindowMinutes is null")
        key = gap_key(log_group, until_ms)
        earlier = self._earlier(key, group_created_ms)
        if isinstance(earlier, ReplayResult):
            return earlier
        if earlier is not None and earlier.done:
            return ReplayResult(skipped="replayed already", already_delivered=earlier.delivered)
        if earlier is None:
            if group_created_ms is not None and group_created_ms > until_ms:
                return ReplayResult(skipped="the group was deleted and created again after the gap: its lines went with it")
            ours = self.own_filter(log_group)
            if ours is None:
                return ReplayResult(skipped="the governor's filter is gone")
            if (refused := self._unreplayable(ours.destination_arn)) is not None:
                return ReplayResult(skipped=refused)
            if group_created_ms is not None and group_created_ms > from_ms:
                # The group was deleted and created again during the gap (review of #31): what its new life held before
                # the governor's filter is its first lines' replay's, up to the filter's creationTime included.
                from_ms = max(from_ms, ours.created_ms + 1)
                if from_ms > until_ms:
                    return ReplayResult(skipped="the group was deleted and created again during the gap: nothing of this life was skipped")
            earlier = ReplayProgress(until_ms, 0, done=False, since_ms=from_ms - GAP_PAST_MS, filter_pattern=ours.pattern,
                                     destination_arn=ours.destination_arn or None, group_created_ms=group_created_ms,
                                     until_ms=until_ms + GAP_FUTURE_MS, ingested_from_ms=from_ms)
        return self._replay(log_group, earlier, owner=owner, holder=holder, now_s=now_s, lease_until_s=lease_until_s, stop_by_s=stop_by_s,
                            key=key)

    def measure(self, log_group: str, group_created_ms: int | None, *, since_ms: int, in_place: FilterInPlace | None,
                pattern: str) -> ReplayMeasure:
        """``cli plan --replay-hours``: the events and bytes ``history`` would send, within replayMaxEvents / replayMaxBytes.
        ``in_place``: the governor's filter on the group; None when it is still to be put (with ``pattern``), so every
        event so far would be sent."""
        if (refused := self._unreplayable(in_place.destination_arn if in_place is not None else None)) is not None:
            return ReplayMeasure(skipped=refused)
        earlier = self._earlier(log_group, group_created_ms) if in_place is not None else None
        if isinstance(earlier, ReplayResult):
            return ReplayMeasure(skipped=earlier.skipped)
        if earlier is not None and earlier.done and (earlier := self._older_hours(earlier, since_ms)) is None:
            return ReplayMeasure(skipped="replayed already")
        # An unfinished record (an earlier run's): history sends the rest of it, and the hours before it if asked for.
        sent, record_since = (earlier.delivered, earlier.since_ms or 0) if earlier is not None else (0, 0)
        since_ms = min(since_ms, record_since) if earlier is not None and earlier.since_ms is not None else since_ms
        config = self._policy().config
        if in_place is not None and in_place.created_ms + _FUTURE_MS < since_ms:
            return ReplayMeasure(skipped="subscribed before the hours asked for: the subscription shipped them")
        before_ms = in_place.created_ms if in_place is not None else 2 ** 62
        end_ms = in_place.created_ms + _FUTURE_MS if in_place is not None else None
        if earlier is not None and earlier.until_ms is not None:
            end_ms = earlier.until_ms
        pattern = in_place.pattern if in_place is not None else pattern
        count = size = truncated = 0
        for events, following in self.source.event_pages(log_group, pattern, start_ms=since_ms, end_ms=end_ms):
            for event in events:
                if not before_filter(event, before_ms):
                    continue
                cost = len(event.message.encode())
                if sent and event.timestamp_ms >= record_since:
                    sent -= 1  # delivered by the run that left the record (the first of its range, in order)
                    continue
                if truncated or count >= config.replay_max_events or size + cost > config.replay_max_bytes:
                    truncated += 1
                    continue
                count, size = count + 1, size + cost
            if truncated and following is not None:
                return ReplayMeasure(count, size, truncated, truncated_more=True)
        return ReplayMeasure(count, size, truncated)

    def _earlier(self, log_group: str, group_created_ms: int | None) -> ReplayProgress | ReplayResult | None:
        """What an earlier attempt did for this life of the group (None: nothing), or why nothing is to be sent. A record
        of an earlier life of the name is nothing of this one. No call is made when no destination the groups may ship to
        can be replayed to."""
        if self._writes_to is None and not replayable_here(self._policy().destinations):
            return ReplayResult(skipped=_CROSS_ACCOUNT)
        earlier = self.ledger.replay_progress(log_group)
        if earlier is not None and group_created_ms is not None and (life := earlier.life_of(group_created_ms)):
            if life > 0:
                return ReplayResult(skipped="the group was deleted and created again since: its new life is replayed on its own event")
            earlier = None  # an earlier life's: this group's replay starts afresh
        if earlier is not None and not earlier.done and (refused := self._unreplayable(earlier.destination_arn)) is not None:
            return ReplayResult(skipped=refused)
        return earlier

    @staticmethod
    def _older_hours(done: ReplayProgress, since_ms: int) -> ReplayProgress | None:
        """A finished record covers its ``since_ms`` onwards; asked from earlier, the hours between are still to send (None:
        nothing is)."""
        if done.since_ms is None or done.since_ms <= since_ms:
            return None
        return replace(done, delivered=0, done=False, page_token=None, read=0, read_bytes=0, since_ms=since_ms,
                       until_ms=done.since_ms - 1)

    def destination(self, arn: str | None) -> Destination | None:
        """The destination a filter ships to, among destinationArn and the rules' own (None: neither names it); with
        ``writes_to``, where its replay is written instead."""
        if self._writes_to is not None:
            return self._writes_to(arn)
        policy = self._policy()
        return policy.config.destination if not arn else next((d for d in policy.destinations if d.arn == arn), None)

    def _unreplayable(self, arn: str | None) -> str | None:
        destination = self.destination(arn)
        if destination is None:
            return f"the governor's filter ships to {arn}, which the configuration does not name"
        if destination.kind not in MAX_DOCUMENT_BYTES:
            # A member cannot write into another account's stream: its archive gets what comes after the filter only.
            return _CROSS_ACCOUNT
        return None

    def _replay(self, log_group: str, earlier: ReplayProgress, *, owner: str, holder: str, now_s: float, lease_until_s: float,
                stop_by_s: float | None, key: str | None = None) -> ReplayResult:
        key = key or log_group
        if self._clock() + DELIVERY_BUDGET_S > lease_until_s:
            # Not one delivery fits in what is left of the invocation: nothing is claimed or read; a continuation goes on.
            return ReplayResult(unfinished=True, already_delivered=earlier.delivered)
        if not self.ledger.claim_replay(key, earlier, holder=holder, lease_until_s=lease_until_s):
            return ReplayResult(skipped="another invocation is replaying it")
        stop_by_s = now_s + REPLAY_SLICE_S if stop_by_s is None else stop_by_s
        step = _Step(self, log_group, holder, lease_until_s, owner, earlier, key)
        try:
            return step.run(stop_by_s)
        except Exception:
            # The event fails and comes back: give the lease up, so its retry (or another invocation) goes on at once.
            self.ledger.record_replay(key, step.progress, holder=holder, lease_until_s=0)
            raise


def gap_key(log_group: str, until_ms: int) -> str:
    """A delivery gap's record in the ledger, beside the group's own replay record: ``gap:<end>:<group>`` (no log group's
    name holds a ':', so none is another's). Keyed by its end, which a settled gap keeps, not by its start, which moves
    as its first minutes leave the watch's look-back (review of #31)."""
    return f"gap:{until_ms}:{log_group}"


def before_filter(event: IngestedEvent, filter_created_ms: int) -> bool:
    """Whether the replay sends ``event``: ingested before the filter, or in the very millisecond it was created. No page
    says on which side of ``creationTime`` a subscription starts; an event of that millisecond may be the subscription's
    too. Replaying it risks a duplicate, leaving it risks a loss: it is replayed (docs/design.md)."""
    return event.ingestion_ms <= filter_created_ms


class _Step:
    """One invocation's part of a group's replay: page by page from where the last one stopped, each page's events
    before the filter delivered past what was sent, progress recorded after each delivery and each page. A delivery
    starts only while the slice lasts and the invocation has ``DELIVERY_BUDGET_S`` left: the step then stops mid-page,
    and the next one reads that page again, skipping what was delivered."""

    def __init__(self, replayer: Replayer, log_group: str, holder: str, lease_until_s: float, owner: str, earlier: ReplayProgress,
                 key: str) -> None:
        self.r, self.log_group, self.holder, self.lease_until_s, self.owner = replayer, log_group, holder, lease_until_s, owner
        self.key = key
        self.progress = earlier
        self.done_before = earlier.delivered
        self.deliveries = 0

    def run(self, stop_by_s: float) -> ReplayResult:
        config = self.r._policy().config
        destination = self.r.destination(self.progress.destination_arn)
        assert destination is not None  # checked before the replay was claimed
        created_ms, start_ms = self.progress.filter_created_ms, self.progress.since_ms
        end_ms = self.progress.until_ms if self.progress.until_ms is not None else created_ms + _FUTURE_MS
        pattern = self.progress.filter_pattern if self.progress.filter_pattern is not None else config.filter_pattern
        truncated, more = 0, False
        ingested_from = self.progress.ingested_from_ms if self.progress.ingested_from_ms is not None else -1
        index, size = self.progress.read, self.progress.read_bytes
        try:
            pages = iter(self.r.source.event_pages(self.log_group, pattern, token=self.progress.page_token, start_ms=start_ms, end_ms=end_ms))
            page = next(pages, None)
        except ExpiredPageToken:  # read again from the start: the events before the filter are the same, in the same order
            index, size = 0, 0
            self.progress = replace(self.progress, page_token=None, read=0, read_bytes=0)
            pages = iter(self.r.source.event_pages(self.log_group, pattern, start_ms=start_ms, end_ms=end_ms))
            page = next(pages, None)
        while page is not None:
            events, following = page
            chosen, capped = [], False
            for event in events:
                if not before_filter(event, created_ms) or event.ingestion_ms < ingested_from:
                    continue  # the subscription's (a gap's: delivered before it)
                size += len(event.message.encode())
                if capped or index >= config.replay_max_events or size > config.replay_max_bytes:
                    capped, truncated = True, truncated + 1
                    continue
                if index >= self.progress.delivered:
                    chosen.append(event)
                index += 1
            for document, count in documents(chosen, owner=self.owner, log_group=self.log_group, filter_name=config.filter_name,
                                             max_document_bytes=MAX_DOCUMENT_BYTES[destination.kind]):
                if self._spent(stop_by_s):
                    return self._stop()  # this page is read again from its token, past what was delivered
                self.r.writer.deliver(destination, encode(document, destination.kind), partition_key=partition_key(document["logStream"]))
                self.deliveries += 1
                self._save(delivered=self.progress.delivered + count)  # a crash after this resumes past what was sent
            if capped or following is None:
                more = capped and following is not None
                break
            self._save(page_token=following, read=index, read_bytes=size)
            if self.r._clock() >= stop_by_s:
                return self._stop()  # between pages: a continuation goes on from the next one
            page = next(pages, None)
        self._save(done=True, until_ms=None)  # a finished record covers since_ms onwards whole
        return ReplayResult(replayed=self.progress.delivered - self.done_before, truncated=truncated, deliveries=self.deliveries,
                            already_delivered=self.done_before, truncated_more=more)

    def _spent(self, stop_by_s: float) -> bool:
        now = self.r._clock()
        return now >= stop_by_s or now + DELIVERY_BUDGET_S > self.lease_until_s

    def _stop(self) -> ReplayResult:
        """The slice is spent: lease given up, a continuation goes on from the recorded progress."""
        self.r.ledger.record_replay(self.key, self.progress, holder=self.holder, lease_until_s=0)
        return ReplayResult(replayed=self.progress.delivered - self.done_before, deliveries=self.deliveries,
                            already_delivered=self.done_before, unfinished=True)

    def _save(self, **changes: Any) -> None:
        self.progress = replace(self.progress, **changes)
        self.r.ledger.record_replay(self.key, self.progress, holder=self.holder, lease_until_s=self.lease_until_s)

"""The minutes a disabled subscription skips (#31 item 2): found from CloudWatch Logs' own metrics, replayed once.

After a delivery error it will not retry (a destination's policy or role refusing, a Lambda failing) CloudWatch Logs
"disables the subscription filter for up to 10 minutes ... During this disabled period, logs are skipped" (guide,
"Subscriptions"). Nothing tells the group's owner which lines; the filter's own metrics do, a minute at a time:
``DeliveryErrors`` (events it could not deliver) and ``ForwardedLogEvents`` (events it delivered), dimensions
``LogGroupName, DestinationType, FilterName``.

**The watch** (every ``WATCH_EVERY_MINUTES``): ListMetrics names the governed groups whose filter had a delivery error in
the last three hours (``RecentlyActive=PT3H``); GetMetricData reads both metrics of those a minute at a time; ``windows``
turns each group's minutes into its gaps; a gap whose end has settled is queued once (the state table notes it).

**The replay** (the queue's consumer): the group is looked up (its life), and ``Replayer.gap`` reads the window by
ingestion time and delivers it as the subscription would have, recorded per group and window so a redelivery sends
nothing twice; one that outlasts its slice is queued again. A group whose filter ships to the organization's archive (a
CloudWatch Logs destination in another account) is handed to the archive, which pulls the window through this account's
read-only role, as it pulls a new group's first lines (governor.archive_pull).

**What cannot be replayed** is counted (``GAP_UNREPLAYED``, by reason) with a log line naming the group and the window,
and alarmed: the group deleted since, the governor's filter gone, replayMaxEvents / replayMaxBytes passed, a gap that
began before the watch's look-back, a destination the governor cannot write to with no archive to pull it.

The window is known to the minute, not the millisecond: it starts a minute before the first minute with errors (the
failed batch's events were ingested before the error was counted) and ends with the minute the filter delivers again, or
10 minutes after its last error. Lines the filter delivered in those edge minutes are sent again: at most the
ForwardedLogEvents of the window's minutes (``GapWindow.may_repeat``), reported with it. Every event keeps its id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .gap_settings import (ENV_GAP_QUEUE_URL, GAP_CONCURRENCY, GAP_OPERATIONS, GAP_QUOTA_SHARE,  # noqa: F401 (re-exported)
                           WATCH_EVERY_MINUTES)
from .replay import CROSS_ACCOUNT, Replayer, ReplayResult, replay_bounds

MINUTE_MS = 60_000
#: "disabled for up to 10 minutes" (guide, "Subscriptions").
DISABLED_MS = 10 * MINUTE_MS
#: The failed batch's events were ingested before its error was counted: the window starts this long before the first
#: minute with errors (*assumed*: CloudWatch Logs delivers a subscription's events within seconds of their ingestion).
BATCH_LEAD_MS = MINUTE_MS
#: A minute's datapoints are in the metrics this long after it (*assumed*); a gap is queued only once its end is this old.
SETTLE_MS = 5 * MINUTE_MS
#: ListMetrics' RecentlyActive takes only PT3H (the CloudWatch API reference): the watch looks this far back.
LOOKBACK_MS = 3 * 60 * MINUTE_MS
#: A gap that began before that is read from this far back: CloudWatch Logs retries a delivery for up to 24 hours
#: (guide, "Subscriptions"); one-minute datapoints are kept 15 days (CloudWatch concepts, "Metrics retention"). A gap
#: longer still is replayed from here, and its earlier minutes counted (BEFORE_LOOKBACK).
LONG_LOOKBACK_MS = 26 * 60 * MINUTE_MS
#: A queued gap's note outlives the look-back, so the watch never queues it again.
NOTICE_KEEP_S = 2 * LOOKBACK_MS // 1000
#: GetMetricData takes at most 500 queries a call (the model): two metrics of 250 groups.
GROUPS_PER_READ = 250
#: The reasons a gap is not replayed (the ``reason`` dimension of GAP_UNREPLAYED and of the log line).
BEFORE_LOOKBACK = "began-before-lookback"
TRUNCATED = "past-replay-bounds"
GROUP_GONE = "group-deleted"
NOT_REPLAYABLE = "not-replayable"


@dataclass(frozen=True)
class GapWindow:
    """Events ingested from ``from_ms`` to ``until_ms`` (epoch ms, both included) that the filter skipped."""

    log_group: str
    from_ms: int
    until_ms: int
    #: DeliveryErrors counted in the window (events of the failed batches).
    errors: int
    #: ForwardedLogEvents counted in the window's minutes: at most this many of its events were delivered and are sent again.
    may_repeat: int
    #: Its end is older than SETTLE_MS: no later datapoint will move it.
    settled: bool
    #: Its first minute with errors is the look-back's first: it may have begun earlier (what came before is not replayed).
    clipped: bool = False

    def body(self) -> str:
        return json.dumps({"logGroup": self.log_group, "fromMs": self.from_ms, "untilMs": self.until_ms, "errors": self.errors,
                           "mayRepeat": self.may_repeat, **({"clipped": True} if self.clipped else {})}, sort_keys=True)

    @classmethod
    def from_body(cls, body: str) -> GapWindow:
        raw = json.loads(body)
        for key in ("fromMs", "untilMs"):
            if not isinstance(raw.get(key), int) or isinstance(raw.get(key), bool):
                raise ValueError(f"{key} is not a time in epoch ms")
        if not isinstance(raw.get("logGroup"), str) or raw["untilMs"] < raw["fromMs"]:
            raise ValueError("not a delivery gap")
        counts = [raw.get(key) or 0 for key in ("errors", "mayRepeat")]
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in counts):
            raise ValueError("errors and mayRepeat are not counts")
        return cls(raw["logGroup"], raw["fromMs"], raw["untilMs"], counts[0], counts[1], True, raw.get("clipped") is True)

    def as_dict(self) -> dict[str, Any]:
        return {"logGroup": self.log_group, "fromMs": self.from_ms, "untilMs": self.until_ms, "errors": self.errors, "mayRepeat": self.may_repeat}

    @property
    def notice(self) -> str:
        """The gap's identity: its group and its end. A settled gap's end is fixed (its last error minutes are the newest
        in view); its start is not, while its first error minutes leave the look-back (review of #31)."""
        return f"gap:{self.until_ms}:{self.log_group}"


@dataclass(frozen=True)
class FirstLines:
    """A new group's first lines (#20), asked for by the subscribe handler after its put and replayed here, off the
    subscription path: the replay's own read of the filter (its ``creationTime``, which splits the replay's events from
    the subscription's) is this function's, so the subscribe handler reads each group's filters once (#31 item 3)."""

    log_group: str
    #: The group's creationTime (its life; None: not known).
    group_created_ms: int | None
    #: The subscribe handler's clock just after its put (epoch ms): the archive's check of a filter put again later.
    requested_at_ms: int

    def body(self) -> str:
        return json.dumps({"kind": FIRST_LINES, "logGroup": self.log_group, "groupCreatedMs": self.group_created_ms,
                           "requestedAtMs": self.requested_at_ms}, sort_keys=True)


#: A queued item's kind (a gap's body carries none: the first kind there was).
FIRST_LINES = "first-lines"


def queued_item(body: str) -> GapWindow | FirstLines:
    """What a message of the replay queue asks for; ValueError when it is neither."""
    raw = json.loads(body)
    if not isinstance(raw, dict):
        raise ValueError("not a replay request")
    if raw.get("kind") == FIRST_LINES:
        created, asked = raw.get("groupCreatedMs"), raw.get("requestedAtMs")
        if not isinstance(raw.get("logGroup"), str) or not isinstance(asked, int) or not (created is None or isinstance(created, int)):
            raise ValueError("not a first-lines request")
        return FirstLines(raw["logGroup"], created, asked)
    return GapWindow.from_body(body)


def windows(log_group: str, errors: Mapping[int, float], forwarded: Mapping[int, float], *, now_ms: int,
            lookback_from_ms: int | None = None) -> list[GapWindow]:
    """A group's delivery gaps from its filter's per-minute DeliveryErrors and ForwardedLogEvents (minute start, epoch ms ->
    sum). A gap opens with a minute with errors and goes on while errors follow within the disabled period (the filter came
    back and failed again); it ends with the first minute the filter delivers in without an error (events of that minute
    may have come before it did), or ``DISABLED_MS`` after its last error minute. A pure function of the metrics and the
    clock: every run of the watch finds the same windows."""
    failing = sorted(m for m, v in errors.items() if v > 0)
    delivering = sorted(m for m, v in forwarded.items() if v > 0 and not errors.get(m))
    found: list[GapWindow] = []
    index = 0
    while index < len(failing):
        first = last = failing[index]
        index += 1
        while index < len(failing) and failing[index] <= last + MINUTE_MS + DISABLED_MS and not _delivered_between(delivering, last, failing[index]):
            last = failing[index]
            index += 1
        resumed = next((m for m in delivering if last < m <= last + MINUTE_MS + DISABLED_MS), None)
        until = resumed + MINUTE_MS - 1 if resumed is not None else last + MINUTE_MS + DISABLED_MS - 1
        start = max(first - BATCH_LEAD_MS, found[-1].until_ms + 1) if found else first - BATCH_LEAD_MS  # never a minute in two gaps
        count = int(sum(v for m, v in errors.items() if first <= m <= last))
        repeat = int(sum(v for m, v in forwarded.items() if start <= m <= until))
        found.append(GapWindow(log_group, start, until, count, repeat, settled=now_ms >= until + SETTLE_MS,
                               clipped=lookback_from_ms is not None and first - MINUTE_MS - DISABLED_MS < lookback_from_ms))
    return found


def _delivered_between(delivering: list[int], after: int, before: int) -> bool:
    return any(after < m < before for m in delivering)


# --- the watch ----------------------------------------------------------------------------------------------------------
class DeliveryMetrics(Protocol):
    def groups_with_errors(self, filter_name: str) -> list[tuple[str, str]]:
        """(log group, DestinationType) of each filter ``filter_name`` with a DeliveryErrors datapoint in three hours."""
    def per_minute(self, groups: list[tuple[str, str]], filter_name: str, *, start_ms: int, end_ms: int
                   ) -> dict[str, tuple[dict[int, float], dict[int, float]]]:
        """Each group's (DeliveryErrors, ForwardedLogEvents) sums a minute at a time (minute start -> sum)."""


class Notices(Protocol):
    def noticed(self, name: str) -> bool: ...
    def note(self, name: str, *, keep_s: int) -> None: ...


@dataclass(frozen=True)
class WatchResult:
    groups: int = 0
    queued: tuple[GapWindow, ...] = ()
    #: Gaps still open (errors recent, or their end not settled): the next run looks again.
    open: int = 0
    #: Gaps seen by an earlier run (queued then).
    seen: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"groupsWithErrors": self.groups, "queued": len(self.queued), "open": self.open, "seenBefore": self.seen}


class GapWatch:
    """Finds the governed groups' delivery gaps and queues each settled one once (``send(body)``)."""

    def __init__(self, metrics: DeliveryMetrics, notices: Notices, send: Callable[[str], None], *, filter_name: str,
                 clock: Callable[[], float]) -> None:
        self.metrics, self.notices, self.send, self.filter_name, self.clock = metrics, notices, send, filter_name, clock

    def run(self) -> WatchResult:
        now_ms = int(self.clock() * 1000)
        end_ms = now_ms - now_ms % MINUTE_MS
        start_ms = end_ms - LOOKBACK_MS
        groups = self.metrics.groups_with_errors(self.filter_name)
        queued: list[GapWindow] = []
        still_open = seen = 0
        kinds = dict(groups)
        for offset in range(0, len(groups), GROUPS_PER_READ):
            chunk = groups[offset:offset + GROUPS_PER_READ]
            series = self.metrics.per_minute(chunk, self.filter_name, start_ms=start_ms, end_ms=end_ms)
            for group, (errors, forwarded) in sorted(series.items()):
                found = windows(group, errors, forwarded, now_ms=now_ms, lookback_from_ms=start_ms)
                if any(w.clipped and w.settled and not self.notices.noticed(w.notice) for w in found):
                    # A settled gap whose start lies before the look-back: its group's minutes read from further back (the
                    # metrics keep one-minute data 15 days), so its start is found, not cut (review of #31).
                    longer_from = end_ms - LONG_LOOKBACK_MS
                    errors, forwarded = self.metrics.per_minute([(group, kinds[group])], self.filter_name, start_ms=longer_from,
                                                                end_ms=end_ms)[group]
                    found = windows(group, errors, forwarded, now_ms=now_ms, lookback_from_ms=longer_from)
                for window in found:
                    if not window.settled:
                        still_open += 1
                    elif not self.notices.noticed(window.notice):
                        # Sent, then noted: a crash between the two queues it again, which the ledger makes a no-op; the
                        # other order would lose it.
                        self.send(window.body())
                        self.notices.note(window.notice, keep_s=NOTICE_KEEP_S)
                        queued.append(window)
                    else:
                        seen += 1
        return WatchResult(len(groups), tuple(queued), still_open, seen)


# --- the replay ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GapOutcome:
    window: GapWindow
    result: ReplayResult
    #: Why the window (or its ``unreplayed`` events) will not be replayed: a reason above (None: it was, or will be).
    unreplayed_reason: str | None = None
    #: Events of the window past the bounds (a lower bound when ``result.truncated_more``).
    unreplayed: int = 0
    #: Handed to the organization's archive, which pulls it.
    pulled: bool = False
    #: Seconds from the window's end to the end of its replay.
    lag_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        found = {**self.window.as_dict(), **self.result.as_dict()}
        if self.unreplayed_reason:
            found["unreplayedReason"] = self.unreplayed_reason
        if self.unreplayed:
            found["unreplayed"] = self.unreplayed
        if self.pulled:
            found["pullRequested"] = True
        if self.lag_s is not None:
            found["lagSeconds"] = round(self.lag_s, 3)
        return found


class ArchivePull(Protocol):
    def request_replay(self, log_group: str, filter_name: str, bounds: Mapping[str, int] | None = None, *,
                       requested_at_ms: int | None = None, gap: tuple[int, int] | None = None) -> None: ...


class GapReplay:
    """Replays a queued gap (``replay``), or hands it to the organization's archive (``pull``; None: not a member)."""

    def __init__(self, replayer: Replayer, describe: Callable[[Iterable[str]], Mapping[str, Any]], *, pull: ArchivePull | None = None,
                 clock: Callable[[], float]) -> None:
        self.replayer, self.describe, self.pull, self.clock = replayer, describe, pull, clock

    def first_lines(self, request: FirstLines, *, owner: str, holder: str, now_s: float, lease_until_s: float) -> tuple[ReplayResult, bool]:
        """A new group's replay (``Replayer.after_subscribe``), or, for a filter to the organization's archive, the archive
        asked to pull it. Answers the result and whether the archive was asked."""
        result = self.replayer.after_subscribe(request.log_group, request.group_created_ms, owner=owner, holder=holder, now_s=now_s,
                                               lease_until_s=lease_until_s)
        if result.skipped == CROSS_ACCOUNT and self.pull is not None:
            config = self.replayer.config()
            self.pull.request_replay(request.log_group, config.filter_name, replay_bounds(config), requested_at_ms=request.requested_at_ms)
            return ReplayResult(skipped="requested from the organization's archive, which pulls it"), True
        return result, False

    def replay(self, window: GapWindow, *, owner: str, holder: str, now_s: float, lease_until_s: float,
               stop_by_s: float | None = None) -> GapOutcome:
        """``owner``: this account, as the subscription's documents name it."""
        info = self.describe([window.log_group]).get(window.log_group)
        if info is None:
            return GapOutcome(window, ReplayResult(skipped="the group is gone"), GROUP_GONE)
        result = self.replayer.gap(window.log_group, info.created_ms, window.from_ms, window.until_ms, owner=owner, holder=holder,
                                   now_s=now_s, lease_until_s=lease_until_s, stop_by_s=stop_by_s)
        # Created again during the gap: what its earlier life skipped went with it (counted once, when this life's part is done).
        recreated = info.created_ms is not None and info.created_ms > window.from_ms
        if result.skipped == CROSS_ACCOUNT and self.pull is not None:
            config = self.replayer.config()
            self.pull.request_replay(window.log_group, config.filter_name, replay_bounds(config), gap=(window.from_ms, window.until_ms))
            # A gap that began before the 26 hours read is pulled from there: its earlier minutes are counted here.
            return GapOutcome(window, ReplayResult(skipped="requested from the organization's archive, which pulls it"),
                              BEFORE_LOOKBACK if window.clipped else None, pulled=True)
        if (result.skipped is not None and result.skipped not in ("replayed already", "another invocation is replaying it")
                and not result.skipped.startswith("the group was deleted and created again during")):
            reason = GROUP_GONE if "created again" in result.skipped else NOT_REPLAYABLE
            return GapOutcome(window, result, reason)
        finished = result.skipped is None and not result.unfinished
        lag = self.clock() - window.until_ms / 1000 if finished else None
        if result.truncated:
            return GapOutcome(window, result, TRUNCATED, result.truncated, lag_s=lag)
        if finished and window.clipped:
            return GapOutcome(window, result, BEFORE_LOOKBACK, lag_s=lag)
        if recreated and (finished or (result.skipped or "").startswith("the group was deleted and created again during")):
            return GapOutcome(window, result, GROUP_GONE, lag_s=lag)
        return GapOutcome(window, result, lag_s=lag)

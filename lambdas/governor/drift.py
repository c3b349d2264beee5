"""Drift repair's memory: which groups another principal keeps changing back, and when to stop fighting.

Pure logic over a ``DriftLedger`` (the adapter in ``aws/state_table.py`` keeps it in DynamoDB). A change made by
another principal that the governor then repairs counts once per CloudTrail event (a redelivered
event is not counted twice); a group changed back more than the limit within any span of the window's
length (a sliding window: a fight that straddles the hour is caught as soon as one inside it) is
declared contested: the governor leaves that aspect of it alone until the hold expires,
reports a conflict naming the principal, and alarms. Every writer (event handlers, reconcile runs)
asks the same ``before_write`` gate, so a contested group is left alone everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from .aws import Conflict, ReplayProgress
from .config import PolicyConfig
from .events import LogGroupCall
from .policy import Action, Reason
from .service import Aspect, Outcome

UNKNOWN_PRINCIPAL = "an unknown principal"


class DriftLedger(Protocol):
    def conflict(self, log_group: str, aspect: str, now: float) -> Conflict | None: ...
    def count_change(self, log_group: str, aspect: str, now: float, window_s: int, event_id: str) -> int:
        """Record one change at ``now`` (idempotent per ``event_id``: a redelivery keeps its first time); answer
        the changes recorded within the last ``window_s`` seconds."""
    def declare_conflict(self, conflict: Conflict) -> None: ...
    def add_repair(self) -> None:
        """Count one drift repair, for the next reconcile run's 'repaired since the last run'."""


class DriftGuard:
    """Decides, before a write, whether the governor may touch the group; counts fights and repairs."""

    def __init__(self, config: PolicyConfig, ledger: DriftLedger, own_principals: Iterable[str] = (), *,
                 clock: Callable[[], float] = time.time) -> None:
        self.ledger = ledger
        self.own_principals = frozenset(own_principals)
        self.limit = config.drift_fight_limit
        self.window_s = config.drift_fight_window_minutes * 60
        self.hold_s = config.drift_conflict_hold_hours * 3600
        self._clock = clock

    def is_own(self, call: LogGroupCall) -> bool:
        """The governor's own call (its roles): never a trigger, or each write would wake it again."""
        return call.principal in self.own_principals

    def before_write(self, call: LogGroupCall | None, aspect: Aspect) -> Callable[[Outcome], Outcome | None]:
        """A gate for ``Governor.govern``: None lets the planned write through; an Outcome replaces it."""

        def gate(planned: Outcome) -> Outcome | None:
            now = self._clock()
            held = self.ledger.conflict(planned.log_group, aspect.value, now)
            if held is not None and held.holds(planned.created_ms):
                return _contested(planned, held, f"contested with {held.principal} since {_when(held.since)}; "
                                                  f"left alone until {_when(held.until)}")
            if call is None or not call.is_drift:
                return None
            # Counted per life of the group: a group created again under its name starts with no changes behind it.
            life = planned.log_group if planned.created_ms is None else f"{planned.log_group}@{planned.created_ms}"
            changes = self.ledger.count_change(life, aspect.value, now, self.window_s, call.event_id or f"{call.event_name}@{now}")
            if changes <= self.limit:
                return None
            conflict = Conflict(planned.log_group, aspect.value, call.principal or UNKNOWN_PRINCIPAL, now, now + self.hold_s, changes,
                                planned.created_ms)
            self.ledger.declare_conflict(conflict)
            return _contested(planned, conflict, f"changed back {changes} times within {self.window_s // 60} minutes by "
                                                 f"{conflict.principal}; the governor stops touching it until {_when(conflict.until)}")

        return gate

    def repaired(self, call: LogGroupCall, outcome: Outcome) -> bool:
        """Count an applied repair of drift; True when it was one."""
        if call.is_drift and outcome.applied:
            self.ledger.add_repair()
            return True
        return False


class ConflictSet:
    """The conflicts held when a reconcile run starts: its gate, without a look-up per group."""

    def __init__(self, conflicts: Iterable[Conflict]) -> None:
        self.by_key = {(c.log_group, c.aspect): c for c in conflicts}

    def gate(self, aspect: Aspect) -> Callable[[Outcome], Outcome | None]:
        def check(planned: Outcome) -> Outcome | None:
            held = self.by_key.get((planned.log_group, aspect.value))
            if held is None or not held.holds(planned.created_ms):
                return None
            return _contested(planned, held, f"contested with {held.principal} since {_when(held.since)}; left alone until {_when(held.until)}")
        return check


def _contested(planned: Outcome, conflict: Conflict, detail: str) -> Outcome:
    return Outcome(planned.log_group, planned.aspect, Action.CONFLICT, Reason.DRIFT_FIGHT.value, detail, principal=conflict.principal)


def _when(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


class InMemoryLedger:
    """A ledger held in memory: simulations, and the CLI when no state table is given. It keeps the replay's
    progress too (governor.replay.ReplayLedger), as the state table does."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        """``clock``: the wall clock replay leases are judged by (the handlers' own, simulated in simulations)."""
        self._clock = clock
        self.replays: dict[str, tuple[ReplayProgress, str, float]] = {}
        #: (group, aspect) -> event id -> when it was first recorded.
        self.changes: dict[tuple[str, str], dict[str, float]] = {}
        self.held: dict[tuple[str, str], Conflict] = {}
        self.repairs = 0
        self.notices: set[str] = set()

    def conflict(self, log_group: str, aspect: str, now: float) -> Conflict | None:
        held = self.held.get((log_group, aspect))
        return held if held is not None and held.until > now else None

    def count_change(self, log_group: str, aspect: str, now: float, window_s: int, event_id: str) -> int:
        events = self.changes.setdefault((log_group, aspect), {})
        events.setdefault(event_id, now)
        return sum(1 for at in events.values() if now - window_s < at <= now)

    def declare_conflict(self, conflict: Conflict) -> None:
        self.held[(conflict.log_group, conflict.aspect)] = conflict

    def add_repair(self) -> None:
        self.repairs += 1

    def noticed(self, name: str) -> bool:
        return name in self.notices

    def note(self, name: str, *, keep_s: int) -> None:
        self.notices.add(name)

    def replay_progress(self, log_group: str) -> ReplayProgress | None:
        found = self.replays.get(log_group)
        return found[0] if found else None

    def claim_replay(self, log_group: str, progress: ReplayProgress, *, holder: str, lease_until_s: float) -> bool:
        found = self.replays.get(log_group)
        if found is not None and found[0].life_of(progress.group_created_ms or 0) >= 0:  # an earlier life's never stands in the way
            older_hours = found[0].done and found[0].since_ms is not None and progress.since_ms is not None and found[0].since_ms > progress.since_ms
            if (found[0].done and not older_hours) or (found[1] != holder and found[2] >= self._clock()):
                return False
        self.replays[log_group] = (progress, holder, lease_until_s)
        return True

    def record_replay(self, log_group: str, progress: ReplayProgress, *, holder: str, lease_until_s: float) -> None:
        if self.replays.get(log_group, (None, holder))[1] == holder:
            self.replays[log_group] = (progress, holder, lease_until_s)

"""subscriptionMode account-policy: the governor keeps the account's subscription filter policy.

One policy per account and region ships every group (existing and future) not in its
``LogGroupName NOT IN [...]`` list; the governor owns the policy named like its filter and keeps the
list equal to what the policy core says must not ship (``account_policy``): the guard's names, and the
existing groups excluded by prefix, pattern or tag.

- An event (a group created, tagged, untagged) moves one name in or out of the list. Most events
  change nothing and cost one DescribeAccountPolicies (and a read of the state table); a change is
  written under a lock in the state table, read again inside it, so two handlers never drop each other's names.
- The list a change starts from is the one the governor keeps: the names it last wrote (recorded in
  the state table), plus the names the policy lists beyond them that still must not ship; never the
  policy's list alone, which someone may have narrowed (that would make the narrowed list the
  governor's own, and its repair would write it back). A policy deleted after the governor's first
  write is written again by the next change, from that record.
- Only a finished run over every group creates the policy, with the whole list at once: a policy
  written from the first events would ship the excluded groups no run had listed yet. Until the
  governor's first write an event reports ``account-policy-pending`` and its name waits in the state
  table for that run ("pending" means only that).
- Past 25 KB nothing is written (``selection-too-large``): a truncated list would ship groups that
  must not ship. Another tool's policy in the account's one slot is never replaced (``foreign-account-policy``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Protocol

from .account_policy import SELECTION_LIMIT_BYTES, SELECTION_WARN_SHARE, SelectionTooLarge, must_not_ship, selection
from .aws import LogsGateway, retry_budget_s
from .policy import EXCLUSION_REASONS, Action, Policy, Reason
from .service import LiveFacts, Outcome

POLICY_TYPE = "SUBSCRIPTION_FILTER_POLICY"
_EXCLUSIONS = frozenset(r.value for r in EXCLUSION_REASONS)
_NOT_IN = "LogGroupName NOT IN "
#: The list is written under this lock of the state table. Its lease outlasts the work it protects:
#: the read and the write inside it, each one call of at most retry_budget_s() (every retry and
#: timeout), plus pacing; it is renewed before the write, and each holder writes with a fencing token.
LOCK_KEY = "lock#subscription-policy"
LOCK_MARGIN_S = 30.0
LOCK_LEASE_S = 2 * retry_budget_s() + LOCK_MARGIN_S
#: How long a handler waits for another to finish its write before giving the event back to its queue.
LOCK_WAIT_S = 10.0
LOCK_POLL_S = 0.25


class PolicyBusy(Exception):
    """Another writer held the lock for longer than a handler waits: retry the event later."""


class PolicyState(Protocol):
    """Where the keeper keeps what it needs across writers and events (the state table, aws.StateTable)."""

    def acquire_fenced_lock(self, owner: str, now: float, lease_s: float, *, key: str) -> tuple[int | None, str | None]: ...
    def release_fenced_lock(self, owner: str, *, key: str) -> None: ...
    def written_policy(self) -> tuple[frozenset[str], str, int] | None: ...
    def record_written(self, names: frozenset[str], document: str, fence: int) -> bool: ...
    def pending_names(self) -> frozenset[str]: ...
    def change_pending(self, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None: ...


@dataclass(frozen=True)
class PolicyView:
    name: str
    document: str
    names: frozenset[str]


@dataclass(frozen=True)
class PolicyWrite:
    """What the keeper did to the account's policy, and why."""

    written: bool
    reason: Reason | None
    detail: str
    names: int = 0
    size_bytes: int = 0

    @property
    def near_limit(self) -> bool:
        return self.size_bytes >= SELECTION_LIMIT_BYTES * SELECTION_WARN_SHARE

    @property
    def refused(self) -> bool:
        return self.reason in (Reason.SELECTION_TOO_LARGE, Reason.FOREIGN_ACCOUNT_POLICY)

    def as_dict(self) -> dict[str, object]:
        return {"written": self.written, "reason": self.reason.value if self.reason else None, "detail": self.detail,
                "names": self.names, "selectionBytes": self.size_bytes, "limitBytes": SELECTION_LIMIT_BYTES}


def document(policy: Policy) -> str:
    """The policy document for the policy core's filter (canonical JSON, so equal documents compare equal)."""
    wanted = policy.desired_filter
    body = {"DestinationArn": wanted.destination_arn, "FilterPattern": wanted.filter_pattern}
    if wanted.role_arn:
        body["RoleArn"] = wanted.role_arn
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def listed_names(criteria: str | None) -> frozenset[str]:
    if not criteria or not criteria.startswith(_NOT_IN):
        return frozenset()
    return frozenset(json.loads(criteria[len(_NOT_IN):]))


def _listed(view: PolicyView | None, recorded: frozenset[str] | None) -> frozenset[str]:
    """Every name the governor listed, as far as it knows: its record and the policy's list."""
    return (view.names if view is not None else frozenset()) | (recorded or frozenset())


def _same_document(current: str, wanted: str) -> bool:
    try:
        return json.loads(current) == json.loads(wanted)
    except ValueError:
        return False


class SubscriptionPolicyKeeper:
    def __init__(self, policy: Callable[[], Policy], logs: LogsGateway, *, lock: PolicyState | None = None, owner: str | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        """``policy``: the policy to decide with now (the guard's names can change); ``lock``: the state
        table, which also keeps the list last written and the names waiting for the first policy (None:
        a single writer, such as the CLI); ``owner``: who holds the lock while writing, unique per keeper
        (a container), since a holder renews its own lock."""
        self._policy, self.logs, self._lock, self._clock, self._sleep = policy, logs, lock, clock, sleep
        self._owner = owner or f"keeper-{uuid.uuid4()}"
        self._fence: int | None = None

    @property
    def name(self) -> str:
        """The governor's policy is named like its filter: ours by name, as with per-group filters."""
        return self._policy().config.filter_name

    def current(self) -> tuple[PolicyView | None, str | None]:
        """(our policy, the name of another tool's policy holding the account's one slot)."""
        ours, foreign = None, None
        for raw in self.logs.account_policies(POLICY_TYPE):
            if raw.get("policyName") == self.name:
                ours = PolicyView(raw["policyName"], raw.get("policyDocument", ""), listed_names(raw.get("selectionCriteria")))
            else:
                foreign = raw.get("policyName")
        return ours, foreign

    # --- events: one group in or out -------------------------------------------------------------
    def place(self, log_group: str, *, listed: bool, dry_run: bool = False) -> PolicyWrite:
        """Put ``log_group`` in the NOT IN list (``listed``) or take it out. Before the governor's first
        write, the name waits in the state table for the run that makes it."""
        def change(names: frozenset[str]) -> frozenset[str]:
            return (names | {log_group}) if listed else (names - {log_group})

        what = f"{'add' if listed else 'remove'} {log_group!r}"
        write = self._change(change, what, dry_run=dry_run)
        if write.reason is Reason.ACCOUNT_POLICY_PENDING and self._lock is not None and not dry_run:
            self._lock.change_pending(add=[log_group] if listed else [], remove=[] if listed else [log_group])
            # The first write may have been recorded since this event looked: a run reads the parked names again
            # after it records (``replace``), so only a record made before the name was parked can lack it.
            if self._recorded() is not None:
                write = self._change(change, what)
        return write

    # --- runs ------------------------------------------------------------------------------------
    def add(self, names: Iterable[str]) -> PolicyWrite:
        """A page of a run found these groups excluded: list the new ones now (a run only adds while it
        goes; the list is made exact when it finishes)."""
        new = frozenset(names)
        return self._change(lambda current: current | new, f"add {len(new)} excluded groups")

    def _change(self, change: Callable[[frozenset[str]], frozenset[str]], what: str, *, dry_run: bool = False) -> PolicyWrite:
        view, foreign = self.current()
        recorded = self._recorded()
        verdicts = self._verdicts(view, recorded)  # look-ups, if any, before the lock: they could outlast its lease
        wanted = change(self._base(view, recorded, verdicts))
        settled = self._settled(view, foreign, recorded, wanted)
        if settled is not None and (dry_run or not self._record_behind(recorded, wanted)):
            return settled
        if dry_run:
            return self._measure(wanted, written=False, detail=f"dry run: would {what}")
        with self._locked():
            # Again, inside the lock: another writer may have changed the policy and the record.
            view, foreign = self.current()
            recorded = self._recorded()
            wanted = change(self._base(view, recorded, verdicts))
            if view is None and foreign is None:
                what = f"{what}; the policy was deleted: written with the list the governor last wrote"
            settled = self._settled(view, foreign, recorded, wanted)
            if settled is None:
                return self._write(wanted, what)
            if foreign is None and self._record_behind(recorded, wanted):
                # The policy says so already (someone changed it to what this change wants), the record does not: recorded
                # now, or the next write or repair would put back what this change took out.
                self._record(wanted)
            return settled

    def repair(self) -> PolicyWrite:
        """Someone (not the governor) put or deleted the governor's policy: write back the list the
        governor last wrote, kept in the state table, read once the lock is held (a writer it waited for
        may have listed a name). Another tool's policy in the slot is reported."""
        recorded = self._recorded()
        if recorded is None:
            return PolicyWrite(False, None, "the governor has not written the policy yet: nothing to restore")
        view, _ = self.current()
        verdicts = self._verdicts(view, recorded)
        with self._locked():
            recorded = self._recorded() or recorded
            view, foreign = self.current()
            if view is None and foreign is not None:
                return self._foreign(foreign)
            names = self._base(view, recorded, verdicts)
            if view is not None and self._settled(view, None, recorded, names) is not None:
                return self._measure(names, written=False, detail="the policy is as the governor last wrote it")
            what = "restored: it was deleted" if view is None else "restored: it was changed"
            return self._write(names, f"{what}; written back from the state table")

    def replace(self, names: Iterable[str], *, dry_run: bool = False) -> PolicyWrite:
        """A finished run over every group: the list becomes exactly ``names`` (plus the guard's). A name
        listed now but not found by the run (created or tagged meanwhile) stays if it still must not ship.

        Those names are looked up before the lock is taken (a look-up each, at the run's pace, could
        outlast the lock's lease); inside it, a name an event listed since is kept as well."""
        found = set(names)
        view, foreign = self.current()
        if foreign is not None:
            return self._foreign(foreign)
        recorded = self._recorded()
        # What the governor listed: its record and the policy's list (someone may have narrowed the policy).
        listed_before = _listed(view, recorded)
        # Names events found excluded before the governor's first write (created during a first pass).
        parked = self._lock.pending_names() if self._lock is not None else frozenset()
        pending = parked - found
        # A run lists what it finds as it goes (``add``): a name it found that is not listed now was
        # taken out by an event since (an opt-out tag removed), so the run's view of it is stale.
        stale = found - listed_before if view is not None or recorded is not None else set()
        keep = self._still_excluded((listed_before - found) | pending | stale)
        found -= stale
        if dry_run:
            return self._measure(found | keep, written=False, detail="dry run: this list would be written")
        with self._locked():
            view, foreign = self.current()
            if foreign is not None:
                return self._foreign(foreign)
            recorded = self._recorded()
            now_listed = _listed(view, recorded)
            # A name the run found excluded that an event took out since (an opt-out tag removed): looked
            # up again, never put back from the run's stale view.
            taken_out = (found & listed_before) - now_listed
            wanted = (found - taken_out) | (self._still_excluded(taken_out) if taken_out else set()) | keep | (now_listed - listed_before)
            if view is not None and self._settled(view, None, recorded, frozenset(wanted)) is not None:
                write = self._measure(wanted, written=False, detail="the list was already exact")
                self._record(wanted)  # the run's list is exact: it is the governor's own from now on
            else:
                write = self._write(wanted, "created with the run's list" if view is None else "replaced with the run's list")
            if self._lock is not None and not write.refused:
                # Parked since they were read above (an event that looked before this write was recorded): listed
                # too, as their events found them (``place`` parks first and looks for the record after).
                late = self._lock.pending_names() - parked - wanted
                if late:
                    write = self._write(wanted | late, f"{write.detail}; {len(late)} names parked meanwhile listed too")
                if parked | late and not write.refused:
                    self._lock.change_pending(remove=parked | late)
            return write

    def retire(self) -> PolicyWrite:
        """Back to per-group filters: delete the governor's policy (by name; another tool's stays)."""
        view, _ = self.current()
        if view is None:
            return PolicyWrite(False, None, "no account-level subscription filter policy of the governor")
        self.logs.delete_account_policy(view.name, POLICY_TYPE)
        return PolicyWrite(True, None, f"deleted account policy {view.name!r}")

    # --- what the governor keeps ---------------------------------------------------------------------
    def _recorded(self) -> frozenset[str] | None:
        """The names the governor last wrote (the state table); None before its first write, or with no table."""
        written = self._lock.written_policy() if self._lock is not None else None
        return written[0] if written is not None else None

    def _verdicts(self, view: PolicyView | None, recorded: frozenset[str] | None) -> dict[str, bool]:
        """Whether each name the policy lists beyond the record still must not ship (a look-up each; none as a rule)."""
        extra = (view.names - recorded) if view is not None and recorded is not None else frozenset()
        kept = self._still_excluded(extra) if extra else set()
        return {name: name in kept for name in extra}

    @staticmethod
    def _base(view: PolicyView | None, recorded: frozenset[str] | None, verdicts: dict[str, bool]) -> frozenset[str]:
        """The list a change starts from: the names the governor recorded, plus those the policy lists beyond
        them that still must not ship (looked up in ``verdicts``; one listed since the look-up, by another
        writer, is kept). Never the policy's list alone: someone else may have narrowed it. Without a record
        (no table, or a policy the CLI wrote): the policy's list."""
        live = view.names if view is not None else frozenset()
        if recorded is None:
            return live
        return recorded | frozenset(name for name in live - recorded if verdicts.get(name, True))

    def _record_behind(self, recorded: frozenset[str] | None, wanted: Iterable[str]) -> bool:
        """Whether the governor's record differs from the list ``wanted`` (None: nothing recorded yet, nothing to keep)."""
        if recorded is None:
            return False
        try:
            return frozenset(selection(self._policy(), wanted).names) != recorded
        except SelectionTooLarge:
            return False

    def _record(self, names: Iterable[str]) -> None:
        """Record ``names`` as the governor's list without writing it (the policy says so already)."""
        if self._lock is None or self._fence is None:
            return
        policy = self._policy()
        try:
            chosen = selection(policy, names)
        except SelectionTooLarge:
            return
        self._lock.record_written(frozenset(chosen.names), document(policy), self._fence)

    # --- helpers ---------------------------------------------------------------------------------
    def _settled(self, view: PolicyView | None, foreign: str | None, recorded: frozenset[str] | None,
                 wanted: Iterable[str]) -> PolicyWrite | None:
        """A result when nothing is to be written; None when a write is due (``wanted``: the list the change
        makes). "Pending" only before the governor's first write: a policy deleted after it is written again."""
        if foreign is not None:
            return self._foreign(foreign)
        if view is None:
            if recorded is not None:
                return None
            return PolicyWrite(False, Reason.ACCOUNT_POLICY_PENDING,
                               "no account-level subscription filter policy yet: the first finished run over every group writes it")
        policy = self._policy()
        if set(wanted) | policy.guarded_names == set(view.names) and _same_document(view.document, document(policy)):
            return self._measure(view.names, written=False, detail="the list already says so")
        return None

    def _measure(self, names: Iterable[str], *, written: bool, detail: str) -> PolicyWrite:
        return self._write(names, detail, put=False, written=written)

    def _write(self, names: Iterable[str], detail: str, *, put: bool = True, written: bool = True) -> PolicyWrite:
        """The list for ``names`` (plus the guard's), put when ``put``. Past 25 KB, the names of groups
        that are gone are dropped first; only a list that is really too large is refused (whole)."""
        policy = self._policy()
        names = frozenset(names)
        try:
            chosen = selection(policy, names)
        except SelectionTooLarge:
            gone = names - policy.guarded_names - self.logs.existing_log_groups(names - policy.guarded_names)
            try:
                chosen = selection(policy, names - gone)
            except SelectionTooLarge as still:
                too_large = still.selection
                return PolicyWrite(False, Reason.SELECTION_TOO_LARGE, str(still), len(too_large.names), too_large.size_bytes)
            detail = f"{detail}; {len(gone)} names of deleted groups dropped to fit"
        if not put:
            return PolicyWrite(written, None, detail, len(chosen.names), chosen.size_bytes)
        body = document(policy)
        self._renew()
        self.logs.put_account_policy(policyName=self.name, policyType=POLICY_TYPE, policyDocument=body, selectionCriteria=chosen.criteria)
        listed_now = frozenset(chosen.names)
        if self._lock is not None and self._fence is not None and not self._lock.record_written(listed_now, body, self._fence):
            # A holder with a newer token wrote meanwhile (this one's lease ran out): keep both intents.
            newer = self._lock.written_policy()
            listed_now = self._put_union(policy, listed_now | (newer[0] if newer else frozenset()), body)
            self._lock.record_written(listed_now, body, newer[2] if newer else self._fence)
            detail = f"{detail}; merged with a newer writer's list"
        # Read back: a write that crossed another (a lock lost to a stalled call) may have dropped names.
        view, _ = self.current()
        lost = listed_now - (view.names if view else frozenset())
        if lost:
            listed_now = self._put_union(policy, listed_now | (view.names if view else frozenset()), body)
            if self._lock is not None and self._fence is not None:
                self._lock.record_written(listed_now, body, self._fence)
            detail = f"{detail}; {len(lost)} names lost to a crossing write put back"
        chosen = selection(policy, listed_now)
        return PolicyWrite(written, None, detail, len(chosen.names), chosen.size_bytes)

    def _put_union(self, policy: Policy, names: frozenset[str], body: str) -> frozenset[str]:
        chosen = selection(policy, names)
        self.logs.put_account_policy(policyName=self.name, policyType=POLICY_TYPE, policyDocument=body, selectionCriteria=chosen.criteria)
        return frozenset(chosen.names)

    def _still_excluded(self, names: Iterable[str]) -> set[str]:
        policy, keep = self._policy(), set()
        for name in names:
            info = self.logs.describe_log_group(name)
            if info is not None and must_not_ship(policy, LiveFacts(info, self.logs)):
                keep.add(name)
        return keep

    @staticmethod
    def _foreign(name: str) -> PolicyWrite:
        return PolicyWrite(False, Reason.FOREIGN_ACCOUNT_POLICY,
                           f"the account's one subscription filter policy is {name!r}, not the governor's: it is never replaced; "
                           f"delete it, or use subscriptionMode per-group")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock is None:
            yield
            return
        deadline = self._clock() + LOCK_WAIT_S
        while True:
            fence, holder = self._lock.acquire_fenced_lock(self._owner, self._clock(), LOCK_LEASE_S, key=LOCK_KEY)
            if fence is not None:
                break
            if self._clock() >= deadline:
                raise PolicyBusy(f"{holder} has held the subscription policy's lock for over {LOCK_WAIT_S:.0f} s")
            self._sleep(LOCK_POLL_S)
        self._fence = fence
        try:
            yield
        finally:
            self._fence = None
            self._lock.release_fenced_lock(self._owner, key=LOCK_KEY)

    def _renew(self) -> None:
        """Renew the lease just before the write, so the write has a whole lease ahead of it (and a newer token)."""
        if self._lock is not None and self._fence is not None:
            fence, _ = self._lock.acquire_fenced_lock(self._owner, self._clock(), LOCK_LEASE_S, key=LOCK_KEY)
            if fence is not None:
                self._fence = fence


def listed(outcome: Outcome) -> bool:
    """Whether the policy core's outcome for a group puts it in the NOT IN list."""
    return outcome.action is Action.SKIP and outcome.reason in _EXCLUSIONS


def with_write(outcome: Outcome, write: PolicyWrite) -> Outcome:
    """The group's outcome, told with what happened to the account's policy on its account."""
    if write.refused:
        return Outcome(outcome.log_group, outcome.aspect, Action.CONFLICT, write.reason.value, write.detail)
    if write.reason is Reason.ACCOUNT_POLICY_PENDING:
        return Outcome(outcome.log_group, outcome.aspect, Action.SKIP, write.reason.value, f"{outcome.detail}; {write.detail}")
    size = f"{write.names} names, {write.size_bytes:,} of {SELECTION_LIMIT_BYTES:,} bytes"
    if write.written:
        return Outcome(outcome.log_group, outcome.aspect, Action.UPDATE_ACCOUNT_POLICY, outcome.reason,
                       f"{outcome.detail}; account policy: {write.detail} ({size})", applied=True)
    return Outcome(outcome.log_group, outcome.aspect, outcome.action, outcome.reason, f"{outcome.detail}; account policy: {write.detail} ({size})")

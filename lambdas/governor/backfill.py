"""The backfill: bring the log groups that already exist into line, page by page, resumably.

A run pages DescribeLogGroups in name order and asks the same Governor (and so the same policy) as
the event handlers about both aspects of every group. After each finished page it writes the page's
decisions and then a checkpoint (the next page token, the last group name, the counters). A run that
stops (out of time, crashed, redeployed) resumes from the checkpoint: the page that was cut short is
done again, which costs reads but no writes, since a compliant group costs no write.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from botocore.exceptions import ClientError

from . import coverage, savings
from .aws import ExpiredPageToken, LogGroupInfo, LogsGateway, RetryLater, is_retryable
from .policy import Action, Reason
from .controls import REGISTRY
from .service import Aspect, Gate, Governor, LiveFacts, Orphans, Outcome
from .subscription_policy import SubscriptionPolicyKeeper, listed

#: Like the state machine's Retry: pauses of 1, 2, 4 ... s (at most 60 s), ten failures in a row at most.
PAGE_RETRY_PAUSE_S = 1.0
PAGE_RETRY_MAX_PAUSE_S = 60.0
PAGE_RETRIES = 10
#: Errors kept with their group names in a run's summary; beyond that only counted.
MAX_ERRORS_KEPT = 100
CHECKPOINT_VERSION = 1


class BadRequest(ValueError):
    """The backfill was invoked with input it does not understand; retrying cannot fix it."""


@dataclass(frozen=True)
class BackfillRequest:
    run_id: str
    dry_run: bool = False
    #: Only log groups whose names start with this (empty: all).
    prefix: str = ""
    #: A scheduled reconcile: an apply run over every group that never overlaps another reconcile.
    reconcile: bool = False
    #: Uninstalling: remove the governor's own filter from every group, and nothing else.
    remove_filters: bool = False

    KEYS = ("dryRun", "runId", "prefix", "reconcile", "removeFilters")

    @classmethod
    def from_input(cls, payload: Any, *, default_run_id: str) -> BackfillRequest:
        if payload is None:
            payload = {}
        if not isinstance(payload, Mapping):
            raise BadRequest(f"backfill input must be a JSON object with keys {', '.join(cls.KEYS)}; got {type(payload).__name__}")
        unknown = sorted(set(payload) - set(cls.KEYS))
        if unknown:
            raise BadRequest(f"unknown backfill input key(s) {', '.join(unknown)}; valid keys: {', '.join(cls.KEYS)}")
        dry_run = payload.get("dryRun", False)
        if not isinstance(dry_run, bool):
            raise BadRequest(f"dryRun: expected true or false; got {dry_run!r}")
        run_id = payload.get("runId", default_run_id)
        if not isinstance(run_id, str) or not 1 <= len(run_id) <= 80 or not all(c.isalnum() or c in "-_." for c in run_id):
            raise BadRequest(f"runId: expected 1 to 80 letters, digits, '-', '_' or '.'; got {run_id!r}")
        prefix = payload.get("prefix", "")
        if not isinstance(prefix, str) or len(prefix) > 512:
            raise BadRequest(f"prefix: expected a log group name prefix (string, at most 512 characters); got {prefix!r}")
        reconcile = payload.get("reconcile", False)
        if not isinstance(reconcile, bool):
            raise BadRequest(f"reconcile: expected true or false; got {reconcile!r}")
        if reconcile and (dry_run or prefix):
            raise BadRequest("reconcile: a reconcile run applies the policy to every log group; drop dryRun and prefix (or start a backfill)")
        remove_filters = payload.get("removeFilters", False)
        if not isinstance(remove_filters, bool):
            raise BadRequest(f"removeFilters: expected true or false; got {remove_filters!r}")
        if remove_filters and reconcile:
            raise BadRequest("removeFilters: an uninstall run removes the governor's filters; it cannot be a reconcile too")
        return cls(run_id=run_id, dry_run=dry_run, prefix=prefix, reconcile=reconcile, remove_filters=remove_filters)


@dataclass
class Progress:
    """A run's checkpoint: everything needed to resume it and to report on it."""

    run_id: str
    dry_run: bool
    prefix: str = ""
    reconcile: bool = False
    remove_filters: bool = False
    #: The token of the next page to read; None before the first page and after the last.
    next_token: str | None = None
    #: The last group of the last finished page: where a run resumes if its token has expired.
    last_log_group: str | None = None
    pages: int = 0
    groups: int = 0
    #: "aspect action reason" -> count
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, str]] = field(default_factory=list)
    error_count: int = 0
    api_calls: Counter[str] = field(default_factory=Counter)
    #: Invocations (or CLI sessions) that worked on this run: 1 + continuations.
    sessions: int = 0
    started_at: float = field(default_factory=time.time)
    elapsed_s: float = 0.0
    done: bool = False
    #: Where the decision sink stood after the last finished page (a byte offset for files).
    sink_position: int = 0
    #: Coverage counters (``governor.coverage.classify``) over the finished pages.
    coverage: Counter[str] = field(default_factory=Counter)
    #: Drift the event handlers repaired since the last run, taken when this run finished.
    drift_repaired: int | None = None
    #: subscriptionMode account-policy: the groups this run found must not ship (the NOT IN list it
    #: writes when it finishes), and what that write did.
    not_shipped: list[str] = field(default_factory=list)
    account_policy: dict[str, Any] | None = None
    #: No account policy existed when the run started: a first pass over every group decides only the
    #: subscription (no call per group) and writes the policy; then the full pass starts from the top.
    policy_pass: bool = False
    policy_pass_pages: int = 0
    #: Storage counters (``governor.coverage.storage``) over the finished pages: stored bytes governed, of them in groups that
    #: never expired before the run, and the retention changes' estimate of bytes expired.
    storage: Counter[str] = field(default_factory=Counter)
    #: The retention changes of the largest groups (``governor.savings.largest``), for the summary's table.
    largest_changes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"version": CHECKPOINT_VERSION, **asdict(self), "outcomes": dict(self.outcomes), "api_calls": dict(self.api_calls),
                "coverage": dict(self.coverage), "storage": dict(self.storage)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Progress:
        data = {k: v for k, v in raw.items() if k != "version"}
        data["outcomes"] = Counter(data.get("outcomes", {}))
        data["api_calls"] = Counter(data.get("api_calls", {}))
        data["coverage"] = Counter(data.get("coverage", {}))
        data["storage"] = Counter(data.get("storage", {}))
        return cls(**data)

    @property
    def full_scan(self) -> bool:
        """Every group of the account was governed (no prefix, not an uninstall): its coverage describes the account."""
        return not self.prefix and not self.remove_filters

    @property
    def aspects(self) -> tuple[Aspect, ...]:
        if self.policy_pass:
            return (Aspect.SUBSCRIPTION,)
        return (Aspect.REMOVAL,) if self.remove_filters else (Aspect.SUBSCRIPTION, Aspect.RETENTION)

    def summary(self) -> dict[str, Any]:
        """Counts by aspect, action and reason; errors with group names; time; API calls."""
        by_action: Counter[str] = Counter()
        by_reason: dict[str, Counter[str]] = {}
        for key, count in self.outcomes.items():
            aspect, action, reason = key.split(" ")
            by_action[f"{aspect} {action}"] += count
            by_reason.setdefault(f"{aspect} {action}", Counter())[reason] += count
        return {
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "done": self.done,
            "logGroups": self.groups,
            "pages": self.pages,
            "byAction": dict(sorted(by_action.items())),
            "byReason": {k: dict(sorted(v.items())) for k, v in sorted(by_reason.items())},
            "errors": self.errors,
            "errorCount": self.error_count,
            "elapsedSeconds": round(self.elapsed_s, 1),
            "apiCalls": dict(sorted(self.api_calls.items())),
            "sessions": self.sessions,
            "reconcile": self.reconcile,
            "removeFilters": self.remove_filters,
            "coverage": coverage.report(self.coverage, drift_repaired=self.drift_repaired, stored=self.storage if self.full_scan else None),
            "storage": {**savings.figures(self.storage), "largestChanges": self.largest_changes},
            **({"accountSubscriptionPolicy": self.account_policy} if self.account_policy else {}),
        }


class DecisionSink(Protocol):
    """Where a run's decisions go, a page at a time. ``position`` is where the sink stood after the last
    finished page (so a resumed run can drop a half-written page); returns the new position."""

    def write_page(self, run_id: str, page_number: int, outcomes: list[Outcome], position: int) -> int: ...


class RunStore(Protocol):
    def load(self, run_id: str) -> dict[str, Any] | None: ...
    def save(self, run_id: str, checkpoint: Mapping[str, Any]) -> None: ...


def start_or_resume(request: BackfillRequest, store: RunStore) -> Progress:
    """The run's checkpoint, or a new run; a run keeps the mode it was started with."""
    raw = store.load(request.run_id)
    if raw is None:
        return Progress(run_id=request.run_id, dry_run=request.dry_run, prefix=request.prefix, reconcile=request.reconcile,
                        remove_filters=request.remove_filters)
    progress = Progress.from_json(raw)
    if ((progress.dry_run, progress.prefix, progress.reconcile, progress.remove_filters)
            != (request.dry_run, request.prefix, request.reconcile, request.remove_filters)):
        raise BadRequest(
            f"run {request.run_id!r} was started with dryRun={str(progress.dry_run).lower()}, prefix={progress.prefix!r}; "
            f"resume it with the same values or start a new runId"
        )
    return progress


class Backfill:
    """Runs (and resumes) a backfill over one account and region."""

    def __init__(
        self,
        governor: Governor,
        sink: DecisionSink,
        *,
        save: Callable[[Progress], None],
        clock: Callable[[], float] = time.monotonic,
        on_group: Callable[[Progress, list[Outcome]], None] | None = None,
        orphaned: Orphans = lambda info: None,
        gate: Callable[[Aspect], Gate | None] = lambda aspect: None,
        tag_index: Mapping[str, dict[str, str]] | None = None,
        keeper: SubscriptionPolicyKeeper | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        """``now``: the wall clock (epoch seconds) a group's age is measured by; ``orphaned``: whether a /aws/lambda/<name> group's function is gone (a run's one listing of
        functions); ``gate``: the check before each write (held conflicts); ``tag_index``: the tags of
        the groups carrying an exclusion key, looked up in bulk (None: one ListTagsForResource a group)."""
        self.tag_index = tag_index
        #: subscriptionMode account-policy: the keeper of the account's NOT IN list.
        self.keeper = keeper
        self._no_policy_yet = False
        self.orphaned = orphaned
        self.gate = gate
        self.governor = governor
        self.logs: LogsGateway = governor.logs
        self.sink = sink
        self.save = save
        self.clock = clock
        self.on_group = on_group
        self.now = now

    def run(self, progress: Progress, *, time_left: Callable[[], bool], page_time_left: Callable[[], bool] | None = None) -> Progress:
        """Work on ``progress`` while ``time_left()`` allows starting another page.

        ``page_time_left`` (default: ``time_left``) is asked before each group: when it says no, the
        page is abandoned unsaved and will be done again by the next session.
        """
        page_time_left = page_time_left or time_left
        progress.sessions += 1
        self._spent_since = (self.clock(), Counter(self.logs.calls))
        if (self.keeper is not None and progress.sessions == 1 and progress.pages == 0 and progress.full_scan
                and not progress.dry_run and self.keeper.current() == (None, None)):
            # Written after a pass that costs a DescribeLogGroups page per 50 groups, not after the
            # full pass, whose per-group writes (retention) can take days on a large account.
            progress.policy_pass = True
        try:
            while not progress.done and time_left():
                if not self._page(progress, page_time_left):
                    break
        finally:
            self._add_spent(progress)
        return progress

    def _add_spent(self, progress: Progress) -> None:
        """Add the time and API calls spent since the last time this was called to ``progress``, so
        each checkpoint carries them (a session that crashes has still made its calls)."""
        now, calls = self.clock(), Counter(self.logs.calls)
        started, calls_before = self._spent_since
        progress.elapsed_s += now - started
        progress.api_calls.update(calls - calls_before)
        self._spent_since = (now, calls)

    def run_to_end(self, progress: Progress, *, on_retry: Callable[[BaseException, float], None] = lambda e, s: None,
                   sleep: Callable[[float], None] = time.sleep) -> Progress:
        """Run with no time limit (the CLI, benchmarks). A call still failing after botocore's retries
        (its retry quota drains under sustained throttling) abandons the page, which is done again
        from the last checkpoint after a pause, as the state machine's Retry does for the Lambda."""
        failures_in_a_row, pages_before = 0, progress.pages
        while not progress.done:
            try:
                self.run(progress, time_left=lambda: True)
            except Exception as error:
                failures_in_a_row = 1 if progress.pages > pages_before else failures_in_a_row + 1
                pages_before = progress.pages
                if not is_retryable(error) or failures_in_a_row > PAGE_RETRIES:
                    raise
                pause_s = min(PAGE_RETRY_MAX_PAUSE_S, PAGE_RETRY_PAUSE_S * 2 ** (failures_in_a_row - 1))
                on_retry(error, pause_s)
                sleep(pause_s)
        return progress

    def _page(self, progress: Progress, page_time_left: Callable[[], bool]) -> bool:
        """Do the next page and checkpoint it. False when time ran out mid-page (nothing saved)."""
        resume_after = None
        try:
            page = self.logs.page_log_groups(progress.next_token, prefix=progress.prefix or None)
        except ExpiredPageToken:
            # List again from the start, skipping what the finished pages covered (name order).
            resume_after, progress.next_token = progress.last_log_group, None
            page = self.logs.page_log_groups(None, prefix=progress.prefix or None)
        while resume_after is not None and page.next_token and page.groups and page.groups[-1].name <= resume_after:
            page = self.logs.page_log_groups(page.next_token, prefix=progress.prefix or None)

        outcomes: list[Outcome] = []
        errors: list[dict[str, str]] = []
        covered: Counter[str] = Counter()
        stored: Counter[str] = Counter()
        todo = [g for g in page.groups if resume_after is None or g.name > resume_after]
        if progress.policy_pass:
            return self._policy_page(progress, page, todo, page_time_left)
        for info in todo:
            if not page_time_left():
                return False
            group_outcomes, group_errors = self._group(info, progress)
            outcomes.extend(group_outcomes)
            errors.extend(group_errors)
            stored.update(coverage.storage(group_outcomes, never_expires=info.retention_days is None))
            if progress.full_scan:
                covered.update(coverage.classify(group_outcomes, self.orphaned(info)))
            if self.on_group:
                self.on_group(progress, group_outcomes)

        progress.sink_position = self.sink.write_page(progress.run_id, progress.pages + 1, outcomes, progress.sink_position)
        progress.pages += 1
        progress.groups += len(todo)
        progress.outcomes.update(f"{o.aspect.value} {o.action.value} {o.reason}" for o in outcomes)
        progress.coverage.update(covered)
        progress.storage.update(stored)
        progress.largest_changes = savings.largest([*progress.largest_changes, *(
            {"logGroup": o.log_group, savings.STORED: o.stored_bytes, "retentionDays": o.retention_days,
             savings.EXPIRING: o.estimated_expiring_bytes} for o in outcomes if o.estimated_expiring_bytes is not None)])
        progress.error_count += len(errors)
        progress.errors.extend(errors[: max(0, MAX_ERRORS_KEPT - len(progress.errors))])
        progress.last_log_group = page.groups[-1].name if page.groups else progress.last_log_group
        progress.next_token = page.next_token
        progress.done = page.next_token is None
        if self.keeper is not None and Aspect.SUBSCRIPTION in progress.aspects:
            self._keep_account_policy(progress, outcomes)
        self._add_spent(progress)
        self.save(progress)
        return True

    def _policy_page(self, progress: Progress, page: Any, todo: list[LogGroupInfo], page_time_left: Callable[[], bool]) -> bool:
        """A page of the policy pass: subscription decisions only, nothing written to the sink or
        counted (the full pass after it does both)."""
        outcomes = []
        for info in todo:
            if not page_time_left():
                return False
            outcomes.extend(self._group(info, progress)[0])
        progress.not_shipped.extend(sorted({o.log_group for o in outcomes if listed(o)} - set(progress.not_shipped)))
        progress.policy_pass_pages += 1
        progress.last_log_group = page.groups[-1].name if page.groups else progress.last_log_group
        progress.next_token = page.next_token
        if page.next_token is None:
            progress.account_policy = self.keeper.replace(progress.not_shipped).as_dict()
            progress.policy_pass, progress.last_log_group = False, None  # the full pass starts from the top
        self._add_spent(progress)
        self.save(progress)
        return True

    def _keep_account_policy(self, progress: Progress, outcomes: list[Outcome]) -> None:
        """Names found must-not-ship are listed as the run goes (only added: a policy that exists never
        ships them a page longer than needed); a finished run over every group writes the exact list."""
        found = sorted({o.log_group for o in outcomes if o.aspect is Aspect.SUBSCRIPTION and listed(o)} - set(progress.not_shipped))
        progress.not_shipped.extend(found)
        if found and not progress.dry_run and not self._no_policy_yet:
            write = self.keeper.add(found)
            # No policy yet: this run writes it when it finishes; no need to ask again every page.
            self._no_policy_yet = write.reason is Reason.ACCOUNT_POLICY_PENDING
            if write.refused:
                progress.account_policy = write.as_dict()
        if progress.done and progress.full_scan:
            final = self.keeper.replace(progress.not_shipped, dry_run=progress.dry_run)
            if final.written or final.refused or not (progress.account_policy or {}).get("written"):
                progress.account_policy = final.as_dict()  # else: the policy pass wrote it, and it is still exact

    def _group(self, info: LogGroupInfo, progress: Progress) -> tuple[list[Outcome], list[dict[str, str]]]:
        facts = LiveFacts(info, self.logs, orphaned=self.orphaned, tag_index=self.tag_index)  # shared by both aspects
        outcomes, errors = [], []
        aspects = progress.aspects
        if Aspect.RETENTION in aspects:  # the controls only rules set (governor.controls), each where its handler is deployed
            deployed = self.governor.policy.config.event_aspects
            aspects = (*aspects, *(Aspect(c.aspect) for c in REGISTRY if c.rule_only and c.aspect in deployed))
        for aspect in aspects:
            try:
                outcomes.append(self._estimated(info, self.governor.govern(facts, aspect, dry_run=progress.dry_run, before_write=self.gate(aspect))))
            except RetryLater as later:
                # AWS refused this group for now (LimitExceeded with a slot free): reported, asked again by the next run; one
                # group that keeps answering so never holds the run's pages.
                errors.append({"logGroup": info.name, "aspect": aspect.value, "error": f"{type(later).__name__}: {later}"})
                outcomes.append(Outcome(info.name, aspect, Action.SKIP, "error", str(later)))
            except ClientError as error:
                if is_retryable(error):
                    raise  # throttled past botocore's retries: the page is done again later, never dropped
                # AWS refused this group for good (access denied, invalid parameter): report it and go on.
                # Anything else (a bug, a crash) fails the session, and the page is done again.
                errors.append({"logGroup": info.name, "aspect": aspect.value, "error": f"{type(error).__name__}: {error}"})
                outcomes.append(Outcome(info.name, aspect, Action.SKIP, "error", str(error)))
        return outcomes, errors

    def _estimated(self, info: LogGroupInfo, outcome: Outcome) -> Outcome:
        """A retention change with its estimate of the stored bytes it expires (``governor.savings``)."""
        if outcome.action is not Action.SET_RETENTION or outcome.retention_days is None:
            return outcome
        expiring = savings.expiring_bytes(info.stored_bytes, created_ms=info.created_ms, old_days=info.retention_days,
                                          new_days=outcome.retention_days, now_ms=self.now() * 1000)
        return replace(outcome, estimated_expiring_bytes=expiring)

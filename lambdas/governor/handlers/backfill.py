"""backfill: bring existing log groups into line, one time-boxed slice per invocation.

The state machine invokes it in a loop with ``{"execution": <execution name>, "input": <execution
input>}`` until it answers ``done``. It can also be invoked directly with the input itself
(``{"dryRun": true}``): a small account finishes in one invocation; a large one answers
``done: false`` and is continued by invoking again with the same ``runId``.

A scheduled reconcile (``{"reconcile": true}``) is the same run over every group, holding a lock in
the state table so two never overlap: one that finds the lock held ends at once, saying by whom.
Every run lists the account's functions once (kept with its checkpoint) to find orphaned
``/aws/lambda/<name>`` groups, leaves groups under a held drift conflict alone, and counts coverage;
a finished run over every group publishes it (``coverage/latest.json`` and metrics).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import metric_names
from ..aws import KmsGateway, FleetBus, LambdaGateway, LogGroupInfo, LogsGateway, Pacer, S3RunStore, StateTable, TaggingGateway, retry_budget_s
from ..backfill import Backfill, BackfillRequest, Progress, start_or_resume
from ..config import ENV_FLEET_BUS, ENV_REPORTS_BUCKET, METRICS_NAMESPACE, SERVICE_NAME, ConfigError, Via
from ..drift import ConflictSet
from ..policy import Reason, orphan_candidate
from ..runtime import GuardedPolicies, Settings
from ..service import Governor
from ..subscription_policy import SubscriptionPolicyKeeper

#: Start no new page with less time left than this: a page at quota takes ~10 s, a throttled one longer.
PAGE_MARGIN_MS = 120_000
#: Abandon a page (to be done again next time) with less than this left before the next group: the
#: longest one API call can take (every retry, every timeout), and room to save.
GROUP_MARGIN_MS = int(retry_budget_s() * 1000) + 10_000

#: A reconcile holds its lock this long per slice; each slice renews it, and a run that died frees it
#: once it lapses (two slice timeouts).
RECONCILE_LEASE_S = 2 * 900

logger = Logger(service=SERVICE_NAME)


@dataclass(frozen=True)
class BackfillParts:
    governor: Governor
    store: S3RunStore
    clock: Callable[[], float] = time.monotonic
    #: None when no state table is configured (no conflicts to respect, no lock, no drift count).
    state: StateTable | None = None
    lambdas: LambdaGateway | None = None
    wall_clock: Callable[[], float] = time.time
    #: Bulk tag look-ups (None: one ListTagsForResource per group).
    tagging: TaggingGateway | None = None
    #: subscriptionMode account-policy: keeps the account policy's NOT IN list (None: per-group filters).
    keeper: SubscriptionPolicyKeeper | None = None
    #: The organization's fleet bus (None: a governor on its own).
    fleet: FleetBus | None = None


class FunctionListing:
    """The account's functions, listed once per run and kept beside its checkpoint, so a run of many
    slices makes one listing, not one call per group. A group is judged against the listing's time:
    one created less than a day before it is too young to call orphaned."""

    def __init__(self, store: S3RunStore, run_id: str, lambdas: LambdaGateway, wall_clock: Callable[[], float] = time.time) -> None:
        self._store, self._key, self._lambdas, self._wall_clock = store, f"runs/{run_id}/functions.json", lambdas, wall_clock
        self._listing: tuple[float, frozenset[str]] | None = None

    def __call__(self, info: LogGroupInfo) -> bool | None:
        listed_at, names = self._load()
        function = orphan_candidate(info.name, info.created_ms, listed_at)
        return None if function is None else function not in names

    def _load(self) -> tuple[float, frozenset[str]]:
        if self._listing is None:
            saved = self._store.load_json(self._key)
            if saved is None:
                saved = {"listedAt": self._wall_clock(), "names": sorted(self._lambdas.function_names())}
                self._store.save_json(self._key, saved)
            self._listing = (saved["listedAt"], frozenset(saved["names"]))
        return self._listing


def build_parts(environ: Mapping[str, str], *, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> BackfillParts:
    settings = Settings.from_environ(environ)
    bucket = environ.get(ENV_REPORTS_BUCKET)
    if not bucket:
        raise ConfigError(f"{ENV_REPORTS_BUCKET} is not set: set it to the bucket for backfill checkpoints and reports (the stack does this)")
    pacer = Pacer(settings.config.backfill_rates_tps(), clock=clock, sleep=sleep)
    lambdas = LambdaGateway()
    # A KMS key per group (#21): its policy is read before an association (the client is made on first use).
    governor = Governor(GuardedPolicies(settings, lambdas, clock=clock), LogsGateway(pacer=pacer), keys=KmsGateway())
    state = StateTable(settings.state_table) if settings.state_table else None
    keeper = None
    if settings.config.subscription_mode is Via.ACCOUNT_POLICY:
        keeper = SubscriptionPolicyKeeper(lambda: governor.policy, governor.logs, lock=state, sleep=sleep)
    return BackfillParts(governor, S3RunStore(bucket), clock, state=state, lambdas=lambdas,
                         tagging=TaggingGateway() if settings.config.tag_keys else None, keeper=keeper,
                         fleet=FleetBus(environ[ENV_FLEET_BUS]) if environ.get(ENV_FLEET_BUS) else None)


def _save_quietly(store: S3RunStore, progress: Progress) -> None:
    try:
        store.save(progress.run_id, progress.to_json())
    except Exception:  # the failure being raised matters more; the last page's checkpoint stands
        logger.exception("could not save the session's counts after a failure")


@cache
def backfill_parts() -> BackfillParts:
    """Built on the first invocation and kept for the container's life."""
    return build_parts(os.environ)


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return handle_backfill(event, context, backfill_parts())


def handle_backfill(event: Any, context: Any, parts: BackfillParts) -> dict[str, Any]:
    if isinstance(event, dict) and "execution" in event:  # from the state machine
        request = BackfillRequest.from_input(event.get("input"), default_run_id=str(event["execution"]))
    else:
        request = BackfillRequest.from_input(event, default_run_id=f"run-{context.aws_request_id}")
    logger.append_keys(runId=request.run_id, dryRun=request.dry_run, reconcile=request.reconcile)
    store = parts.store

    progress = start_or_resume(request, store)
    if request.reconcile and not progress.done:
        if parts.state is None:
            raise ConfigError("a reconcile run needs the state table for its lock: set GOVERNOR_STATE_TABLE (the stack does this)")
        holder = parts.state.acquire_lock(request.run_id, parts.wall_clock(), RECONCILE_LEASE_S)
        if holder is not None:
            logger.warning("another reconcile run is still going: this one ends without work", extra={"heldBy": holder})
            return {"runId": request.run_id, "done": True, "skipped": f"reconcile run {holder} is still going"}
    if not progress.done:
        def page_done(p: Progress) -> None:
            store.save(p.run_id, p.to_json())
            logger.info("page done", extra={"pages": p.pages, "logGroups": p.groups, "errors": p.error_count})

        conflicts = ConflictSet(parts.state.conflicts(parts.wall_clock()) if parts.state else ())
        orphaned = FunctionListing(store, progress.run_id, parts.lambdas or LambdaGateway(), parts.wall_clock)
        # One look-up of the groups carrying an exclusion tag per slice, instead of one call per group;
        # a group about to be written is looked up again (LiveFacts.confirm_tags).
        exclusion_keys = parts.governor.policy.config.tag_keys
        tag_index = parts.tagging.log_groups_tagged(exclusion_keys) if parts.tagging and exclusion_keys and not progress.remove_filters else None
        try:
            Backfill(parts.governor, store, save=page_done, clock=parts.clock, now=parts.wall_clock, orphaned=orphaned, gate=conflicts.gate,
                     tag_index=tag_index, keeper=None if progress.remove_filters else parts.keeper).run(
                progress,
                time_left=lambda: context.get_remaining_time_in_millis() > PAGE_MARGIN_MS,
                page_time_left=lambda: context.get_remaining_time_in_millis() > GROUP_MARGIN_MS,
            )
        except Exception:
            # Position fields change only when a page is finished, so saving now keeps the resume
            # point and adds this session's calls and time to the run's summary.
            _save_quietly(store, progress)
            raise
        # Only a reconcile takes the event handlers' repair count: a plan or a backfill by hand leaves it for the next reconcile.
        if progress.done and request.reconcile and progress.drift_repaired is None:
            progress.drift_repaired = parts.state.take_repairs()
        store.save(progress.run_id, progress.to_json())  # keeps the session's API-call counts
        if progress.done:
            report = _publish_coverage(progress, store)
            if report is not None and parts.fleet is not None:
                _report_to_fleet(parts.fleet, report)
            _publish_account_policy(progress)
        if progress.done and request.reconcile:
            parts.state.release_lock(request.run_id)

    summary = progress.summary()
    result: dict[str, Any] = {"runId": progress.run_id, "done": progress.done, "summary": summary}
    if progress.done:
        result["summaryLocation"] = store.write_summary(progress.run_id, summary)
        result["decisionsLocation"] = f"s3://{store.bucket}/runs/{progress.run_id}/decisions/"
        logger.info("backfill finished", extra={"summary": summary})
    else:
        logger.info("backfill continues in the next invocation", extra={"pages": progress.pages, "logGroups": progress.groups})
    return result


def _publish_account_policy(progress: Progress) -> None:
    """The NOT IN list's size (its alarm fires before the 25 KB AWS accepts), or its refusal (the
    Conflicts alarm): a run that could not write the list must not pass unnoticed."""
    written = progress.account_policy
    if not written or progress.dry_run:
        return
    refused = written["reason"] in (Reason.SELECTION_TOO_LARGE.value, Reason.FOREIGN_ACCOUNT_POLICY.value)
    figures = ([(metric_names.CONFLICTS, MetricUnit.Count, 1, None), (metric_names.CONFLICTS, MetricUnit.Count, 1, written["reason"])] if refused
               else [(metric_names.SUBSCRIPTION_SELECTION_BYTES, MetricUnit.Bytes, written["selectionBytes"], None)])
    for name, unit, value, reason in figures:
        with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE, default_dimensions={"service": SERVICE_NAME}) as metric:
            if reason:
                metric.add_dimension(name="Reason", value=reason)
    if refused:
        logger.error("the account's subscription filter policy was not written", extra={"accountSubscriptionPolicy": written})


def _report_to_fleet(fleet: FleetBus, report: dict[str, Any]) -> None:
    """The central account's view of this member; a failure to reach it is logged, not fatal: the run
    did its work, and the central account flags a member that stops reporting."""
    try:
        fleet.put_coverage(report)
    except Exception:
        logger.exception("could not report the coverage to the fleet bus", extra={"bus": fleet.bus_arn})


def _publish_coverage(progress: Progress, store: S3RunStore) -> dict[str, Any] | None:
    """A finished run over every group: its coverage as metrics and as the account's latest coverage."""
    if not progress.full_scan:
        return None
    report = progress.summary()["coverage"]
    latest = {"runId": progress.run_id, "dryRun": progress.dry_run, "reconcile": progress.reconcile,
              "finishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **report}
    store.save_json("coverage/latest.json", latest)
    # One EMF line per figure (a slice that is not the last publishes none, so no shared Metrics object).
    figures = [(name, report.get(key, 0), None) for name, key in metric_names.COVERAGE.items()]
    figures += [(name, count, reason) for kind, name in (("excluded", metric_names.COVERAGE_EXCLUDED), ("conflicts", metric_names.COVERAGE_CONFLICTS))
                for reason, count in report[kind].items()]
    figures += [(name, report.get(key, 0), None) for name, key in metric_names.COVERAGE_BYTES.items()]
    for name, value, reason in figures:
        unit = (MetricUnit.Percent if name == metric_names.COVERAGE_COMPLIANT_PERCENT
                else MetricUnit.Bytes if name in metric_names.COVERAGE_BYTES else MetricUnit.Count)
        with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE, default_dimensions={"service": SERVICE_NAME}) as metric:
            if reason:
                metric.add_dimension(name="Reason", value=reason)
    for control, counts in report.get("byControl", {}).items():  # #21: each control's compliance, for the dashboard
        with single_metric(name=metric_names.COVERAGE_CONTROL_COMPLIANT_PERCENT, unit=MetricUnit.Percent, value=counts["compliantPercent"],
                           namespace=METRICS_NAMESPACE, default_dimensions={"service": SERVICE_NAME}) as metric:
            metric.add_dimension(name="Control", value=control)
    return latest

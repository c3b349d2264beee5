"""Coverage: how much of an account the governor governs, and how much of that is compliant.

Pure counting over a run's outcomes, one group at a time; the backfill keeps the counts in its
checkpoint, and a finished full run publishes them (summary.json, coverage/latest.json, metrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import savings, storage_cost
from .policy import EXCLUSION_REASONS, Action, Reason
from .service import LOG_GROUP_GONE, Aspect, Outcome

#: Skips that leave a group in scope: the aspect cannot apply to it (its class) or it vanished.
_NOT_APPLICABLE = {Reason.UNSUPPORTED_CLASS.value, Reason.FIXED_RETENTION_CLASS.value, LOG_GROUP_GONE}
_EXCLUSIONS = {r.value for r in EXCLUSION_REASONS}


def classify(outcomes: Sequence[Outcome], orphaned: bool | None) -> list[str]:
    """The coverage counters one group adds to."""
    keys = ["logGroups"]
    if orphaned:
        keys.append("orphans")
    excluded = _excluded(outcomes)
    if excluded:
        return [*keys, f"excluded:{excluded}"]
    keys.append("governed")
    if any(o.reason == Reason.UNSUPPORTED_CLASS.value for o in outcomes):
        keys.append("unsupportedClass")
    keys.extend(f"conflicts:{o.reason}" for o in outcomes if o.action is Action.CONFLICT)
    errors = [o for o in outcomes if o.action is Action.SKIP and o.reason == "error"]
    if errors:
        keys.append("errors")
    if any(o.applied for o in outcomes):
        keys.append("repaired")
    if all(_compliant(o) for o in outcomes):
        keys.append("compliant")
    # Per control (#21): each aspect's own count, so a control that lags shows apart from the others.
    for outcome in outcomes:
        keys.append(f"control:{outcome.aspect.value}")
        if _compliant(outcome):
            keys.append(f"controlCompliant:{outcome.aspect.value}")
    return keys


def _excluded(outcomes: Sequence[Outcome]) -> str | None:
    return next((o.reason for o in outcomes if o.action in (Action.SKIP, Action.REMOVE_FILTER) and o.reason in _EXCLUSIONS), None)


def storage(outcomes: Sequence[Outcome], *, never_expires: bool) -> dict[str, int]:
    """The storage counters one group adds to (``governor.savings``): its stored bytes when it is governed (and as
    never-expiring bytes when it had no retention before the run), and its retention change's estimate of bytes expired."""
    if not outcomes:
        return {}
    # A group excluded from shipping (a rule's shipping off, a shipping-path group) may still have its retention governed:
    # its bytes count whenever a retention decision of its own was made, as plan's table of changes lists it.
    retention_governed = any(o.aspect is Aspect.RETENTION and o.action in (Action.SET_RETENTION, Action.LEAVE) for o in outcomes)
    if _excluded(outcomes) and not retention_governed:
        return {}
    stored = outcomes[0].stored_bytes
    expiring = sum(o.estimated_expiring_bytes or 0 for o in outcomes)
    return {k: v for k, v in ((savings.STORED, stored), (savings.NEVER_EXPIRE, stored if never_expires else 0),
                              (savings.EXPIRING, expiring)) if v}


def _compliant(outcome: Outcome) -> bool:
    if outcome.action is Action.LEAVE or outcome.applied:
        return True  # as it should be, or made so by this run
    return outcome.action is Action.SKIP and outcome.reason in _NOT_APPLICABLE


def report(counts: Mapping[str, int], *, drift_repaired: int | None = None, stored: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The coverage of a run, as summary.json and `cli status` show it; ``stored``: its storage counters (``storage``)."""
    by_prefix: dict[str, dict[str, int]] = {"excluded": {}, "conflicts": {}}
    for key, count in sorted(counts.items()):
        kind, _, reason = key.partition(":")
        if reason and kind in by_prefix:
            by_prefix[kind][reason] = count
    governed = counts.get("governed", 0)
    answer: dict[str, Any] = {
        "logGroups": counts.get("logGroups", 0),
        "governed": governed,
        "compliant": counts.get("compliant", 0),
        "compliantPercent": round(100.0 * counts.get("compliant", 0) / governed, 1) if governed else 100.0,
        "repairedByThisRun": counts.get("repaired", 0),
        "excluded": by_prefix["excluded"],
        "conflicts": by_prefix["conflicts"],
        "unsupportedClass": counts.get("unsupportedClass", 0),
        "orphans": counts.get("orphans", 0),
        "errors": counts.get("errors", 0),
    }
    controls = sorted(k.partition(":")[2] for k in counts if k.startswith("control:"))
    if controls:
        answer["byControl"] = {c: {"governed": counts[f"control:{c}"], "compliant": counts.get(f"controlCompliant:{c}", 0),
                                   "compliantPercent": round(100.0 * counts.get(f"controlCompliant:{c}", 0) / counts[f"control:{c}"], 1)}
                               for c in controls}
    if drift_repaired is not None:
        answer["driftRepairedSinceLastRun"] = drift_repaired
    if stored is not None:
        answer.update(savings.figures(stored))
    return answer


_TABLE_ROWS = (
    ("log groups seen", "logGroups"), ("governed", "governed"), ("compliant", "compliant"),
    ("repaired by that run", "repairedByThisRun"), ("drift repaired by events", "driftRepairedSinceLastRun"),
    ("excluded", "excluded"), ("conflicts", "conflicts"), ("unsupported class", "unsupportedClass"),
    ("orphaned /aws/lambda groups", "orphans"), ("errors", "errors"),
)


def table(latest: Mapping[str, Any], *, region: str) -> str:
    """A coverage report (coverage/latest.json) as the table `cli status` prints."""
    kind = "reconcile" if latest.get("reconcile") else ("backfill plan" if latest.get("dryRun") else "backfill")
    lines = [f"Coverage in {region}: {kind} run {latest['runId']}, finished {latest.get('finishedAt', '?')}", ""]
    # "drift repaired by events" counts the event handlers' repairs between the previous run and this one.
    for label, key in _TABLE_ROWS:
        value = latest.get(key)
        if value is None:
            continue
        if isinstance(value, dict):
            detail = ", ".join(f"{reason} {n:,}" for reason, n in sorted(value.items()))
            lines.append(f"  {label:<28} {sum(value.values()):>10,}   {detail}".rstrip())
        elif key == "compliant":
            lines.append(f"  {label:<28} {value:>10,}   {latest.get('compliantPercent', 0):.1f}% of governed")
        else:
            lines.append(f"  {label:<28} {value:>10,}")
    for control, counts in sorted(latest.get("byControl", {}).items()):
        lines.append(f"  {'compliant: ' + control:<28} {counts['compliant']:>10,}   {counts['compliantPercent']:.1f}% of {counts['governed']:,}")
    if savings.STORED in latest:
        lines.append(f"  {'stored, governed':<28} {savings.size(latest[savings.STORED]):>10}")
        lines.append(f"  {'stored, never expiring':<28} {savings.size(latest[savings.NEVER_EXPIRE]):>10}   before that run")
        lines.append(f"  {'expired by its changes':<28} {savings.size(latest[savings.EXPIRING]):>10}   an estimate, "
                     f"{storage_cost.about(latest['estimatedMonthlySavingsUsd'])} a month (assumed: {latest['estimateAssumption']})")
    return "\n".join(lines)

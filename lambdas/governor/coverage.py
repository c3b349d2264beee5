"""Coverage: how much of an account the governor governs, and how much of that is compliant.

Pure counting over a run's outcomes, one group at a time; the backfill keeps the counts in its
checkpoint, and a finished full run publishes them (summary.json, coverage/latest.json, metrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .policy import EXCLUSION_REASONS, Action, Reason
from .service import LOG_GROUP_GONE, Outcome

#: Skips that leave a group in scope: the aspect cannot apply to it (its class) or it vanished.
_NOT_APPLICABLE = {Reason.UNSUPPORTED_CLASS.value, Reason.FIXED_RETENTION_CLASS.value, LOG_GROUP_GONE}
_EXCLUSIONS = {r.value for r in EXCLUSION_REASONS}


def classify(outcomes: Sequence[Outcome], orphaned: bool | None) -> list[str]:
    """The coverage counters one group adds to."""
    keys = ["logGroups"]
    if orphaned:
        keys.append("orphans")
    excluded = next((o.reason for o in outcomes if o.action in (Action.SKIP, Action.REMOVE_FILTER) and o.reason in _EXCLUSIONS), None)
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


def _compliant(outcome: Outcome) -> bool:
    if outcome.action is Action.LEAVE or outcome.applied:
        return True  # as it should be, or made so by this run
    return outcome.action is Action.SKIP and outcome.reason in _NOT_APPLICABLE


def report(counts: Mapping[str, int], *, drift_repaired: int | None = None) -> dict[str, Any]:
    """The coverage of a run, as summary.json and `cli status` show it."""
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
    return "\n".join(lines)

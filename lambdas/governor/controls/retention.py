"""Retention: how long a group keeps its events (PutRetentionPolicy)."""

from __future__ import annotations

from typing import Any

from .. import metric_names as names
from ..decision import Action, Decision, LogGroupFacts, Reason
from ..primitives import Via
from ..primitives import RetentionMode
from .base import Control, Undo


def judge(current: int | None, desired: int, mode: RetentionMode, config: Any) -> Decision:
    """A governed group's retention against the days its rule (or the flat keys) want, by the mode that decides it.
    ``config``: the PolicyConfig (clamp's bounds, neverExpireCompliant).
    A rule's own mode decides its groups; without one, retentionMode does, clamp's bounds included (docs/rules.md). Under
    clamp the days a group without retention gets lie within the bounds (parse_policy_config refuses a rule's outside
    them), so that what is set here is left the next time: a decision is a fixed point on every path (#26)."""
    if mode is RetentionMode.CLAMP:
        low, high = config.retention_min_days, config.retention_max_days
        desired = min(max(desired, low), high)
    if current is None:
        if config.never_expire_compliant:
            return Decision(Action.LEAVE, Reason.NEVER_EXPIRE_ALLOWED, "never expires, which neverExpireCompliant allows")
        return Decision(Action.SET_RETENTION, Reason.RETENTION_UNSET, f"never expires; set {desired} days", retention_days=desired)
    if mode is RetentionMode.CLAMP:
        if current < low:
            return Decision(Action.SET_RETENTION, Reason.RETENTION_TOO_SHORT, f"raise {current} to the minimum {low} days", retention_days=low)
        if current > high:
            return Decision(Action.SET_RETENTION, Reason.RETENTION_TOO_LONG, f"shorten {current} to the maximum {high} days", retention_days=high)
        return Decision(Action.LEAVE, Reason.RETENTION_WITHIN_BOUNDS, f"{current} days, within {low}..{high}")
    if current == desired:
        return Decision(Action.LEAVE, Reason.RETENTION_COMPLIANT, f"{current} days as configured")
    if current < desired:
        return Decision(Action.SET_RETENTION, Reason.RETENTION_TOO_SHORT, f"raise {current} to {desired} days", retention_days=desired)
    if mode is RetentionMode.EXACT:
        return Decision(Action.SET_RETENTION, Reason.RETENTION_TOO_LONG, f"shorten {current} to {desired} days", retention_days=desired)
    return Decision(Action.LEAVE, Reason.KEEPS_LONGER_RETENTION, f"keeps {current} days (> {desired}); retentionMode is minimum")


def orphaned(current: int | None, orphan_days: int) -> Decision:
    """A /aws/lambda/ group whose function is gone (orphanRetentionDays): shortened, never deleted."""
    if current is not None and current <= orphan_days:
        return Decision(Action.LEAVE, Reason.ORPHANED, f"its function no longer exists; keeps {current} days (<= {orphan_days})")
    return Decision(Action.SET_RETENTION, Reason.ORPHANED, f"its function no longer exists; shorten to {orphan_days} days (never deleted)",
                    retention_days=orphan_days)


def under_account_policy(decision: Decision, facts: LogGroupFacts, config: Any) -> Decision:
    """The retention decision where an account-level retention policy may hold the group. Under one
    (``retentionPolicyName`` in DescribeLogGroups, API model of botocore 1.44) the effective retention is the policy's and
    PutRetentionPolicy changes nothing: such a group is left, and reported as a conflict when the configuration wants
    another retention. With ``retentionVia`` account-policy the governor's own native policies set it."""
    account_policy = facts.retention_policy_name
    if account_policy is None and decision.action is Action.SET_RETENTION and config.retention_via is Via.ACCOUNT_POLICY:
        return Decision(Action.SKIP, Reason.RETENTION_AWAITS_ACCOUNT_POLICY,
                        f"retentionVia is account-policy: native retention policies set it (in effect 24 hours after "
                        f"`python -m cli apply` writes them), never a group's own; meanwhile: {decision.detail}")
    if account_policy is None or decision.action in (Action.SKIP, Action.CONFLICT) or decision.reason is Reason.RETENTION_UNMANAGED:
        return decision
    effective = f"{facts.retention_days} days" if facts.retention_days is not None else "never expire"
    if decision.action is Action.SET_RETENTION:
        return Decision(Action.CONFLICT, Reason.ACCOUNT_RETENTION_POLICY_DIFFERS,
                        f"account-level retention policy {account_policy!r} sets {effective}; the configuration wants "
                        f"{decision.retention_days} days ({decision.reason.value}), which a group's own retention cannot change")
    return Decision(Action.LEAVE, Reason.RETENTION_BY_ACCOUNT_POLICY,
                    f"account-level retention policy {account_policy!r} sets {effective}, as the configuration accepts")


def apply(logs: Any, name: str, decision: Decision) -> None:
    if decision.retention_days is None:  # a writing decision always carries what to write; anything else is a bug
        raise AssertionError(f"decision {decision} has nothing to apply")
    logs.put_retention_policy(name, decision.retention_days)


CONTROL = Control(
    doc=('`{"days": <one of CloudWatch Logs\' values, or null>, "mode": "minimum" \\| "exact"}`',
         'as `defaultRetentionDays`/`retentionMode` do today; `null` leaves retention alone; without `mode`, `retentionMode` applies (clamp included); see below'),
    mode=True,
    name="retention", aspect="retention", summary="how long a group keeps its events", rule_only=False,
    reads=("logs:DescribeLogGroups",), writes=("logs:PutRetentionPolicy",),
    adapter=(("LogsGateway", "describe_log_group"), ("LogsGateway", "describe_log_groups"), ("LogsGateway", "put_retention_policy")),
    undone_by=(Undo("PutRetentionPolicy", source="CloudTrail record of the API call"),
               Undo("DeleteRetentionPolicy", source="CloudTrail record of the API call")),
    metrics=(names.RETENTION_SET,), applies=(Action.SET_RETENTION.value,), apply=apply,
    native="retentionVia account-policy (native retention policies through PutAccountPolicy: docs/account-policies.md)",
)

"""Deletion protection: a group that cannot be deleted until it is turned off (PutLogGroupDeletionProtection)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import metric_names as names
from ..decision import Action, Decision, LogGroupFacts, Reason
from .base import Control, Undo

if TYPE_CHECKING:
    from ..rules import Resolved

NAME = DELETION_PROTECTION = "deletionProtection"


def decide(resolved: Resolved, facts: LogGroupFacts, *, partition: str = "aws") -> Decision:
    """Deletion protection (#21), as the group's deletionProtection rule says. The governor turns it on, never off:
    a rule of false only stops a later rule's true, and protection someone else set stays."""
    source = resolved.rule.source if resolved.rule else "no rule"
    if not resolved.value:
        if facts.deletion_protection and resolved.rule is not None and DELETION_PROTECTION in resolved.rule.exact:
            return Decision(Action.UNPROTECT, Reason.PROTECTION_NOT_WANTED, f"{source} says false, exact: turn it off")
        state = "on, as someone set it; kept (the rule is not exact)" if facts.deletion_protection else "off"
        return Decision(Action.LEAVE, Reason.PROTECTION_NOT_REQUIRED, f"{source} does not require it; {state}")
    if facts.deletion_protection:
        return Decision(Action.LEAVE, Reason.PROTECTION_ON, f"deletion protection is on, as {source} requires")
    return Decision(Action.PROTECT, Reason.PROTECTION_OFF, f"{source} requires deletion protection: turn it on")


def apply(logs: Any, name: str, decision: Decision) -> None:
    logs.set_deletion_protection(name, enabled=decision.action is Action.PROTECT)


CONTROL = Control(
    doc=('`true` \\| `false`',
         '`true`: `PutLogGroupDeletionProtection` turns it on and keeps it on; `false`: not required (never turned off); see below'),
    name=NAME, unmanaged=Reason.PROTECTION_UNMANAGED.value, applies=(Action.PROTECT.value, Action.UNPROTECT.value),
    decide=decide, apply=apply, handler=('ProtectLogGroup', 'govern', 'turns deletion protection on where the governance rules require it'), aspect="protection", summary="deletion protection on the group",
    reads=("logs:DescribeLogGroups",), writes=("logs:PutLogGroupDeletionProtection",),
    adapter=(("LogsGateway", "describe_log_group"), ("LogsGateway", "set_deletion_protection")),
    undone_by=(Undo("PutLogGroupDeletionProtection", ("logGroupIdentifier",), source="*assumed* (localaws/FIDELITY.md E6)"),),
    metrics=(names.DELETION_PROTECTION_SET, names.DELETION_PROTECTION_REMOVED),
)

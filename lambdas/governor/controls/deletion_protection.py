"""Deletion protection: a group that cannot be deleted until it is turned off (PutLogGroupDeletionProtection). It plugs in
whole (#28): its rule key, fact, actions, reasons, metrics, calls and IAM are here, and nothing outside this module names it."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

from shared.config import ConfigError

from ..decision import Action, Decision, LogGroupFacts
from .base import Control, Undo, WriteAction

if TYPE_CHECKING:
    from ..rules import Resolved

NAME = DELETION_PROTECTION = "deletionProtection"
DELETION_PROTECTION_SET = "DeletionProtectionSet"
#: Turned deletion protection off, as an exact rule of false says.
DELETION_PROTECTION_REMOVED = "DeletionProtectionRemoved"


class ProtectionAction(WriteAction):
    #: PutLogGroupDeletionProtection on.
    PROTECT = "protect"
    #: PutLogGroupDeletionProtection off: only where the deciding rule says false and exact.
    UNPROTECT = "unprotect"


class ProtectionReason(str, Enum):
    OFF = "deletion-protection-off"
    ON = "deletion-protection-on"
    UNMANAGED = "deletion-protection-unmanaged"
    #: A rule says false: protection is not required, and one someone else turned on stays.
    NOT_REQUIRED = "deletion-protection-not-required"
    #: A rule says false, exact: protection someone else turned on goes.
    NOT_WANTED = "deletion-protection-not-wanted"


def parse(raw: Any, where: str) -> bool | None:
    if raw is not None and not isinstance(raw, bool):
        raise ConfigError(f"{where}: expected true or false; got {raw!r}")
    return raw


def look_up(logs: Any, info: Any) -> bool:
    """``deletionProtectionEnabled`` as DescribeLogGroups gave it (the pinned model; absent: off): no call of its own."""
    return bool(info.described.get("deletionProtectionEnabled", False))


def decide(resolved: Resolved, facts: LogGroupFacts, *, partition: str = "aws") -> Decision:
    """Deletion protection (#21), as the group's deletionProtection rule says. The governor turns it on, never off:
    a rule of false only stops a later rule's true, and protection someone else set stays."""
    source = resolved.rule.source if resolved.rule else "no rule"
    protected = bool(facts.fact(NAME))
    if not resolved.value:
        if protected and resolved.rule is not None and DELETION_PROTECTION in resolved.rule.exact:
            return Decision(ProtectionAction.UNPROTECT, ProtectionReason.NOT_WANTED, f"{source} says false, exact: turn it off")  # type: ignore[arg-type]
        state = "on, as someone set it; kept (the rule is not exact)" if protected else "off"
        return Decision(Action.LEAVE, ProtectionReason.NOT_REQUIRED, f"{source} does not require it; {state}")  # type: ignore[arg-type]
    if protected:
        return Decision(Action.LEAVE, ProtectionReason.ON, f"deletion protection is on, as {source} requires")  # type: ignore[arg-type]
    return Decision(ProtectionAction.PROTECT, ProtectionReason.OFF, f"{source} requires deletion protection: turn it on")  # type: ignore[arg-type]


def apply(logs: Any, name: str, decision: Decision) -> None:
    """PutLogGroupDeletionProtection (the pinned model: ``logGroupIdentifier``, ``deletionProtectionEnabled``)."""
    logs.group_call("PutLogGroupDeletionProtection", "put_log_group_deletion_protection", name, logGroupIdentifier=name,
                    deletionProtectionEnabled=decision.action is ProtectionAction.PROTECT)


CONTROL = Control(
    doc=('`true` \\| `false`',
         '`true`: `PutLogGroupDeletionProtection` turns it on and keeps it on; `false`: not required (never turned off); see below'),
    name=NAME, unmanaged=ProtectionReason.UNMANAGED.value, applies=(ProtectionAction.PROTECT.value, ProtectionAction.UNPROTECT.value),
    decide=decide, apply=apply, handler=("ProtectLogGroup", "govern", "turns deletion protection on where the governance rules require it"),
    aspect="protection", summary="deletion protection on the group",
    reads=("logs:DescribeLogGroups",), writes=("logs:PutLogGroupDeletionProtection",),
    adapter=(("LogsGateway", "describe_log_group"),),
    undone_by=(Undo("PutLogGroupDeletionProtection", ("logGroupIdentifier",), source="*assumed* (localaws/FIDELITY.md E6)"),),
    metrics=(DELETION_PROTECTION_SET, DELETION_PROTECTION_REMOVED),
    parse=parse, rule_schema={"type": "boolean"}, to_json=lambda value: value, look_up=look_up,
    own_actions=ProtectionAction, own_reasons=ProtectionReason, exact=True,
    metric_by_action={ProtectionAction.PROTECT.value: DELETION_PROTECTION_SET, ProtectionAction.UNPROTECT.value: DELETION_PROTECTION_REMOVED},
    calls=("DescribeLogGroups", "ListTagsForResource", "PutLogGroupDeletionProtection"),
    # Not in AWS-FACTS' table: *assumed* like the other per-group writes (apiQuotasTps sets the account's).
    quotas_tps={"PutLogGroupDeletionProtection": 5.0},
    example=True,
)

"""What a control declares (#28): the shape of one module per control. Plain data: the events' parser, the stack, the
docs and the tests read it, so a control's IAM, the calls that undo it and its conflicts are written once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Undo:
    """A CloudTrail call (``eventName``) that can undo the control, and the request fields that name the group in it."""

    event_name: str
    group_fields: tuple[str, ...] = ("logGroupName",)
    #: Where the record's shape comes from: a page, or *assumed* (localaws/FIDELITY.md's row).
    source: str = ""


@dataclass(frozen=True)
class ConflictFix:
    """A reason the control leaves a group as it is and alarms (the Conflicts alarm): what it means and the fix."""

    reason: str
    cause: str
    fix: str


@dataclass(frozen=True)
class Control:
    #: The name a rule sets it by (governor.rules.CONTROLS).
    name: str
    #: The aspect its decisions and handler carry (governor.service.Aspect's value; its queue, rule and function).
    aspect: str
    #: What it does, for the docs.
    summary: str
    #: IAM actions on the log groups to look a group up, and to apply a decision.
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    #: The adapter's methods (class name, method name) its look-ups and apply call: a test runs each against a recording
    #: client and fails when one makes a call whose action is not declared above (or in ``other_actions``).
    adapter: tuple[tuple[str, str], ...]
    #: Actions on other resources than log groups (a KMS key's policy), with no resource pattern of their own here.
    other_actions: tuple[str, ...] = ()
    #: The calls that undo it, which its event rule sends to its handler (drift).
    undone_by: tuple[Undo, ...] = ()
    #: Metrics its actions publish (governor.metric_names), besides Compliant, Skipped and Conflicts.
    metrics: tuple[str, ...] = ()
    conflicts: tuple[ConflictFix, ...] = ()
    #: Its account-level form, if any (the key that switches to it).
    native: str | None = None
    #: Only an explicit rule deploys its handler (retention and shipping have keys of their own).
    rule_only: bool = field(default=True)
    #: A control only rules set: the reason a group no rule names it for is left with, its decision once the policy's scope
    #: and the deciding rule are known (``decide(resolved, facts, partition=)``, pure), the actions it applies and how
    #: (``apply(logs, name, decision)``, through the adapter). Retention and shipping are decided by the policy core still.
    unmanaged: str | None = None
    decide: Callable[..., Any] | None = field(default=None, compare=False)
    applies: tuple[str, ...] = ()
    apply: Callable[..., Any] | None = field(default=None, compare=False)
    #: Its event handler, when only rules set it (the stack deploys one per control a rule uses): the function's construct
    #: id, its entry in governor.handlers.create_log_group, and what it does.
    handler: tuple[str, str, str] | None = None

    @property
    def actions(self) -> tuple[str, ...]:
        return (*self.reads, *self.writes, *self.other_actions)

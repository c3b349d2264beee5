"""What a control declares (#28): the shape of one module per control. Plain data: the events' parser, the stack, the
docs and the tests read it, so a control's IAM, the calls that undo it and its conflicts are written once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any


class WriteAction(str, Enum):
    """A control's own actions: each writes (LEAVE, SKIP and CONFLICT are the core's, governor.decision.Action)."""

    @property
    def writes(self) -> bool:
        return True


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
class Grant:
    """An IAM grant a control needs beyond the log groups, only when a rule's value asks for it (``when(value)``). The stack
    makes the statement and, for a resource IAM cannot narrow, cdk-nag's acknowledgement with ``reason``."""

    actions: tuple[str, ...]
    #: ``account-logs``: the account's and region's CloudWatch Logs resources (``arn:...:logs:REGION:ACCOUNT:*``); ``*``.
    resource: str
    when: Callable[[Any], bool] = field(compare=False)
    reason: str = ""


@dataclass(frozen=True)
class NativeForm:
    """A control's account-level form (PutAccountPolicy): ``compile(rules)`` answers the policies (``policyName``,
    ``policyDocument``, optionally ``selectionCriteria``) the rules amount to, or raises ConfigError saying why they cannot
    be one; ``covers(document, value)`` whether a policy in place already says what the value asks."""

    policy_type: str
    #: Whether a policy of the type (by its name) is the governor's: another is someone else's, never replaced.
    ours: Callable[[str], bool] = field(compare=False)
    compile: Callable[[Any], list[dict[str, Any]]] = field(compare=False)
    covers: Callable[[str | None, dict[str, Any]], bool] = field(compare=False)
    #: What it says, for the plan's line (``describe(policy)``).
    describe: Callable[[dict[str, Any]], str] = field(compare=False)
    #: How long it takes to apply (the docs and the plan's line).
    takes_effect: str = ""
    #: Whether ``apply`` deletes the governor's policies of the type the rules no longer ask for (field indexes: a rule
    #: removed), or keeps them (data protection: the governor deletes no data protection policy; masking stops only by hand).
    deletes_stale: bool = True


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

    # A control that plugs in whole (#28's proof, field indexes) declares the rest too, and nothing outside its module
    # names it: the rules' parser, the config schema, the facts, the handler, the pacing, the metrics and the CLI read these.
    #: Its rule key: the parser (``parse(raw, where)``: the value, or ConfigError naming ``where``), the JSON schema piece
    #: and the value back as the rule's JSON (``plan --explain``, ``rules``).
    parse: Callable[[Any, str], Any] | None = field(default=None, compare=False)
    rule_schema: Mapping[str, Any] | None = None
    to_json: Callable[[Any], Any] | None = field(default=None, compare=False)
    #: What the control reads of a group beyond DescribeLogGroups (``look_up(logs, info)``, lazily, once a decision asks
    #: ``facts.fact(name)``).
    look_up: Callable[[Any, Any], Any] | None = field(default=None, compare=False)
    #: Its own actions (a str Enum whose members say ``writes``) and reasons, beside the core's LEAVE, SKIP and CONFLICT.
    own_actions: type | None = None
    own_reasons: type | None = None
    #: The metric each of its actions counts (action value -> metric name).
    metric_by_action: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: The reason a write AWS refuses as the configuration's mistake (InvalidParameterException) is a conflict with.
    refused: str | None = None
    #: The API calls its handler makes (its share of the event handlers' quota), and the quotas (calls a second) of those
    #: the configuration's apiQuotas do not list yet.
    calls: tuple[str, ...] = ()
    quotas_tps: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    #: Its row of docs/rules.md's table of controls (``make docs``): the value a rule gives it, and what the governor does.
    doc: tuple[str, str] = ("", "")
    #: Whether a rule may name it in ``exact`` (to weaken or replace what someone else set), or says it in a ``mode`` of its own.
    exact: bool = False
    mode: bool = False
    #: A rule's value that shows it (the docs' example and the cost model's every-control stack).
    example: Any = None
    #: Its account-level form (``native_form.compile(config)`` and friends: governor.controls.base.NativeForm).
    native_form: NativeForm | None = None
    #: Why a rule's value cannot be used by the functions yet (``unresolved(value)``: a KMS key the stack is to create), or None.
    unresolved: Callable[[Any], str | None] | None = field(default=None, compare=False)
    #: A write's precondition, read just before it (``before_write(keys, info, decision)``, ``keys`` the KMS gateway: a
    #: key's policy): None lets it through, else why not (a conflict with the ``refused`` reason, nothing written).
    before_write: Callable[[Any, Any, Any], str | None] | None = field(default=None, compare=False)
    #: What it needs beyond the log groups, when a rule asks for it (a data protection policy's audit log delivery).
    grants: tuple[Grant, ...] = ()
    #: The reason a group is left with while the account-level form is chosen (its policies are the CLI's to write).
    native_reason: str | None = None

    #: The configuration key that chooses per-group or the account-level form (``<name>Via``), when it has one.
    @property
    def via_key(self) -> str | None:
        return f"{self.name}Via" if self.native_form is not None else None

    @property
    def plugged(self) -> bool:
        """Whether it plugs in whole (the rules' parser and the facts go through the registry)."""
        return self.parse is not None

    @property
    def actions(self) -> tuple[str, ...]:
        return (*self.reads, *self.writes, *self.other_actions)

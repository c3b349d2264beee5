"""What a decision is made of (#28): the facts a decision reads, the actions and reasons it may give, the decision
itself. Below the policy core and the controls' modules, which both speak in them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol


@dataclass(frozen=True)
class SubscriptionFilter:
    name: str
    destination_arn: str
    filter_pattern: str = ""
    role_arn: str | None = None


class LogGroupFacts(Protocol):
    """What the policy needs to know about a log group (``tags`` and ``filters`` may be lazy)."""

    @property
    def name(self) -> str: ...
    @property
    def log_group_class(self) -> str: ...
    @property
    def retention_days(self) -> int | None: ...
    @property
    def tags(self) -> Mapping[str, str]: ...
    @property
    def filters(self) -> Sequence[SubscriptionFilter]: ...
    @property
    def orphaned(self) -> bool | None:
        """True for a ``/aws/lambda/<name>`` group whose function no longer exists; None when unknown."""
    @property
    def retention_policy_name(self) -> str | None:
        """The account-level retention policy that sets this group's retention (``retention_days`` is
        then the policy's), None when the group's own retention applies."""
    def fact(self, control: str) -> Any:
        """What a control that plugs in whole reads of the group (its module's ``look_up``), looked up on first use; None:
        nothing known, which its decide reads as nothing set."""


@dataclass(frozen=True)
class KnownFacts:
    """Facts already in hand (tests, the demo, callers that looked everything up)."""

    name: str
    log_group_class: str = "STANDARD"
    retention_days: int | None = None
    tags: Mapping[str, str] = None  # type: ignore[assignment]
    filters: Sequence[SubscriptionFilter] = ()
    orphaned: bool | None = None
    retention_policy_name: str | None = None
    #: What each control that plugs in whole reads of the group, by the control's name.
    facts: Mapping[str, Any] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.tags is None:
            object.__setattr__(self, "tags", {})
        if self.facts is None:
            object.__setattr__(self, "facts", {})

    def fact(self, control: str) -> Any:
        """None: nothing known (the control's decide reads it as nothing set)."""
        return self.facts.get(control)


class Action(str, Enum):
    SUBSCRIBE = "subscribe"
    UPDATE_FILTER = "update-filter"
    #: Remove the governor's own filter (by name) from a group that opted out.
    REMOVE_FILTER = "remove-filter"
    SET_RETENTION = "set-retention"
    #: The account's subscription filter policy was written (its NOT IN list changed); never a policy
    #: decision: the keeper of that policy (``governor.subscription_policy``) reports it.
    UPDATE_ACCOUNT_POLICY = "update-account-policy"
    LEAVE = "leave"
    SKIP = "skip"
    CONFLICT = "conflict"

    @property
    def writes(self) -> bool:
        return self in (Action.SUBSCRIBE, Action.UPDATE_FILTER, Action.REMOVE_FILTER, Action.SET_RETENTION)


class Reason(str, Enum):
    # why a group is left out altogether
    EXCLUDED_PREFIX = "excluded-prefix"
    EXCLUDED_PATTERN = "excluded-pattern"
    EXCLUDED_TAG = "excluded-tag"
    SHIPPING_PATH = "shipping-path"
    UNSUPPORTED_CLASS = "unsupported-class"
    FIXED_RETENTION_CLASS = "fixed-retention-class"
    # subscription
    NOT_SUBSCRIBED = "not-subscribed"
    FILTER_DIFFERS = "filter-differs"
    FILTER_COMPLIANT = "filter-compliant"
    SHIPPED_BY_OTHER_FILTER = "shipped-by-other-filter"
    NO_FREE_SLOT = "no-free-slot"
    #: CloudWatch Logs cannot assume the sender role (governor:destinationRoleArn) an organization-wide destination needs.
    SENDER_ROLE_NOT_ASSUMABLE = "sender-role-not-assumable"
    #: An opt-out tag was added to a subscribed group: the governor's own filter goes.
    OPTED_OUT = "opted-out"
    #: A rule turns shipping off for the group (its own filter, if any, goes).
    SHIPPING_OFF = "shipping-off-by-rule"
    #: Another principal keeps changing the group back: the governor stops touching it for a while.
    DRIFT_FIGHT = "drift-fight"
    # retention
    RETENTION_UNSET = "retention-unset"
    RETENTION_TOO_SHORT = "retention-too-short"
    RETENTION_TOO_LONG = "retention-too-long"
    KEEPS_LONGER_RETENTION = "keeps-longer-retention"
    RETENTION_COMPLIANT = "retention-compliant"
    RETENTION_WITHIN_BOUNDS = "retention-within-bounds"
    NEVER_EXPIRE_ALLOWED = "never-expire-allowed"
    RETENTION_UNMANAGED = "retention-unmanaged"
    #: A /aws/lambda/<name> group whose function no longer exists.
    ORPHANED = "orphaned-function"
    #: An account-level retention policy sets the group's retention; a group's own changes nothing.
    RETENTION_BY_ACCOUNT_POLICY = "retention-by-account-policy"
    ACCOUNT_RETENTION_POLICY_DIFFERS = "account-retention-policy-differs"
    # native account-level policies (subscriptionMode / retentionVia account-policy)
    SHIPPED_BY_ACCOUNT_POLICY = "shipped-by-account-policy"
    RETENTION_AWAITS_ACCOUNT_POLICY = "retention-awaits-account-policy"
    #: The NOT IN list would pass 25 KB: nothing is written (a shorter list would ship excluded groups).
    SELECTION_TOO_LARGE = "selection-too-large"
    #: Another subscription filter policy holds the account's one slot.
    FOREIGN_ACCOUNT_POLICY = "foreign-account-policy"
    #: No policy yet: the first finished run over every group writes it, with its full NOT IN list.
    ACCOUNT_POLICY_PENDING = "account-policy-pending"
    # uninstall (removeFiltersOnDelete)
    UNINSTALL = "uninstall"
    NO_OWN_FILTER = "no-own-filter"


#: Reasons that put a group outside the governor's scope (coverage counts them as excluded).
EXCLUSION_REASONS = frozenset({Reason.EXCLUDED_PREFIX, Reason.EXCLUDED_PATTERN, Reason.EXCLUDED_TAG, Reason.OPTED_OUT,
                               Reason.SHIPPING_PATH, Reason.SHIPPING_OFF})


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: Reason
    detail: str
    #: The filter to put (subscribe / update-filter).
    subscription_filter: SubscriptionFilter | None = None
    #: The retention to set (set-retention).
    retention_days: int | None = None
    #: What a control that plugs in whole writes (its module's apply reads it).
    payload: Any = None

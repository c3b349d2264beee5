"""The policy core: given what a log group looks like, decide what should change and why.

Pure code: no boto3, no events. Every entry point (the two event handlers, the backfill, the CLI and
the demo) asks a ``Policy``; nothing else decides. Facts are read in order of cost, so a caller may
hand in facts whose ``tags`` and ``filters`` are looked up on first access: a group skipped by its
name or class costs no further API call.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from .config import ConfigError, Destination, PolicyConfig, RetentionMode, Via
from .rules import CONTROLS, CREATE_KEY, DATA_PROTECTION, DELETION_PROTECTION, KMS_KEY, RETENTION, SHIPPING, Resolved, resolve

#: Log group classes that accept subscription filters. INFREQUENT_ACCESS and DELIVERY do not; an
#: unknown (newer) class is skipped with a reason rather than risking a failing call.
SUBSCRIBABLE_CLASSES = frozenset({"STANDARD"})
#: ESSENTIALS, decided explicitly (issue #9). Source: botocore 1.44.8's CloudWatch Logs model
#: (data/logs/2014-03-28/service-2.json): LogGroup.logGroupClass says "The Standard log class supports
#: all CloudWatch Logs features" and "The Essentials log class supports a subset", and
#: DescribeLogGroups.logGroupClass that asking for "either INFREQUENT_ACCESS or ESSENTIALS" returns
#: both: AWS files Essentials with Infrequent Access, which has no subscription filters. So ESSENTIALS
#: is not subscribed (a per-group filter is not attempted; an account-level filter policy leaves the
#: class out by itself) and gets its retention like every class but DELIVERY. AWS's "Log classes" page
#: (docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CloudWatch_Logs_Log_Classes.html) holds the table.
REDUCED_FEATURE_CLASSES = frozenset({"INFREQUENT_ACCESS", "ESSENTIALS"})
#: DELIVERY groups keep events for one day and their retention cannot be changed.
FIXED_RETENTION_CLASSES = frozenset({"DELIVERY"})
#: Where Lambda writes a function's logs unless its LoggingConfig says otherwise.
LAMBDA_LOG_GROUP_PREFIX = "/aws/lambda/"
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


#: A function's group younger than this is never judged orphaned: deployment tools often create the
#: log group first (to set its retention) and the function moments later.
ORPHAN_MIN_AGE_S = 24 * 3600


def orphan_candidate(log_group: str, created_ms: int | None, now_s: float) -> str | None:
    """The function to look for, when a missing one would make this group an orphan; None for other
    groups, and for groups too young (or of unknown age) to judge."""
    function = lambda_function_name(log_group)
    if function is None or created_ms is None or now_s - created_ms / 1000 < ORPHAN_MIN_AGE_S:
        return None
    return function


def lambda_function_name(log_group: str) -> str | None:
    """The function whose default log group this is; None for other groups, including Lambda@Edge
    replicas (``/aws/lambda/us-east-1.<name>``), whose function lives in another region."""
    name = log_group.removeprefix(LAMBDA_LOG_GROUP_PREFIX)
    return name if name != log_group and _FUNCTION_NAME.fullmatch(name) else None


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
    @property
    def deletion_protection(self) -> bool:
        """``deletionProtectionEnabled`` (DescribeLogGroups, the pinned model)."""
    @property
    def kms_key_id(self) -> str | None:
        """``kmsKeyId``: the KMS key associated with the group (None: CloudWatch Logs' own encryption)."""
    @property
    def data_protection_document(self) -> str | None:
        """The group's data protection policy (GetDataProtectionPolicy, looked up only when DescribeLogGroups' ``dataProtectionStatus``
        says it has one); None: it has none."""


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
    deletion_protection: bool = False
    kms_key_id: str | None = None
    data_protection_document: str | None = None

    def __post_init__(self) -> None:
        if self.tags is None:
            object.__setattr__(self, "tags", {})


class Action(str, Enum):
    SUBSCRIBE = "subscribe"
    UPDATE_FILTER = "update-filter"
    #: Remove the governor's own filter (by name) from a group that opted out.
    REMOVE_FILTER = "remove-filter"
    SET_RETENTION = "set-retention"
    #: PutLogGroupDeletionProtection on.
    PROTECT = "protect"
    #: PutLogGroupDeletionProtection off: only where the deciding rule says false and exact.
    UNPROTECT = "unprotect"
    #: AssociateKmsKey with the rule's key (never DisassociateKmsKey: the governor takes no key off).
    ASSOCIATE_KMS_KEY = "associate-kms-key"
    #: PutDataProtectionPolicy (never DeleteDataProtectionPolicy: the governor takes no policy off).
    PUT_DATA_PROTECTION = "put-data-protection-policy"
    #: The account's subscription filter policy was written (its NOT IN list changed); never a policy
    #: decision: the keeper of that policy (``governor.subscription_policy``) reports it.
    UPDATE_ACCOUNT_POLICY = "update-account-policy"
    LEAVE = "leave"
    SKIP = "skip"
    CONFLICT = "conflict"

    @property
    def writes(self) -> bool:
        return self in (Action.SUBSCRIBE, Action.UPDATE_FILTER, Action.REMOVE_FILTER, Action.SET_RETENTION, Action.PROTECT,
                        Action.ASSOCIATE_KMS_KEY, Action.PUT_DATA_PROTECTION, Action.UNPROTECT)


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
    # deletion protection (rules)
    PROTECTION_OFF = "deletion-protection-off"
    PROTECTION_ON = "deletion-protection-on"
    PROTECTION_UNMANAGED = "deletion-protection-unmanaged"
    #: A rule says false: protection is not required, and one someone else turned on stays.
    PROTECTION_NOT_REQUIRED = "deletion-protection-not-required"
    #: A rule says false, exact: protection someone else turned on goes.
    PROTECTION_NOT_WANTED = "deletion-protection-not-wanted"
    # a KMS key per group (rules)
    KMS_KEY_UNMANAGED = "kms-key-unmanaged"
    KMS_KEY_MISSING = "kms-key-missing"
    KMS_KEY_ASSOCIATED = "kms-key-associated"
    #: Another key is associated: the governor replaces no key.
    OTHER_KMS_KEY = "other-kms-key"
    #: The key's policy does not let CloudWatch Logs use it for the group, or AssociateKmsKey refused it: fix the key.
    KMS_KEY_UNUSABLE = "kms-key-unusable"
    # data protection (rules)
    DATA_PROTECTION_UNMANAGED = "data-protection-unmanaged"
    DATA_PROTECTION_MISSING = "data-protection-missing"
    #: The group's policy masks fewer identifiers than the rule asks (minimum: they are added, the others kept).
    DATA_PROTECTION_NARROWER = "data-protection-narrower"
    #: exact: the group's policy masks others too; replaced by the rule's.
    DATA_PROTECTION_DIFFERS = "data-protection-differs"
    DATA_PROTECTION_COMPLIANT = "data-protection-compliant"
    #: PutDataProtectionPolicy refused the rule's policy (its audit log group missing, say): fix the rule.
    DATA_PROTECTION_REFUSED = "data-protection-refused"
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
    #: The key to associate (associate-kms-key).
    kms_key_arn: str | None = None
    #: The data protection policy to put (put-data-protection-policy).
    data_protection_document: str | None = None


#: Each control a rule sets (governor.rules.CONTROLS) and the Policy method that decides it: every entry point that goes
#: over the controls (``plan --explain``, the handlers' aspects) derives them from here, and a control added to CONTROLS
#: without its decision fails at import rather than being left out of one of them (#26).
DECIDED_BY: Mapping[str, str] = {RETENTION: "retention", SHIPPING: "subscription", DELETION_PROTECTION: "protection",
                                 KMS_KEY: "encryption", DATA_PROTECTION: "data_protection"}
if tuple(DECIDED_BY) != CONTROLS:
    raise AssertionError(f"governor.policy.DECIDED_BY must name the decision of every control, in order: {CONTROLS}")


class Policy:
    def __init__(self, config: PolicyConfig, *, protected_log_groups: Iterable[str] = ()) -> None:
        """``protected_log_groups``: names that carry the shipping path's own logs, learnt at deploy or run
        time (the governor's functions when they are the destination, a destination function's custom
        log group); added to the guard's names from the configuration."""
        if config.destination is None:
            raise ConfigError("destinationArn: the policy needs a destination; set it, or deploy the stack's built-in one")
        self.config = config
        names = {*config.shipping_path_log_groups, *protected_log_groups}
        if config.destination.default_log_group:
            names.add(config.destination.default_log_group)
        self._protected_names = frozenset(n for n in names if not n.endswith("*"))
        self._protected_prefixes = tuple(sorted(n[:-1] for n in names if n.endswith("*")))
        #: The configured rules, then the flat keys' (governor.rules): per control, the first that matches decides.
        self.rules = config.all_rules
        self._partition = config.destination.partition
        unresolved = [r.source for r in self.rules if r.kms_key_arn == CREATE_KEY]
        if unresolved:
            raise ConfigError(f"{unresolved[0]}.kmsKeyArn: \"create\" names the key the deployed stack created; pass --stack-name "
                              "(its RuleKeyArns output fills it in), or the key's ARN")
        self.desired_filter = SubscriptionFilter(
            name=config.filter_name,
            destination_arn=config.destination.arn,
            filter_pattern=config.filter_pattern,
            role_arn=config.destination.role_arn,
        )

    @property
    def guarded_names(self) -> frozenset[str]:
        """The guard's exact names (prefix entries match only groups that exist)."""
        return self._protected_names

    @property
    def needs_tags(self) -> bool:
        return bool(self.config.tag_keys)

    def decide(self, facts: LogGroupFacts, control: str) -> Decision:
        """The decision for one control (``governor.rules.CONTROLS``), as ``DECIDED_BY`` maps it."""
        return getattr(self, DECIDED_BY[control])(facts)

    def resolve(self, facts: LogGroupFacts, control: str, *, explain: bool = False) -> Resolved:
        """Which rule decides ``control`` for the group (governor.rules: per control, first match)."""
        return resolve(self.rules, facts, control, explain=explain)

    def desired_filter_for(self, facts: LogGroupFacts) -> SubscriptionFilter | None:
        """The governor's filter for the group as its shipping rule says (None: a rule turns shipping off)."""
        shipping = self.resolve(facts, SHIPPING).value
        if shipping is None or not shipping.enabled:
            return None
        if shipping.destination is not None:  # the rule's own destination (#21)
            return SubscriptionFilter(self.desired_filter.name, shipping.destination.arn, shipping.filter_pattern, shipping.destination.role_arn)
        if shipping.filter_pattern == self.desired_filter.filter_pattern:
            return self.desired_filter
        return SubscriptionFilter(self.desired_filter.name, self.desired_filter.destination_arn, shipping.filter_pattern,
                                  self.desired_filter.role_arn)

    @property
    def destinations(self) -> tuple[Destination, ...]:
        """Every destination a group may ship to: destinationArn, then the rules' own (the stack grants each)."""
        found = [self.config.destination]
        for rule in self.rules:
            if rule.shipping is not None and rule.shipping.destination is not None and rule.shipping.destination not in found:
                found.append(rule.shipping.destination)
        return tuple(d for d in found if d is not None)

    # --- the guard -------------------------------------------------------------------------------
    def is_shipping_path(self, name: str) -> bool:
        """True for a log group whose events pass through the destination: subscribing it would loop."""
        return name in self._protected_names or name.startswith(self._protected_prefixes)

    # --- decisions -------------------------------------------------------------------------------
    def replays(self, group_created_ms: int | None, filter_created_ms: int) -> bool:
        """Whether the governor's new filter on a group created at ``group_created_ms`` is followed by the replay of
        what the group held before it (#20): a group created within ``replayWindowMinutes`` of the filter has a gap
        worth closing; an older one (found by a backfill) holds history, which is not the subscription's to send."""
        window = self.config.replay_window_minutes
        if window is None or group_created_ms is None:
            return False
        return filter_created_ms - group_created_ms <= window * 60_000

    def subscription(self, facts: LogGroupFacts) -> Decision:
        if self.config.subscription_mode is Via.ACCOUNT_POLICY:
            return self._account_policy_subscription(facts)
        if self.is_shipping_path(facts.name):
            ours = next((f for f in facts.filters if f.name == self.desired_filter.name), None)
            if ours is not None:  # subscribed before it was on the shipping path (a destination re-pointed): a loop
                return Decision(Action.REMOVE_FILTER, Reason.SHIPPING_PATH,
                                f"carries the shipping path's own logs: remove filter {ours.name!r}, or the destination feeds itself", ours)
            return Decision(Action.SKIP, Reason.SHIPPING_PATH, "carries the shipping path's own logs: subscribing it would loop")
        excluded = self._excluded_by_name(facts.name)
        if excluded:
            return excluded
        if facts.log_group_class not in SUBSCRIBABLE_CLASSES:
            return Decision(Action.SKIP, Reason.UNSUPPORTED_CLASS, _unsubscribable(facts.log_group_class))
        excluded = self._excluded_by_tag(facts)
        if excluded:
            ours = next((f for f in facts.filters if f.name == self.desired_filter.name), None)
            if ours is not None:  # only the governor's own filter, by name: other tools' filters stay
                return Decision(Action.REMOVE_FILTER, Reason.OPTED_OUT, f"{excluded.detail}: remove filter {ours.name!r}", ours)
            return excluded
        desired = self.desired_filter_for(facts)
        if desired is None:
            rule = self.resolve(facts, SHIPPING).rule
            source = rule.source if rule is not None else "no rule"
            ours = next((f for f in facts.filters if f.name == self.desired_filter.name), None)
            if ours is not None:
                return Decision(Action.REMOVE_FILTER, Reason.SHIPPING_OFF, f"{source} turns shipping off: remove filter {ours.name!r}", ours)
            return Decision(Action.SKIP, Reason.SHIPPING_OFF, f"{source} turns shipping off")
        return self._filter_decision(facts.filters, desired)

    def _account_policy_subscription(self, facts: LogGroupFacts) -> Decision:
        """subscriptionMode account-policy: the account's policy ships every group not in its NOT IN
        list, so the only question is whether this group belongs in the list. Filters are never read
        (no DescribeSubscriptionFilters); a class that takes no subscription is left out by AWS itself,
        so it is not listed (the 25 KB budget is for names that need it)."""
        if facts.log_group_class not in SUBSCRIBABLE_CLASSES:
            return Decision(Action.SKIP, Reason.UNSUPPORTED_CLASS, _unsubscribable(facts.log_group_class))
        if self.is_shipping_path(facts.name):
            return Decision(Action.SKIP, Reason.SHIPPING_PATH, "carries the shipping path's own logs: listed in the policy's NOT IN")
        excluded = self._excluded_by_name(facts.name) or self._excluded_by_tag(facts)
        if excluded:
            return excluded
        if self.desired_filter_for(facts) is None:  # parse_policy_config refuses a pattern the account's policy cannot say
            return Decision(Action.SKIP, Reason.SHIPPING_OFF, f"{self.resolve(facts, SHIPPING).rule.source} turns shipping off: listed in NOT IN")
        return Decision(Action.LEAVE, Reason.SHIPPED_BY_ACCOUNT_POLICY, "the account-level subscription filter policy ships it")

    def retention(self, facts: LogGroupFacts) -> Decision:
        """The retention decision. Under an account-level retention policy (``retentionPolicyName`` in
        DescribeLogGroups, API model of botocore 1.44) the effective retention is the policy's and
        PutRetentionPolicy changes nothing: such a group is left, and reported as a conflict when the
        configuration wants another retention."""
        decision = self._retention(facts)
        account_policy = facts.retention_policy_name
        if account_policy is None and decision.action is Action.SET_RETENTION and self.config.retention_via is Via.ACCOUNT_POLICY:
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

    def _retention(self, facts: LogGroupFacts) -> Decision:
        excluded = self._excluded_by_name(facts.name)
        if excluded:
            return excluded
        if facts.log_group_class in FIXED_RETENTION_CLASSES:
            return Decision(Action.SKIP, Reason.FIXED_RETENTION_CLASS, f"class {facts.log_group_class} has a fixed retention")
        orphan_days = self.config.orphan_retention_days
        if orphan_days is not None and lambda_function_name(facts.name) and facts.orphaned:
            return self._excluded_by_tag(facts) or self._orphan_retention(facts.retention_days, orphan_days)
        control = self.resolve(facts, RETENTION).value
        desired = control.days if control is not None else None
        if desired is None:
            return Decision(Action.LEAVE, Reason.RETENTION_UNMANAGED, "no retention configured for this name")
        excluded = self._excluded_by_tag(facts)
        if excluded:
            return excluded
        current = facts.retention_days
        # A rule's own mode decides its groups; without one, retentionMode does, clamp's bounds included (docs/rules.md). Under
        # clamp the days a group without retention gets lie within the bounds (parse_policy_config refuses a rule's outside
        # them), so that what is set here is left the next time: a decision is a fixed point on every path (#26).
        mode = control.mode or self.config.retention_mode
        if mode is RetentionMode.CLAMP:
            low, high = self.config.retention_min_days, self.config.retention_max_days
            desired = min(max(desired, low), high)
        if current is None:
            if self.config.never_expire_compliant:
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

    @staticmethod
    def _orphan_retention(current: int | None, orphan_days: int) -> Decision:
        if current is not None and current <= orphan_days:
            return Decision(Action.LEAVE, Reason.ORPHANED, f"its function no longer exists; keeps {current} days (<= {orphan_days})")
        return Decision(Action.SET_RETENTION, Reason.ORPHANED, f"its function no longer exists; shorten to {orphan_days} days (never deleted)",
                        retention_days=orphan_days)

    def _ruled(self, facts: LogGroupFacts, control: str, unmanaged: Reason) -> Decision | Resolved:
        """A control only rules set: scope first (a name excluded costs no tag read), then the rule that decides it (a
        group no rule names is left as it is), then the exclusion tags. A Decision ends it; else the deciding rule."""
        excluded = self._excluded_by_name(facts.name)
        if excluded:
            return excluded
        resolved = self.resolve(facts, control)
        if resolved.value is None:
            return Decision(Action.LEAVE, unmanaged, f"no rule sets {control}")
        return self._excluded_by_tag(facts) or resolved

    def protection(self, facts: LogGroupFacts) -> Decision:
        """Deletion protection (#21), as the group's deletionProtection rule says. The governor turns it on, never off:
        a rule of false only stops a later rule's true, and protection someone else set stays."""
        resolved = self._ruled(facts, DELETION_PROTECTION, Reason.PROTECTION_UNMANAGED)
        if isinstance(resolved, Decision):
            return resolved
        source = resolved.rule.source if resolved.rule else "no rule"
        if not resolved.value:
            if facts.deletion_protection and resolved.rule is not None and DELETION_PROTECTION in resolved.rule.exact:
                return Decision(Action.UNPROTECT, Reason.PROTECTION_NOT_WANTED, f"{source} says false, exact: turn it off")
            state = "on, as someone set it; kept (the rule is not exact)" if facts.deletion_protection else "off"
            return Decision(Action.LEAVE, Reason.PROTECTION_NOT_REQUIRED, f"{source} does not require it; {state}")
        if facts.deletion_protection:
            return Decision(Action.LEAVE, Reason.PROTECTION_ON, f"deletion protection is on, as {source} requires")
        return Decision(Action.PROTECT, Reason.PROTECTION_OFF, f"{source} requires deletion protection: turn it on")

    def encryption(self, facts: LogGroupFacts) -> Decision:
        """A KMS key per group (#21), as the group's kmsKeyArn rule says. Only what is ingested after the association is
        encrypted with the key (AssociateKmsKey, the model). The governor takes no key off and replaces none."""
        resolved = self._ruled(facts, KMS_KEY, Reason.KMS_KEY_UNMANAGED)
        if isinstance(resolved, Decision):
            return resolved
        source = resolved.rule.source if resolved.rule else "no rule"
        if facts.kms_key_id == resolved.value:
            return Decision(Action.LEAVE, Reason.KMS_KEY_ASSOCIATED, f"encrypted with {resolved.value}, as {source} requires")
        if facts.kms_key_id and resolved.rule is not None and KMS_KEY in resolved.rule.exact:
            return Decision(Action.ASSOCIATE_KMS_KEY, Reason.OTHER_KMS_KEY, f"encrypted with {facts.kms_key_id}; {source} (exact) replaces it "
                            f"with {resolved.value} for what is ingested from now on", kms_key_arn=resolved.value)
        if facts.kms_key_id:
            return Decision(Action.CONFLICT, Reason.OTHER_KMS_KEY, f"encrypted with {facts.kms_key_id}; {source} wants {resolved.value}, "
                                                                   "and the governor replaces no key")
        return Decision(Action.ASSOCIATE_KMS_KEY, Reason.KMS_KEY_MISSING, f"{source} requires {resolved.value}: associate it (what is "
                                                                          "ingested from now on is encrypted with it)", kms_key_arn=resolved.value)

    def data_protection(self, facts: LogGroupFacts) -> Decision:
        """A data protection policy (#21), as the group's dataProtection rule says: audit and mask its identifiers in what is
        ingested from now on (PutDataProtectionPolicy, the model). ``minimum`` never narrows a policy someone else set:
        their identifiers stay and the rule's are added; ``exact`` makes it the rule's. No policy is ever deleted."""
        resolved = self._ruled(facts, DATA_PROTECTION, Reason.DATA_PROTECTION_UNMANAGED)
        if isinstance(resolved, Decision):
            return resolved
        control = resolved.value
        source, wanted = resolved.rule.source if resolved.rule else "no rule", set(control.identifiers)
        if facts.name == control.audit_log_group:
            return Decision(Action.LEAVE, Reason.DATA_PROTECTION_UNMANAGED, f"receives the audit findings of {source}: not audited into itself")
        current, their_audit = masked_identifiers(facts.data_protection_document), audit_log_group(facts.data_protection_document)
        # minimum keeps an audit destination someone else chose; the rule's goes where there is none (or with exact).
        audit = control.audit_log_group if control.exact or their_audit is None else their_audit

        def put(identifiers: set[str]) -> str:
            return data_protection_document(sorted(identifiers), facts.name, self._partition, audit_log_group=audit)
        if current is None:
            return Decision(Action.PUT_DATA_PROTECTION, Reason.DATA_PROTECTION_MISSING, f"{source}: audit and mask {', '.join(sorted(wanted))}",
                            data_protection_document=put(wanted))
        if (current == wanted or (current >= wanted and not control.exact)) and audit == their_audit:
            return Decision(Action.LEAVE, Reason.DATA_PROTECTION_COMPLIANT, f"masks {', '.join(sorted(current))}, as {source} requires")
        if control.exact:
            return Decision(Action.PUT_DATA_PROTECTION, Reason.DATA_PROTECTION_DIFFERS, f"{source} (exact): mask {', '.join(sorted(wanted))} "
                            f"instead of {', '.join(sorted(current))}", data_protection_document=put(wanted))
        # Their document widened in place (#26): whatever else it says (custom identifiers, S3 and Firehose findings) stays.
        widened = widened_data_protection_document(facts.data_protection_document, wanted, self._partition,
                                                   audit_log_group=audit if audit != their_audit else None)
        return Decision(Action.PUT_DATA_PROTECTION, Reason.DATA_PROTECTION_NARROWER, f"{source}: add {', '.join(sorted(wanted - current)) or 'nothing'} "
                        f"to the identifiers masked ({', '.join(sorted(current))} stay)"
                        + (f"; audit findings to {audit}" if audit != their_audit else ""), data_protection_document=widened or put(current | wanted))

    def removal(self, facts: LogGroupFacts) -> Decision:
        """Uninstalling: the governor's own filter (by name) goes; every other filter stays."""
        if facts.log_group_class not in SUBSCRIBABLE_CLASSES:
            return Decision(Action.LEAVE, Reason.NO_OWN_FILTER, f"class {facts.log_group_class} has no subscription filters")
        ours = next((f for f in facts.filters if f.name == self.desired_filter.name), None)
        if ours is None:
            return Decision(Action.LEAVE, Reason.NO_OWN_FILTER, f"no filter named {self.desired_filter.name!r}")
        return Decision(Action.REMOVE_FILTER, Reason.UNINSTALL, f"uninstalling: remove filter {ours.name!r}", ours)

    def desired_retention(self, facts: LogGroupFacts) -> int | None:
        """The retention the group's retention rule asks for (None: left alone)."""
        control = self.resolve(facts, RETENTION).value
        return control.days if control is not None else None

    # --- helpers ---------------------------------------------------------------------------------
    def _excluded_by_name(self, name: str) -> Decision | None:
        for prefix in self.config.exclude_prefixes:
            if name.startswith(prefix):
                return Decision(Action.SKIP, Reason.EXCLUDED_PREFIX, f"name starts with {prefix!r}")
        for pattern in self.config.exclude_patterns:
            if pattern.search(name):
                return Decision(Action.SKIP, Reason.EXCLUDED_PATTERN, f"name matches {pattern.pattern!r}")
        return None

    def _excluded_by_tag(self, facts: LogGroupFacts) -> Decision | None:
        if not self.config.exclude_tags:
            return None
        tags = facts.tags
        for key, value in self.config.exclude_tags.items():
            if key in tags and (value == "*" or tags[key] == value):
                return Decision(Action.SKIP, Reason.EXCLUDED_TAG, f"tagged {key}={tags[key]}")
        return None

    def _filter_decision(self, filters: Sequence[SubscriptionFilter], desired: SubscriptionFilter) -> Decision:
        ours = next((f for f in filters if f.name == desired.name), None)
        if ours is not None:
            if _same_delivery(ours, desired):
                return Decision(Action.LEAVE, Reason.FILTER_COMPLIANT, f"filter {desired.name!r} already ships to the destination")
            return Decision(Action.UPDATE_FILTER, Reason.FILTER_DIFFERS, f"filter {desired.name!r} differs; update it in place", desired)
        shipping = next((f for f in filters if f.destination_arn == desired.destination_arn), None)
        if shipping is not None:
            return Decision(Action.LEAVE, Reason.SHIPPED_BY_OTHER_FILTER, f"filter {shipping.name!r} already ships to the destination")
        if len(filters) >= self.config.max_filters_per_log_group:
            names = ", ".join(repr(f.name) for f in filters)
            return Decision(Action.CONFLICT, Reason.NO_FREE_SLOT, f"all {len(filters)} filter slots taken by {names}; foreign filters are never replaced")
        return Decision(Action.SUBSCRIBE, Reason.NOT_SUBSCRIBED, f"subscribe with filter {desired.name!r}", desired)


#: What CloudWatch Logs does with a group's key (the KMS page for CloudWatch Logs lists these in its key policy example).
_LOGS_KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey", "kms:DescribeKey")
_LOGS_CONTEXT_KEY = "kms:encryptioncontext:aws:logs:arn"


def key_policy_admits(document: str | None, *, region: str, group_arn: str) -> str | None:
    """Whether a key's policy lets CloudWatch Logs (``logs.<region>.amazonaws.com``) use it for ``group_arn``: None when it
    does, else why not. An ``ArnLike``/``ArnEquals``/``StringLike``/``StringEquals`` condition on
    ``kms:EncryptionContext:aws:logs:arn`` must match the group; one statement must allow every action CloudWatch Logs needs."""
    if document is None:
        return "the key does not exist, or its policy cannot be read"
    try:
        statements = json.loads(document).get("Statement", [])
    except (ValueError, AttributeError):
        return "the key's policy is not JSON"
    statements = [statements] if isinstance(statements, Mapping) else statements
    service = f"logs.{region}.amazonaws.com"
    for statement in statements:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, Mapping) else []
        everyone = principal == "*" or (isinstance(principal, Mapping) and principal.get("AWS") in ("*", ["*"]))
        if not everyone and service not in ([services] if isinstance(services, str) else services):
            continue  # a statement for every principal admits CloudWatch Logs too (AWS accepted such a key: recorded/ls-create-log-group-with-kms-key.json)
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not all(any(fnmatchcase(needed.lower(), a.lower()) for a in actions) for needed in _LOGS_KEY_ACTIONS):
            continue
        if _context_matches(statement.get("Condition"), group_arn):
            return None
    return f"no statement of the key's policy allows {service} {', '.join(_LOGS_KEY_ACTIONS)} for {group_arn}"


def _context_matches(condition: Any, group_arn: str) -> bool:
    if not condition:
        return True
    for operator, pairs in condition.items():
        for key, values in (pairs or {}).items():
            if key.lower() != _LOGS_CONTEXT_KEY:
                continue
            values = [values] if isinstance(values, str) else values
            arns = (group_arn, f"{group_arn}:*")
            if operator in ("ArnLike", "StringLike") and not any(fnmatchcase(a, v) for v in values for a in arns):
                return False
            if operator in ("ArnEquals", "StringEquals") and not set(values) & set(arns):
                return False
    return True


#: The governor's data protection policies are named so (the Name is the dimension of audit findings' metrics, the model).
DATA_PROTECTION_POLICY_NAME = "log-group-governor"


def data_protection_document(identifiers: Sequence[str], log_group: str, partition: str = "aws", *, audit_log_group: str | None = None) -> str:
    """The policy document the model describes: an Audit block (its FindingsDestination object empty, or naming the log
    group that receives the findings) and a Deidentify block (``"MaskConfig": {}``), their DataIdentifier arrays the same."""
    arns = [f"arn:{partition}:dataprotection::aws:data-identifier/{name}" for name in identifiers]
    findings = {"CloudWatchLogs": {"LogGroup": audit_log_group}} if audit_log_group else {}
    return json.dumps({"Name": DATA_PROTECTION_POLICY_NAME, "Description": f"log-group-governor: {log_group}", "Version": "2021-06-01",
                       "Statement": [{"Sid": "audit", "DataIdentifier": arns, "Operation": {"Audit": {"FindingsDestination": findings}}},
                                     {"Sid": "redact", "DataIdentifier": arns, "Operation": {"Deidentify": {"MaskConfig": {}}}}]},
                      separators=(",", ":"))


def widened_data_protection_document(document: str | None, identifiers: Iterable[str], partition: str = "aws", *,
                                     audit_log_group: str | None = None) -> str | None:
    """Someone else's policy widened in place (``minimum``, #26): each of ``identifiers`` (managed identifiers' names) it
    does not name yet is added, as its ARN, to every statement's DataIdentifier array (the model: the two arrays match
    exactly); ``audit_log_group``, when given, joins their findings destinations as the CloudWatchLogs one. Everything
    else stays as they wrote it: Name, Description, Version, Configuration (custom data identifiers, named in
    DataIdentifier by their Name), each statement's other fields, every FindingsDestination (S3, Firehose,
    CloudWatchLogs), their identifiers and their order. None: the document cannot be read as a policy."""
    try:
        policy = json.loads(document) if document else None
        statements = policy.get("Statement") if isinstance(policy, dict) else None
        if not isinstance(statements, list) or not statements or not all(isinstance(st, dict) for st in statements):
            return None
        for statement in statements:
            named = statement.get("DataIdentifier")
            if not isinstance(named, list) or not all(isinstance(i, str) for i in named):
                return None
            have = {i.rsplit("/", 1)[-1] for i in named}
            statement["DataIdentifier"] = [*named, *(f"arn:{partition}:dataprotection::aws:data-identifier/{name}"
                                                     for name in sorted(set(identifiers) - have))]
            audit = statement.get("Operation", {}).get("Audit") if isinstance(statement.get("Operation"), dict) else None
            if audit_log_group and isinstance(audit, dict):
                findings = audit.setdefault("FindingsDestination", {})
                if not isinstance(findings, dict):
                    return None
                findings["CloudWatchLogs"] = {**(findings.get("CloudWatchLogs") or {}), "LogGroup": audit_log_group}
    except (ValueError, AttributeError, TypeError):
        return None
    return json.dumps(policy, separators=(",", ":"))


def audit_log_group(document: str | None) -> str | None:
    """The log group a policy sends its audit findings to (None: none, or no policy)."""
    try:
        statements = json.loads(document).get("Statement", []) if document else []
        return next((st["Operation"]["Audit"].get("FindingsDestination", {}).get("CloudWatchLogs", {}).get("LogGroup")
                     for st in statements if "Audit" in st.get("Operation", {})), None)
    except (ValueError, AttributeError, TypeError, KeyError):
        return None


def masked_identifiers(document: str | None) -> set[str] | None:
    """The names of the identifiers a policy masks (its Deidentify block); None when there is no policy. A policy that
    cannot be read masks nothing the governor can count on: an empty set, so the rule's identifiers are added."""
    if document is None:
        return None
    try:
        statements = json.loads(document).get("Statement", [])
        return {arn.rsplit("/", 1)[-1] for st in statements if "Deidentify" in st.get("Operation", {}) for arn in st.get("DataIdentifier", [])}
    except (ValueError, AttributeError, TypeError):
        return set()


def _unsubscribable(log_group_class: str) -> str:
    if log_group_class in REDUCED_FEATURE_CLASSES:
        return f"class {log_group_class} supports a subset of CloudWatch Logs features, without subscription filters"
    if log_group_class in FIXED_RETENTION_CLASSES:
        return f"class {log_group_class} only delivers Lambda logs to S3 or Firehose; it takes no subscription filters"
    return f"class {log_group_class} is unknown to the governor: not subscribed rather than risk a failing call"


def _same_delivery(current: SubscriptionFilter, desired: SubscriptionFilter) -> bool:
    return (
        current.destination_arn == desired.destination_arn
        and current.filter_pattern == desired.filter_pattern
        and (desired.role_arn is None or current.role_arn == desired.role_arn)
    )

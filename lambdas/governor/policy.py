"""The policy core: given what a log group looks like, decide what should change and why.

Pure code: no boto3, no events. Every entry point (the two event handlers, the backfill, the CLI and
the demo) asks a ``Policy``; nothing else decides. Facts are read in order of cost, so a caller may
hand in facts whose ``tags`` and ``filters`` are looked up on first access: a group skipped by its
name or class costs no further API call.
"""

from __future__ import annotations

import re

from collections.abc import Iterable, Mapping

from .config import ConfigError, Destination, PolicyConfig, RetentionMode, Via  # noqa: F401  (RetentionMode: importers of the policy core)
from . import controls
from .controls import retention, shipping
from .rules import CONTROLS, RETENTION, SHIPPING, Resolved, resolve

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


from .decision import (  # noqa: E402,F401
    EXCLUSION_REASONS,
    Action,
    Decision,
    KnownFacts,
    LogGroupFacts,
    Reason,
    SubscriptionFilter,
)


#: Each control a rule sets (governor.rules.CONTROLS) and the Policy method that decides it: every entry point that goes
#: over the controls (``plan --explain``, the handlers' aspects) derives them from here, and a control added to CONTROLS
#: without its decision fails at import rather than being left out of one of them (#26).
_OWN_METHODS = {RETENTION: "retention", SHIPPING: "subscription"}
DECIDED_BY: Mapping[str, str] = {c.name: _OWN_METHODS.get(c.name, "_by_control") for c in controls.REGISTRY}
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
        unresolved = [f"{r.source}.{why}" for c in controls.PLUGGED if c.unresolved is not None for r in self.rules
                      if r.value(c.name) is not None and (why := c.unresolved(r.value(c.name)))]
        if unresolved:
            raise ConfigError(unresolved[0])
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
        method = DECIDED_BY[control]
        return self._by_control(facts, control) if method == "_by_control" else getattr(self, method)(facts)

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
        return shipping.judge(facts.filters, desired, max_filters=self.config.max_filters_per_log_group)

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
        return retention.under_account_policy(self._retention(facts), facts, self.config)

    def _retention(self, facts: LogGroupFacts) -> Decision:
        excluded = self._excluded_by_name(facts.name)
        if excluded:
            return excluded
        if facts.log_group_class in FIXED_RETENTION_CLASSES:
            return Decision(Action.SKIP, Reason.FIXED_RETENTION_CLASS, f"class {facts.log_group_class} has a fixed retention")
        orphan_days = self.config.orphan_retention_days
        if orphan_days is not None and lambda_function_name(facts.name) and facts.orphaned:
            return self._excluded_by_tag(facts) or retention.orphaned(facts.retention_days, orphan_days)
        control = self.resolve(facts, RETENTION).value
        desired = control.days if control is not None else None
        if desired is None:
            return Decision(Action.LEAVE, Reason.RETENTION_UNMANAGED, "no retention configured for this name")
        excluded = self._excluded_by_tag(facts)
        if excluded:
            return excluded
        return retention.judge(facts.retention_days, desired, control.mode or self.config.retention_mode, self.config)

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

    def _by_control(self, facts: LogGroupFacts, name: str) -> Decision:
        """A control only rules set, decided by its module (governor.controls) once the policy's scope and the deciding rule
        are known (``_ruled``): the same order for every such control."""
        control = controls.BY_NAME[name]
        assert control.decide is not None and control.unmanaged is not None
        own = {r.value: r for r in control.own_reasons} if control.own_reasons is not None else {}  # type: ignore[attr-defined]
        resolved = self._ruled(facts, name, own.get(control.unmanaged) or Reason(control.unmanaged))
        if isinstance(resolved, Decision):
            return resolved
        if control.native_reason is not None and self.config.via(name) is Via.ACCOUNT_POLICY:
            return Decision(Action.LEAVE, own[control.native_reason], f"{control.via_key} account-policy: the account's "  # type: ignore[arg-type]
                            f"{control.native_form.policy_type} policies say it, as log-group-governor apply writes them")  # type: ignore[union-attr]
        return control.decide(resolved, facts, partition=self._partition)

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


def _unsubscribable(log_group_class: str) -> str:
    if log_group_class in REDUCED_FEATURE_CLASSES:
        return f"class {log_group_class} supports a subset of CloudWatch Logs features, without subscription filters"
    if log_group_class in FIXED_RETENTION_CLASSES:
        return f"class {log_group_class} only delivers Lambda logs to S3 or Firehose; it takes no subscription filters"
    return f"class {log_group_class} is unknown to the governor: not subscribed rather than risk a failing call"

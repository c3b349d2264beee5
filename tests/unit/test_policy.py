"""The policy core, on plain facts: decisions, their order, and the guard against loops."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from governor.config import VALID_RETENTION_DAYS, ConfigError, parse_policy_config
from governor.controls.data_protection import DataProtectionAction
from governor.controls.deletion_protection import ProtectionAction
from governor.controls.kms_key import KmsKeyAction
from governor.controls.field_indexes import FieldIndexAction, IndexPolicy
from governor.policy import Action, KnownFacts, Policy, Reason, SubscriptionFilter

SHIPPER = "arn:aws:lambda:eu-west-1:123456789012:function:log-shipper"
OTHER = "arn:aws:lambda:eu-west-1:123456789012:function:vendor"


def _policy(protected: tuple[str, ...] = (), **raw: Any) -> Policy:
    return Policy(parse_policy_config({"destinationArn": SHIPPER, **raw}), protected_log_groups=protected)


class _Untouchable:
    """Facts whose tags and filters must not be read: a lookup the policy should not have needed."""

    def __init__(self, name: str, log_group_class: str = "STANDARD", retention_days: int | None = None) -> None:
        self.name, self.log_group_class, self.retention_days = name, log_group_class, retention_days
        self.retention_policy_name = None

    @property
    def tags(self) -> dict[str, str]:
        raise AssertionError("tags were looked up")

    @property
    def filters(self) -> tuple[SubscriptionFilter, ...]:
        raise AssertionError("filters were looked up")


def test_a_policy_needs_a_destination() -> None:
    with pytest.raises(ConfigError, match="destinationArn"):
        Policy(parse_policy_config({}, require_destination=False))


def test_names_and_classes_are_decided_without_looking_up_tags_or_filters() -> None:
    policy = _policy(excludePrefixes=["/tmp/"], excludeTags={"opt-out": "true"})

    assert policy.subscription(_Untouchable("/tmp/x")).reason is Reason.EXCLUDED_PREFIX
    assert policy.subscription(_Untouchable("/a", "INFREQUENT_ACCESS")).reason is Reason.UNSUPPORTED_CLASS
    assert policy.retention(_Untouchable("/a", "DELIVERY")).reason is Reason.FIXED_RETENTION_CLASS


def test_a_shipping_path_group_is_read_for_the_governors_own_filter_and_loses_it() -> None:
    """The only filters a shipping-path decision reads: a group subscribed before the destination wrote
    to it (a re-pointed LoggingConfig) would feed the destination its own logs (#18)."""
    policy = _policy(excludeTags={"opt-out": "true"})
    ours = SubscriptionFilter("log-group-governor", SHIPPER)

    subscribed = policy.subscription(KnownFacts("/aws/lambda/log-shipper", filters=(ours, SubscriptionFilter("vendor", OTHER))))
    clean = policy.subscription(KnownFacts("/aws/lambda/log-shipper", filters=(SubscriptionFilter("vendor", OTHER),)))

    assert (subscribed.action, subscribed.reason, subscribed.subscription_filter) == (Action.REMOVE_FILTER, Reason.SHIPPING_PATH, ours)
    assert (clean.action, clean.reason) == (Action.SKIP, Reason.SHIPPING_PATH)  # another tool's filter is never the governor's to remove


class _NoTags(_Untouchable):
    filters: tuple[SubscriptionFilter, ...] = ()  # type: ignore[assignment]


def test_tags_are_not_looked_up_when_no_tag_exclusion_is_configured() -> None:
    policy = _policy()

    assert policy.subscription(_NoTags("/a")).action is Action.SUBSCRIBE
    assert policy.retention(_NoTags("/a")).action is Action.SET_RETENTION


@pytest.mark.parametrize(
    ("filters", "action", "reason"),
    [
        ((), Action.SUBSCRIBE, Reason.NOT_SUBSCRIBED),
        ((SubscriptionFilter("vendor", OTHER),), Action.SUBSCRIBE, Reason.NOT_SUBSCRIBED),
        ((SubscriptionFilter("log-group-governor", SHIPPER),), Action.LEAVE, Reason.FILTER_COMPLIANT),
        ((SubscriptionFilter("log-group-governor", OTHER),), Action.UPDATE_FILTER, Reason.FILTER_DIFFERS),
        ((SubscriptionFilter("log-group-governor", SHIPPER, "ERROR"),), Action.UPDATE_FILTER, Reason.FILTER_DIFFERS),
        ((SubscriptionFilter("hand-made", SHIPPER),), Action.LEAVE, Reason.SHIPPED_BY_OTHER_FILTER),
        ((SubscriptionFilter("a", OTHER), SubscriptionFilter("b", OTHER)), Action.CONFLICT, Reason.NO_FREE_SLOT),
        # our filter on a full group is updated in place: it needs no new slot
        ((SubscriptionFilter("a", OTHER), SubscriptionFilter("log-group-governor", OTHER)), Action.UPDATE_FILTER, Reason.FILTER_DIFFERS),
    ],
)
def test_filter_decisions(filters: tuple[SubscriptionFilter, ...], action: Action, reason: Reason) -> None:
    decision = _policy().subscription(KnownFacts("/aws/lambda/orders", filters=filters))

    assert (decision.action, decision.reason) == (action, reason)
    if action.writes:
        assert decision.subscription_filter == SubscriptionFilter("log-group-governor", SHIPPER, "")


def test_a_raised_filter_quota_opens_more_slots() -> None:
    full_at_two = (SubscriptionFilter("a", OTHER), SubscriptionFilter("b", OTHER))

    assert _policy(maxFiltersPerLogGroup=5).subscription(KnownFacts("/x", filters=full_at_two)).action is Action.SUBSCRIBE


@pytest.mark.parametrize(
    ("name", "current", "raw", "action", "days"),
    [
        ("/a", None, {}, Action.SET_RETENTION, 30),
        ("/a", 14, {}, Action.SET_RETENTION, 30),
        ("/a", 30, {}, Action.LEAVE, None),
        ("/a", 3653, {}, Action.LEAVE, None),
        ("/a", 3653, {"shortenRetention": True}, Action.SET_RETENTION, 30),
        ("/aws/lambda/prod-x", None, {"retentionOverrides": {"/aws/": 90, "/aws/lambda/prod-": 365}}, Action.SET_RETENTION, 365),
        ("/aws/lambda/dev-x", None, {"retentionOverrides": {"/aws/": 90, "/aws/lambda/prod-": 365}}, Action.SET_RETENTION, 90),
        ("/audit/x", None, {"retentionOverrides": {"/audit/": None}}, Action.LEAVE, None),
    ],
)
def test_retention_decisions(name: str, current: int | None, raw: dict, action: Action, days: int | None) -> None:
    decision = _policy(**raw).retention(KnownFacts(name, retention_days=current))

    assert (decision.action, decision.retention_days) == (action, days)


@pytest.mark.parametrize(
    ("mode", "current", "action", "reason", "days"),
    [
        # minimum: set where none, raise where shorter, keep longer
        ({}, 14, Action.SET_RETENTION, Reason.RETENTION_TOO_SHORT, 30),
        ({}, 365, Action.LEAVE, Reason.KEEPS_LONGER_RETENTION, None),
        # exact: anything else is set to the configured value (and shortenRetention is its older spelling)
        ({"retentionMode": "exact"}, 365, Action.SET_RETENTION, Reason.RETENTION_TOO_LONG, 30),
        ({"shortenRetention": True}, 365, Action.SET_RETENTION, Reason.RETENTION_TOO_LONG, 30),
        ({"retentionMode": "exact"}, 30, Action.LEAVE, Reason.RETENTION_COMPLIANT, None),
        # clamp 14..90: raise below, shorten above, leave between
        ({"retentionMode": "clamp", "retentionMinDays": 14, "retentionMaxDays": 90}, 7, Action.SET_RETENTION, Reason.RETENTION_TOO_SHORT, 14),
        ({"retentionMode": "clamp", "retentionMinDays": 14, "retentionMaxDays": 90}, 365, Action.SET_RETENTION, Reason.RETENTION_TOO_LONG, 90),
        ({"retentionMode": "clamp", "retentionMinDays": 14, "retentionMaxDays": 90}, 60, Action.LEAVE, Reason.RETENTION_WITHIN_BOUNDS, None),
        ({"retentionMode": "clamp", "retentionMinDays": 14, "retentionMaxDays": 90}, None, Action.SET_RETENTION, Reason.RETENTION_UNSET, 30),
        # never expire is non-compliant in every mode unless configured otherwise
        ({"retentionMode": "exact"}, None, Action.SET_RETENTION, Reason.RETENTION_UNSET, 30),
        ({"neverExpireCompliant": True}, None, Action.LEAVE, Reason.NEVER_EXPIRE_ALLOWED, None),
    ],
)
def test_retention_modes(mode: dict, current: int | None, action: Action, reason: Reason, days: int | None) -> None:
    decision = _policy(**mode).retention(KnownFacts("/aws/lambda/orders", retention_days=current))

    assert (decision.action, decision.reason, decision.retention_days) == (action, reason, days)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"retentionMode": "shortest"}, "retentionMode: expected one of minimum, exact, clamp; got 'shortest'"),
        ({"retentionMode": "clamp", "retentionMinDays": 14}, "retentionMode \"clamp\" needs both"),
        ({"retentionMode": "clamp", "retentionMinDays": 90, "retentionMaxDays": 14}, "minimum <= maximum"),
        ({"retentionMode": "clamp", "retentionMinDays": 60, "retentionMaxDays": 90}, "defaultRetentionDays: 30 days lies outside retentionMinDays..retentionMaxDays"),
        ({"retentionMode": "clamp", "retentionMinDays": 7, "retentionMaxDays": 90, "retentionOverrides": {"/p": 365}},
         "retentionOverrides\\['/p'\\]: 365 days lies outside"),
        ({"retentionMinDays": 7}, "only retentionMode \"clamp\" uses them"),
        ({"retentionMode": "minimum", "shortenRetention": True}, "shortenRetention: true means retentionMode \"exact\""),
        ({"orphanRetentionDays": 2}, "orphanRetentionDays: 2 is not a retention"),
        ({"driftFightLimit": 0}, "driftFightLimit: expected 1 to 100"),
    ],
)
def test_bad_retention_settings_name_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _policy(**raw)


def test_an_orphaned_lambda_group_gets_the_short_retention_only_when_configured() -> None:
    orphan = KnownFacts("/aws/lambda/deleted-fn", retention_days=365, orphaned=True)

    assert _policy().retention(orphan).reason is Reason.KEEPS_LONGER_RETENTION  # reported, not touched
    decision = _policy(orphanRetentionDays=7).retention(orphan)
    assert (decision.action, decision.reason, decision.retention_days) == (Action.SET_RETENTION, Reason.ORPHANED, 7)
    shorter = KnownFacts("/aws/lambda/deleted-fn", retention_days=3, orphaned=True)
    assert _policy(orphanRetentionDays=7).retention(shorter).action is Action.LEAVE
    # a living function's group, and a group outside /aws/lambda/, keep the normal rule
    assert _policy(orphanRetentionDays=7).retention(KnownFacts("/aws/lambda/live", retention_days=365, orphaned=False)).action is Action.LEAVE
    assert _policy(orphanRetentionDays=7).retention(KnownFacts("/ecs/x", retention_days=365, orphaned=True)).action is Action.LEAVE
    # exclusions still come first
    excluded = KnownFacts("/aws/lambda/deleted-fn", retention_days=365, orphaned=True, tags={"opt-out": "true"})
    assert _policy(orphanRetentionDays=7, excludeTags={"opt-out": "true"}).retention(excluded).reason is Reason.EXCLUDED_TAG


def test_an_opt_out_tag_removes_only_the_governors_own_filter() -> None:
    policy = _policy(excludeTags={"opt-out": "true"})
    ours, vendor = SubscriptionFilter("log-group-governor", SHIPPER), SubscriptionFilter("vendor", OTHER)

    decision = policy.subscription(KnownFacts("/a", tags={"opt-out": "true"}, filters=(vendor, ours)))
    assert (decision.action, decision.reason, decision.subscription_filter) == (Action.REMOVE_FILTER, Reason.OPTED_OUT, ours)
    # a filter shipping to our destination under another name is someone else's: left alone
    other_name = SubscriptionFilter("hand-made", SHIPPER)
    assert policy.subscription(KnownFacts("/a", tags={"opt-out": "true"}, filters=(other_name,))).action is Action.SKIP
    # the tag removed: governed again
    assert policy.subscription(KnownFacts("/a", tags={}, filters=(vendor,))).action is Action.SUBSCRIBE


@pytest.mark.parametrize(
    ("raw", "effective", "action", "reason"),
    [
        ({}, 90, Action.LEAVE, Reason.RETENTION_BY_ACCOUNT_POLICY),            # longer: kept in minimum mode
        ({}, None, Action.CONFLICT, Reason.ACCOUNT_RETENTION_POLICY_DIFFERS),  # never expire is not compliant
        ({"neverExpireCompliant": True}, None, Action.LEAVE, Reason.RETENTION_BY_ACCOUNT_POLICY),
        ({"retentionMode": "exact"}, 90, Action.CONFLICT, Reason.ACCOUNT_RETENTION_POLICY_DIFFERS),
        ({"retentionMode": "exact"}, 30, Action.LEAVE, Reason.RETENTION_BY_ACCOUNT_POLICY),
        ({"defaultRetentionDays": 365}, 90, Action.CONFLICT, Reason.ACCOUNT_RETENTION_POLICY_DIFFERS),
        ({"defaultRetentionDays": None}, 90, Action.LEAVE, Reason.RETENTION_UNMANAGED),
    ],
)
def test_under_an_account_level_retention_policy_nothing_is_written(raw: dict, effective: int | None, action: Action, reason: Reason) -> None:
    """PutRetentionPolicy changes nothing while an account-level policy applies: a write would repeat forever."""
    facts = KnownFacts("/aws/lambda/orders", retention_days=effective, retention_policy_name="org-baseline")

    decision = _policy(**raw).retention(facts)

    assert (decision.action, decision.reason) == (action, reason)
    assert not decision.action.writes
    if action is Action.CONFLICT:
        assert "'org-baseline'" in decision.detail


def test_tag_exclusion_matches_value_or_any_value() -> None:
    policy = _policy(excludeTags={"opt-out": "true", "team": "*"})

    assert policy.subscription(KnownFacts("/a", tags={"opt-out": "true"})).reason is Reason.EXCLUDED_TAG
    assert policy.subscription(KnownFacts("/a", tags={"opt-out": "false"})).action is Action.SUBSCRIBE
    assert policy.retention(KnownFacts("/a", tags={"team": "payments"})).reason is Reason.EXCLUDED_TAG


# --- the guard, over every configuration cdk.json can express -----------------------------------

_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/_-.", min_size=1, max_size=30)
_prefix_or_name = st.one_of(_names, _names.map(lambda n: n + "*"))
_filters = st.lists(
    st.builds(SubscriptionFilter, name=st.sampled_from(["log-group-governor", "vendor", "siem", "x"]),
              destination_arn=st.sampled_from([SHIPPER, OTHER]), filter_pattern=st.sampled_from(["", "ERROR"])),
    max_size=3, unique_by=lambda f: f.name,
)
_configs = st.fixed_dictionaries(
    {"destinationArn": st.from_regex(r"arn:aws:lambda:eu-west-1:123456789012:function:[a-z][a-z0-9-]{0,20}", fullmatch=True)},
    optional={
        "filterName": st.sampled_from(["log-group-governor", "vendor", "ship"]),
        "filterPattern": st.sampled_from(["", "ERROR", "{ $.level = \"error\" }"]),
        "defaultRetentionDays": st.one_of(st.none(), st.sampled_from(VALID_RETENTION_DAYS)),
        "retentionOverrides": st.dictionaries(_names, st.one_of(st.none(), st.sampled_from(VALID_RETENTION_DAYS)), max_size=3),
        "shortenRetention": st.booleans(),
        "excludePrefixes": st.lists(_names, max_size=3),
        "excludePatterns": st.lists(st.sampled_from(["^/tmp/", "debug", r"\d+$"]), max_size=2),
        "excludeTags": st.dictionaries(st.sampled_from(["opt-out", "team"]), st.sampled_from(["true", "*"]), max_size=2),
        "shippingPathLogGroups": st.lists(_prefix_or_name, max_size=4),
        "maxFiltersPerLogGroup": st.integers(1, 10),
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=_configs,
    custom_log_group=st.one_of(st.none(), _names),
    suffix=_names,
    pick=st.integers(0, 100),
    log_group_class=st.sampled_from(["STANDARD", "INFREQUENT_ACCESS", "DELIVERY", "ESSENTIALS"]),
    tags=st.dictionaries(st.sampled_from(["opt-out", "team", "env"]), st.sampled_from(["true", "false", "x"]), max_size=2),
    filters=_filters,
)
def test_no_configuration_subscribes_a_shipping_path_log_group(
    raw: dict[str, Any], custom_log_group: str | None, suffix: str, pick: int, log_group_class: str, tags: dict, filters: list
) -> None:
    """Whatever the configuration, a group that carries the destination's own logs is never subscribed."""
    config = parse_policy_config(raw)  # the path cdk.json values take (the stack adds no other keys)
    protected = (custom_log_group,) if custom_log_group else ()
    policy = Policy(config, protected_log_groups=protected)

    shipping_path = [config.destination.default_log_group, *protected]
    for entry in config.shipping_path_log_groups:
        shipping_path.append(entry[:-1] + suffix if entry.endswith("*") else entry)
    name = shipping_path[pick % len(shipping_path)]

    decision = policy.subscription(KnownFacts(name, log_group_class, None, tags, tuple(filters)))

    assert decision.action not in (Action.SUBSCRIBE, Action.UPDATE_FILTER)
    assert decision.reason is Reason.SHIPPING_PATH


@pytest.mark.parametrize("log_group_class", ["ESSENTIALS", "INFREQUENT_ACCESS"])
def test_essentials_is_decided_like_infrequent_access_retention_without_subscription(log_group_class: str) -> None:
    """ESSENTIALS, decided from botocore's model (see policy.REDUCED_FEATURE_CLASSES): no filter is
    attempted, retention is set as for any class but DELIVERY."""
    policy = _policy()

    subscription = policy.subscription(_Untouchable("/essentials/app", log_group_class))
    retention = policy.retention(_NoTags("/essentials/app", log_group_class))

    assert (subscription.action, subscription.reason) == (Action.SKIP, Reason.UNSUPPORTED_CLASS)
    assert "without subscription filters" in subscription.detail
    assert (retention.action, retention.retention_days) == (Action.SET_RETENTION, 30)


def test_an_unknown_class_is_not_subscribed_and_says_why() -> None:
    decision = _policy().subscription(_Untouchable("/a", "HYPOTHETICAL_TIER"))

    assert (decision.action, decision.reason) == (Action.SKIP, Reason.UNSUPPORTED_CLASS)
    assert "unknown to the governor" in decision.detail


# --- issue 26: a decision is a fixed point -------------------------------------------------------------------------------

_KEY_A = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
_KEY_B = "arn:aws:kms:eu-west-1:123456789012:key/9999abcd-12ab-34cd-56ef-1234567890ab"
_FIXED_NAMES = ["/aws/lambda/prod-orders", "/aws/lambda/orders", "/audit/trail", "/ecs/batch", "/tmp/scratch", "/audit/findings"]
_rule_retention = st.one_of(st.none(), st.fixed_dictionaries({"days": st.sampled_from([None, 1, 7, 30, 365, 400, 3653])},
                                                             optional={"mode": st.sampled_from(["minimum", "exact"])}))
_rule = st.fixed_dictionaries({"match": st.sampled_from([{}, {"namePrefixes": ["/aws/lambda/prod-"]}, {"namePatterns": ["^/audit/"]},
                                                         {"tags": {"workload": "batch"}}, {"logGroupClasses": ["STANDARD"]}])}, optional={
    "retention": _rule_retention,
    "shipping": st.sampled_from([{"enabled": True}, {"enabled": True, "filterPattern": "ERROR"}, {"enabled": False}]),
    "deletionProtection": st.booleans(),
    "kmsKeyArn": st.sampled_from([_KEY_A, _KEY_B]),
    "dataProtection": st.sampled_from([{"identifiers": ["EmailAddress"]}, {"identifiers": ["EmailAddress", "CreditCardNumber"], "mode": "exact"},
                                       {"identifiers": ["CreditCardNumber"], "auditLogGroup": "/audit/findings"}]),
    "fieldIndexes": st.sampled_from([["requestId"], ["requestId", "orderId"], {"fields": ["orderId"], "mode": "exact"}]),
}).map(lambda rule: {k: v for k, v in rule.items() if v is not None}).filter(lambda rule: len(rule) > 1)
_exactly = st.sampled_from([[], ["deletionProtection"], ["kmsKeyArn"], ["deletionProtection", "kmsKeyArn"]])
_fixed_configs = st.fixed_dictionaries({
    "destinationArn": st.just(SHIPPER), "retentionMode": st.sampled_from(["minimum", "exact", "clamp"]),
    "rules": st.lists(st.tuples(_rule, _exactly).map(lambda pair: {**pair[0], "exact": [c for c in pair[1] if c in pair[0]]}), max_size=3),
}, optional={
    "defaultRetentionDays": st.sampled_from([None, 7, 30, 365]),
    "retentionOverrides": st.sampled_from([{}, {"/aws/lambda/prod-": 365}, {"/ecs/": None}]),
    "neverExpireCompliant": st.booleans(),
    "orphanRetentionDays": st.sampled_from([None, 7]),
    "excludePrefixes": st.sampled_from([[], ["/tmp/"]]),
    "excludeTags": st.sampled_from([{}, {"opt-out": "true"}]),
    "maxFiltersPerLogGroup": st.integers(1, 3),
})
_documents = st.sampled_from([None, '{"Name":"theirs","Statement":[{"Sid":"a","DataIdentifier":["arn:aws:dataprotection::aws:data-identifier/'
                                    'AwsSecretKey"],"Operation":{"Audit":{"FindingsDestination":{}}}},{"Sid":"d","DataIdentifier":["arn:aws:'
                                    'dataprotection::aws:data-identifier/AwsSecretKey"],"Operation":{"Deidentify":{"MaskConfig":{}}}}]}'])
_states = st.builds(
    KnownFacts, name=st.sampled_from(_FIXED_NAMES), log_group_class=st.sampled_from(["STANDARD", "INFREQUENT_ACCESS", "ESSENTIALS", "DELIVERY"]),
    retention_days=st.one_of(st.none(), st.sampled_from(VALID_RETENTION_DAYS)),
    tags=st.sampled_from([{}, {"workload": "batch"}, {"opt-out": "true"}]), filters=_filters, orphaned=st.sampled_from([None, True, False]),
    retention_policy_name=st.sampled_from([None, None, None, "org-retention"]),
    # What the controls that plug in whole read of a group (their modules' look-ups), hostile ones among them.
    facts=st.fixed_dictionaries({"deletionProtection": st.booleans(), "kmsKeyArn": st.sampled_from([None, _KEY_A, _KEY_B]), "dataProtection": _documents, "fieldIndexes": st.sampled_from([
        IndexPolicy(), IndexPolicy('{"Fields":["sessionId"]}', "LOG_GROUP"), IndexPolicy('{"Fields":["requestId","tenantId"]}', "ACCOUNT", "platform"),
        IndexPolicy('{"FieldsV2":{"orderId":{"type":"FACET"}}}', "LOG_GROUP"), IndexPolicy("not json", "LOG_GROUP"),
        IndexPolicy('{"Fields":' + json.dumps([f"f{i}" for i in range(19)]) + '}', "LOG_GROUP")])}))


def _bounded(raw: dict[str, Any]) -> dict[str, Any]:
    """clamp's bounds, around the flat days (a rule's may lie outside: such a configuration is refused, #26)."""
    if raw.get("retentionMode") != "clamp":
        return raw
    return {**raw, "retentionMinDays": 7, "retentionMaxDays": 400, "defaultRetentionDays": min(raw.get("defaultRetentionDays") or 30, 365)}


def _applied(facts: KnownFacts, decision: Any) -> KnownFacts:
    """The group after ``decision`` is applied, as the service writes it (governor.service.Governor._apply)."""
    from dataclasses import replace as with_

    action, wanted = decision.action, decision.subscription_filter
    if action is Action.REMOVE_FILTER:
        return with_(facts, filters=tuple(f for f in facts.filters if f.name != wanted.name))
    if action in (Action.SUBSCRIBE, Action.UPDATE_FILTER):
        return with_(facts, filters=(*(f for f in facts.filters if f.name != wanted.name), wanted))
    if action is Action.SET_RETENTION:
        return with_(facts, retention_days=decision.retention_days)
    if action in (ProtectionAction.PROTECT, ProtectionAction.UNPROTECT):
        return with_(facts, facts={**facts.facts, "deletionProtection": action is ProtectionAction.PROTECT})
    if action is FieldIndexAction.PUT_INDEX_POLICY:
        return with_(facts, facts={**facts.facts, "fieldIndexes": IndexPolicy(decision.payload, "LOG_GROUP")})
    if action is KmsKeyAction.ASSOCIATE:
        return with_(facts, facts={**facts.facts, "kmsKeyArn": decision.payload})
    if action is DataProtectionAction.PUT:
        return with_(facts, facts={**facts.facts, "dataProtection": decision.payload})
    assert not action.writes, decision
    return facts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_fixed_configs.map(_bounded), state=_states)
@example(raw=_bounded({"destinationArn": SHIPPER, "retentionMode": "clamp", "rules": [{"match": {"namePatterns": ["^/audit/"]},
                                                                                         "retention": {"days": 3653}}]}),
         state=KnownFacts("/audit/trail"))  # issue 26: 3653 days on the first delivery, the clamp's 400 on the next
def test_issue26_every_decision_is_a_fixed_point_for_every_control(raw: dict[str, Any], state: KnownFacts) -> None:
    """decide(apply(decide(state))) writes nothing, for every control a rule sets: what the governor set is what it asks for
    the next time (a redelivered event, the reconcile, `plan`), and a decision that wrote nothing is the same decision again."""
    from governor.rules import CONTROLS

    try:
        policy = Policy(parse_policy_config(raw))
    except ConfigError as refused:  # a rule that inherits clamp, its days beyond the bounds: no answer would hold
        assert "lies outside retentionMinDays..retentionMaxDays" in str(refused)
        return
    for control in CONTROLS:
        first = policy.decide(state, control)
        again = policy.decide(_applied(state, first), control)
        assert not again.action.writes, (control, first, again)
        if first.action.writes:
            assert again.action in (Action.LEAVE, Action.SKIP), (control, first, again)
        else:
            assert again == first, (control, first, again)


def test_issue26_a_rule_beyond_clamps_bounds_is_refused_and_one_with_its_own_mode_is_not_bounded() -> None:
    clamp = {"retentionMode": "clamp", "retentionMinDays": 7, "retentionMaxDays": 400}
    audit = {"name": "audit", "match": {"namePrefixes": ["/audit/"]}, "retention": {"days": 3653}}
    with pytest.raises(ConfigError, match=r"rules\[0\] 'audit'\.retention\.days: 3653 days lies outside retentionMinDays\.\.retentionMaxDays"):
        _policy(**clamp, rules=[audit])
    with pytest.raises(ConfigError, match=r"rules\[0\]\.retention\.days: 1 days lies outside"):
        _policy(**clamp, rules=[{"retention": {"days": 1}}])

    policy = _policy(**clamp, rules=[{**audit, "retention": {"days": 3653, "mode": "minimum"}}])
    for current in (None, 30, 3653):
        decided = policy.retention(KnownFacts("/audit/trail", retention_days=current))
        assert (decided.action, decided.retention_days or current) == ((Action.LEAVE, 3653) if current == 3653 else (Action.SET_RETENTION, 3653))

"""Governance rules (#21): parsing (errors name the rule and key), per-control first-match resolution, and today's
flat keys deciding exactly as they did before rules existed (a golden file written by the code before them)."""

from __future__ import annotations

import gzip
import json
import re
from itertools import product
from pathlib import Path
from typing import Any

import pytest

from governor.config import ConfigError, parse_policy_config
from governor.policy import Action, KnownFacts, Policy, Reason, SubscriptionFilter
from governor.controls.data_protection import DataProtectionAction, DataProtectionReason
from governor.controls.deletion_protection import DELETION_PROTECTION, ProtectionAction, ProtectionReason
from governor.controls.kms_key import KMS_KEY, KmsKeyAction, KmsKeyReason
from governor.rules import RETENTION, SHIPPING

ROOT = Path(__file__).resolve().parents[2]
#: gzip'd JSON: 14,410 rows of decisions.
GOLDEN = Path(__file__).with_name("decisions_before_rules.json.gz")
DESTINATION = "arn:aws:lambda:eu-west-1:123456789012:function:log-shipper"
OTHER = "arn:aws:lambda:eu-west-1:123456789012:function:vendor-apm-forwarder"


def shipped_config() -> dict[str, Any]:
    """The shipped cdk.json's governor: policy keys, with a destination."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    from governor.config import POLICY_KEYS

    raw = {k.removeprefix("governor:"): v for k, v in context.items() if k.removeprefix("governor:") in POLICY_KEYS}
    raw.pop("rules", None)  # absent before rules existed: the same as []
    return {**raw, "destinationArn": DESTINATION}


#: The configurations the golden file holds decisions for: the shipped one and variants of every flat key rules replace.
CONFIGS: dict[str, dict[str, Any]] = {
    "shipped": {},
    "overrides": {"retentionOverrides": {"/aws/lambda/prod-": 365, "/aws/lambda/": 14, "/aws/lambda/legacy-": None},
                  "excludePrefixes": ["/aws/lambda/sandbox-"], "excludePatterns": ["-tmp-\\d+$"], "filterPattern": "?ERROR ?WARN"},
    "exact": {"retentionMode": "exact", "defaultRetentionDays": 90, "retentionOverrides": {"/ecs/": 7}},
    "clamp": {"retentionMode": "clamp", "retentionMinDays": 7, "retentionMaxDays": 365, "defaultRetentionDays": 30},
    "no-default": {"defaultRetentionDays": None, "retentionOverrides": {"/aws/lambda/prod-": 60}, "neverExpireCompliant": True},
    "account-policy": {"subscriptionMode": "account-policy", "retentionOverrides": {"/aws/lambda/prod-": 365}},
}
NAMES = ["/aws/lambda/prod-orders", "/aws/lambda/orders", "/aws/lambda/legacy-billing", "/aws/lambda/sandbox-7", "/ecs/batch",
         "/ecs/batch-tmp-42", "/archive/audit", "/aws/lambda/log-shipper"]
CLASSES = ["STANDARD", "INFREQUENT_ACCESS", "ESSENTIALS", "DELIVERY"]
RETENTIONS = [None, 1, 30, 365, 3653]
TAGS = [{}, {"log-group-governor:opt-out": "true"}, {"team": "orders"}]
FILTERS = [(), (SubscriptionFilter("log-group-governor", DESTINATION),), (SubscriptionFilter("log-group-governor", DESTINATION, "?ERROR ?WARN"),),
           (SubscriptionFilter("vendor-a", OTHER), SubscriptionFilter("vendor-b", OTHER)), (SubscriptionFilter("other", DESTINATION),)]


#: The demo's account (demo.__main__.create_groups), each group as it is created there.
DEMO_OVERRIDES = {"excludePrefixes": ["/aws/lambda/sandbox-"], "retentionOverrides": {"/aws/lambda/prod-": 365}}
VENDOR = "arn:aws:lambda:eu-west-1:123456789012:function:vendor-apm-forwarder"
SIEM = "arn:aws:kinesis:eu-west-1:123456789012:stream/security-siem"
DEMO_GROUPS = [
    KnownFacts("/aws/lambda/orders-api"), KnownFacts("/aws/lambda/payments-worker", retention_days=7),
    KnownFacts("/aws/lambda/prod-ledger", retention_days=90), KnownFacts("/aws/lambda/reporting", retention_days=731),
    KnownFacts("/aws/lambda/log-shipper"), KnownFacts("/aws/lambda/sandbox-experiment"),
    KnownFacts("/aws/lambda/noisy-batch", tags={"log-group-governor:opt-out": "true"}),
    KnownFacts("/archive/audit-trail", "INFREQUENT_ACCESS"),
    KnownFacts("/aws/lambda/checkout", filters=(SubscriptionFilter("vendor-apm", VENDOR), SubscriptionFilter("siem", SIEM))),
    KnownFacts("/ecs/search-indexer", filters=(SubscriptionFilter("vendor-apm", VENDOR),)),
]


def decisions() -> dict[str, list[str]]:
    """Every configuration's subscription and retention decision for every combination of the facts above, and the demo's
    groups under the demo's configuration (cdk.json and its overrides)."""
    found = {}
    demo = Policy(parse_policy_config({**shipped_config(), **DEMO_OVERRIDES}))
    found["demo-groups"] = [f"{f.name}|{_decided(demo.subscription(f))}|{_decided(demo.retention(f))}" for f in DEMO_GROUPS]
    for label, overrides in CONFIGS.items():
        policy = Policy(parse_policy_config({**shipped_config(), **overrides}))
        rows = []
        for name, cls, days, tags, filters in product(NAMES, CLASSES, RETENTIONS, TAGS, FILTERS):
            facts = KnownFacts(name, cls, days, tags, filters)
            sub, ret = policy.subscription(facts), policy.retention(facts)
            rows.append(f"{name}|{cls}|{days}|{sorted(tags.items())}|{[f.name for f in filters]}|"
                        f"{sub.action.value}:{sub.reason.value}:{sub.subscription_filter.filter_pattern if sub.subscription_filter else '-'}|"
                        f"{ret.action.value}:{ret.reason.value}:{ret.retention_days}")
        found[label] = rows
    return found


def _decided(decision: Any) -> str:
    return f"{decision.action.value}:{decision.reason.value}:{decision.detail}"


def test_todays_keys_decide_every_group_as_they_did_before_rules() -> None:
    """The golden file was written by this function at the commit before governance rules (540ac34's policy core)."""
    golden = json.loads(gzip.decompress(GOLDEN.read_bytes()))
    now = decisions()
    assert set(now) == set(golden)
    for label in golden:
        changed = [(before, after) for before, after in zip(golden[label], now[label]) if before != after]
        size = len(DEMO_GROUPS) if label == "demo-groups" else 8 * 4 * 5 * 3 * 5
        assert not changed and len(now[label]) == len(golden[label]) == size, (label, changed[:3])


def _policy(rules: list[dict[str, Any]], **flat: Any) -> Policy:
    return Policy(parse_policy_config({"destinationArn": DESTINATION, "rules": rules, **flat}))


PRODUCTION = {"name": "production", "match": {"namePrefixes": ["/aws/lambda/prod-"]}, "retention": {"days": 365}, "deletionProtection": True}
NOISY = {"name": "noisy batch", "match": {"tags": {"workload": "batch"}}, "retention": {"days": 7},
         "shipping": {"enabled": True, "filterPattern": "ERROR"}}


def test_each_control_is_decided_by_the_first_rule_that_matches_and_sets_it() -> None:
    policy = _policy([PRODUCTION, NOISY], defaultRetentionDays=30)
    prod_batch = KnownFacts("/aws/lambda/prod-etl", tags={"workload": "batch"})

    assert policy.resolve(prod_batch, RETENTION).rule.source == "rules[0] 'production'"  # the first that sets retention
    assert policy.resolve(prod_batch, SHIPPING).value.filter_pattern == "ERROR"  # production sets no shipping: the next rule does
    assert policy.resolve(prod_batch, DELETION_PROTECTION).value is True
    plain = KnownFacts("/aws/lambda/orders")
    assert policy.resolve(plain, RETENTION).rule.source == "defaultRetentionDays, filterPattern"  # the flat keys come last
    assert policy.resolve(plain, DELETION_PROTECTION).rule is None  # no rule sets it: left as it is
    assert policy.retention(prod_batch).retention_days == 365 and policy.retention(KnownFacts("/x", tags={"workload": "batch"})).retention_days == 7


def test_a_rule_that_turns_shipping_off_removes_only_the_governors_own_filter() -> None:
    policy = _policy([{"match": {"logGroupClasses": ["STANDARD"], "namePatterns": ["^/dev/"]}, "shipping": {"enabled": False}}])
    ours = SubscriptionFilter("log-group-governor", DESTINATION)

    removed = policy.subscription(KnownFacts("/dev/app", filters=(ours, SubscriptionFilter("vendor", OTHER))))
    skipped = policy.subscription(KnownFacts("/dev/app"))

    assert (removed.action, removed.reason, removed.subscription_filter) == (Action.REMOVE_FILTER, Reason.SHIPPING_OFF, ours)
    assert (skipped.action, skipped.reason) == (Action.SKIP, Reason.SHIPPING_OFF) and "rules[0]" in skipped.detail
    assert policy.subscription(KnownFacts("/prod/app")).action is Action.SUBSCRIBE


def test_a_rules_filter_pattern_is_the_groups_filter_and_an_old_one_is_updated_in_place() -> None:
    policy = _policy([NOISY])
    batch = KnownFacts("/ecs/nightly", tags={"workload": "batch"}, filters=(SubscriptionFilter("log-group-governor", DESTINATION),))

    decision = policy.subscription(batch)

    assert (decision.action, decision.subscription_filter.filter_pattern) == (Action.UPDATE_FILTER, "ERROR")


def test_tags_are_read_only_when_a_rule_that_could_decide_needs_them() -> None:
    class Counting:
        reads = 0

        def __init__(self, name: str) -> None:
            self.name, self.log_group_class, self.retention_days, self.filters = name, "STANDARD", None, ()
            self.orphaned = self.retention_policy_name = None

        @property
        def tags(self) -> dict[str, str]:
            Counting.reads += 1
            return {}

    policy = _policy([{"match": {"namePrefixes": ["/prod/"], "tags": {"tier": "1"}}, "retention": {"days": 365}}], excludeTags={})

    policy.retention(Counting("/dev/app"))
    assert Counting.reads == 0  # the prefix fails first: no look-up
    policy.retention(Counting("/prod/app"))
    assert Counting.reads == 1


def test_explain_names_the_deciding_rule_and_why_each_earlier_one_did_not() -> None:
    policy = _policy([PRODUCTION, NOISY])

    resolved = policy.resolve(KnownFacts("/ecs/nightly", tags={"workload": "batch"}), RETENTION, explain=True)

    assert resolved.rule.source == "rules[1] 'noisy batch'"
    assert resolved.passed == (("rules[0] 'production'", "no name prefix matches"),)


@pytest.mark.parametrize("rules, says", [
    ({"match": {}}, "rules: expected a list"),
    ([{"match": {"namePrefixes": ["/a"]}}], "rules[0]: sets no control"),
    ([PRODUCTION, {"match": {"namePrefix": ["/a"]}, "retention": {"days": 7}}], "rules[1].match: unknown key(s) 'namePrefix' (did you mean 'namePrefixes'?)"),
    ([{"retention": {"days": 8}}], "rules[0].retention.days: 8 is not a retention"),
    ([{"retention": {"days": 7, "mode": "clamp"}}], "rules[0].retention.mode"),
    ([{"shipping": {"enabled": False, "filterPattern": "ERROR"}}], "rules[0].shipping.filterPattern"),
    ([{"match": {"namePatterns": ["("]}, "deletionProtection": True}], "rules[0].match.namePatterns"),
    ([{"match": {"logGroupClasses": ["COLD"]}, "deletionProtection": True}], "rules[0].match.logGroupClasses"),
    ([{"deletionProtection": "yes"}], "rules[0].deletionProtection: expected true or false"),
    ([{"dataProtection": {"identifiers": ["Email Address"]}}], "rules[0].dataProtection.identifiers: expected managed data identifiers"),
    ([{"dataProtection": {"identifiers": ["EmailAddress"], "mode": "strict"}}], "rules[0].dataProtection.mode"),
])
def test_a_bad_rule_is_refused_naming_its_index_and_key(rules: Any, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _policy(rules)
    assert says in str(refused.value)


def test_what_an_account_policy_cannot_say_is_refused() -> None:
    with pytest.raises(ConfigError, match="subscriptionMode account-policy cannot say"):
        _policy([NOISY], subscriptionMode="account-policy")
    with pytest.raises(ConfigError, match="retentionVia account-policy compiles retention"):
        _policy([PRODUCTION], retentionVia="account-policy")


def test_rules_travel_to_the_functions_as_configured() -> None:
    config = parse_policy_config({"destinationArn": DESTINATION, "rules": [PRODUCTION, NOISY]})

    assert parse_policy_config(config.to_json_dict()).rules == config.rules


if __name__ == "__main__":  # writes the golden file (run at the commit before rules: see the test's docstring)
    GOLDEN.write_bytes(gzip.compress((json.dumps(decisions(), indent=0) + "\n").encode(), mtime=0))


@pytest.mark.parametrize("label", sorted(CONFIGS))
def test_the_printed_rules_decide_every_group_as_the_flat_keys_do(label: str) -> None:
    """`log-group-governor rules` prints the flat keys as rules; configured instead of them, they decide the same."""
    from cli.rules import equivalent_rules

    flat = {**shipped_config(), **CONFIGS[label]}
    printed = equivalent_rules(parse_policy_config(flat))
    as_rules = {**flat, "rules": printed, "retentionOverrides": {}, "defaultRetentionDays": None, "filterPattern": ""}
    if flat.get("subscriptionMode") == "account-policy":
        as_rules["filterPattern"] = flat.get("filterPattern", "")  # the account's one policy keeps its pattern
    before, after = Policy(parse_policy_config(flat)), Policy(parse_policy_config(as_rules))

    for name, cls, days, tags, filters in product(NAMES, CLASSES, RETENTIONS, TAGS, FILTERS):
        facts = KnownFacts(name, cls, days, tags, filters)
        assert (before.subscription(facts), before.retention(facts)) == (after.subscription(facts), after.retention(facts)), facts


@pytest.mark.parametrize("rules, facts, action, reason", [
    ([], KnownFacts("/aws/lambda/prod-a"), Action.LEAVE, ProtectionReason.UNMANAGED),
    ([PRODUCTION], KnownFacts("/aws/lambda/prod-a"), ProtectionAction.PROTECT, ProtectionReason.OFF),
    ([PRODUCTION], KnownFacts("/aws/lambda/prod-a", facts={DELETION_PROTECTION: True}), Action.LEAVE, ProtectionReason.ON),
    ([PRODUCTION], KnownFacts("/aws/lambda/dev-a"), Action.LEAVE, ProtectionReason.UNMANAGED),
    # A rule of false stops a later rule's true, and protection someone else set stays on.
    ([{"match": {"namePrefixes": ["/aws/lambda/prod-scratch"]}, "deletionProtection": False}, PRODUCTION],
     KnownFacts("/aws/lambda/prod-scratch-1", facts={DELETION_PROTECTION: True}), Action.LEAVE, ProtectionReason.NOT_REQUIRED),
    ([PRODUCTION], KnownFacts("/aws/lambda/prod-a", tags={"log-group-governor:opt-out": "true"}), Action.SKIP, Reason.EXCLUDED_TAG),
])
def test_deletion_protection_is_turned_on_where_a_rule_requires_it_and_never_off(rules: list, facts: KnownFacts, action: Action,
                                                                                 reason: Reason) -> None:
    decision = _policy(rules, excludeTags={"log-group-governor:opt-out": "true"}).decide(facts, DELETION_PROTECTION)
    assert (decision.action, decision.reason) == (action, reason)


def test_only_a_rule_that_sets_deletion_protection_deploys_its_handler() -> None:
    assert _policy([]).config.event_aspects == ("subscription", "retention")
    assert _policy([PRODUCTION]).config.event_aspects == ("subscription", "retention", "protection")


KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GROUP_ARN = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/prod-orders"


def _key_policy(**statement: Any) -> str:
    """The CloudWatch Logs guide's key policy statement, with ``statement``'s changes."""
    logs = {"Effect": "Allow", "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"], "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/prod-*"}}}
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"},
        {k: v for k, v in {**logs, **statement}.items() if v is not None}]})


@pytest.mark.parametrize("document, admits", [
    (_key_policy(), True),
    (_key_policy(Condition=None), True),  # no condition: any group (usable, if broad)
    (_key_policy(Condition={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": GROUP_ARN}}), True),
    (_key_policy(Condition={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/*"}}), False),
    (_key_policy(Principal={"Service": "logs.us-east-1.amazonaws.com"}), False),  # another region's CloudWatch Logs
    (_key_policy(Action=["kms:Encrypt*", "kms:GenerateDataKey*"]), False),  # it could not decrypt what it wrote
    (_key_policy(Effect="Deny"), False),
    (None, False),
    ("not json", False),
])
def test_a_key_is_usable_only_if_its_policy_lets_this_regions_cloudwatch_logs_use_it_for_the_group(document: str | None, admits: bool) -> None:
    from governor.controls.kms_key import key_policy_admits

    assert (key_policy_admits(document, region="eu-west-1", group_arn=GROUP_ARN) is None) is admits


@pytest.mark.parametrize("facts, action, reason", [
    (KnownFacts("/aws/lambda/prod-orders"), KmsKeyAction.ASSOCIATE, KmsKeyReason.MISSING),
    (KnownFacts("/aws/lambda/prod-orders", facts={KMS_KEY: KEY}), Action.LEAVE, KmsKeyReason.ASSOCIATED),
    (KnownFacts("/aws/lambda/prod-orders", facts={KMS_KEY: KEY.replace("1234abcd", "99999999")}), Action.CONFLICT, KmsKeyReason.OTHER),
    (KnownFacts("/aws/lambda/dev-orders"), Action.LEAVE, KmsKeyReason.UNMANAGED),
])
def test_a_rules_key_is_associated_where_none_is_and_no_other_key_is_replaced(facts: KnownFacts, action: Action, reason: Reason) -> None:
    decision = _policy([{**PRODUCTION, "kmsKeyArn": KEY}]).decide(facts, KMS_KEY)

    assert (decision.action, decision.reason) == (action, reason)
    assert decision.payload == (KEY if action is KmsKeyAction.ASSOCIATE else None)


def test_a_kms_key_must_be_a_keys_arn_not_an_alias() -> None:
    with pytest.raises(ConfigError, match="rules\\[0\\].kmsKeyArn: expected a symmetric KMS key's ARN"):
        _policy([{"kmsKeyArn": "alias/logs"}])


PII = {"name": "pii", "match": {"namePrefixes": ["/aws/lambda/prod-"]}, "dataProtection": {"identifiers": ["EmailAddress", "CreditCardNumber"]}}


def _masking(*names: str) -> str:
    from governor.controls.data_protection import data_protection_document

    return data_protection_document(list(names), "/aws/lambda/prod-a")


@pytest.mark.parametrize("rule, current, action, reason, masked", [
    (PII, None, DataProtectionAction.PUT, DataProtectionReason.MISSING, {"CreditCardNumber", "EmailAddress"}),
    (PII, _masking("CreditCardNumber", "EmailAddress"), Action.LEAVE, DataProtectionReason.COMPLIANT, None),
    (PII, _masking("CreditCardNumber", "EmailAddress", "AwsSecretKey"), Action.LEAVE, DataProtectionReason.COMPLIANT, None),  # stricter stays
    (PII, _masking("AwsSecretKey"), DataProtectionAction.PUT, DataProtectionReason.NARROWER,
     {"AwsSecretKey", "CreditCardNumber", "EmailAddress"}),  # theirs kept, the rule's added
    ({**PII, "dataProtection": {**PII["dataProtection"], "mode": "exact"}}, _masking("CreditCardNumber", "EmailAddress", "AwsSecretKey"),
     DataProtectionAction.PUT, DataProtectionReason.DIFFERS, {"CreditCardNumber", "EmailAddress"}),
])
def test_data_protection_adds_the_rules_identifiers_and_narrows_someone_elses_policy_only_when_exact(
        rule: dict, current: str | None, action: Action, reason: Reason, masked: set[str] | None) -> None:
    from governor.controls.data_protection import masked_identifiers

    decision = _policy([rule]).decide(KnownFacts("/aws/lambda/prod-a", facts={"dataProtection": current}), "dataProtection")

    assert (decision.action, decision.reason) == (action, reason)
    assert masked_identifiers(decision.payload) == masked


def test_audit_findings_go_to_the_rules_log_group_which_is_never_audited_into_itself_and_someone_elses_stays() -> None:
    from governor.controls.data_protection import audit_log_group, data_protection_document

    audited = {**PII, "match": {}, "dataProtection": {**PII["dataProtection"], "auditLogGroup": "/audit/findings"}}
    policy = _policy([audited])

    put = policy.decide(KnownFacts("/aws/lambda/prod-a"), "dataProtection")
    itself = policy.decide(KnownFacts("/audit/findings"), "dataProtection")
    theirs = data_protection_document(["CreditCardNumber", "EmailAddress"], "x", audit_log_group="/security/findings")
    kept = policy.decide(KnownFacts("/aws/lambda/prod-b", facts={"dataProtection": theirs}), "dataProtection")

    assert put.action is DataProtectionAction.PUT and audit_log_group(put.payload) == "/audit/findings"
    assert (itself.action, itself.reason) == (Action.LEAVE, DataProtectionReason.UNMANAGED)
    assert (kept.action, kept.reason) == (Action.LEAVE, DataProtectionReason.COMPLIANT)  # minimum: their destination stands


def test_only_a_rule_that_says_exact_turns_protection_off_or_replaces_another_key() -> None:
    scratch = {"name": "scratch", "match": {"namePrefixes": ["/scratch/"]}, "deletionProtection": False, "kmsKeyArn": KEY,
               "exact": ["deletionProtection", "kmsKeyArn"]}
    policy = _policy([scratch])
    theirs = KnownFacts("/scratch/a", facts={DELETION_PROTECTION: True, KMS_KEY: KEY.replace("1234abcd", "99999999")})

    off, key = policy.decide(theirs, DELETION_PROTECTION), policy.decide(theirs, KMS_KEY)

    assert (off.action, off.reason) == (ProtectionAction.UNPROTECT, ProtectionReason.NOT_WANTED)
    assert (key.action, key.payload) == (KmsKeyAction.ASSOCIATE, KEY) and "(exact) replaces it" in key.detail
    lenient = _policy([{**scratch, "exact": []}])
    assert lenient.decide(theirs, DELETION_PROTECTION).action is Action.LEAVE and lenient.decide(theirs, KMS_KEY).action is Action.CONFLICT


@pytest.mark.parametrize("exact", [["retention"], ["kmsKeyArn"], "deletionProtection"])
def test_exact_names_only_controls_the_rule_sets_among_those_without_a_mode(exact: Any) -> None:
    with pytest.raises(ConfigError, match="rules\\[0\\].exact"):
        _policy([{"retention": {"days": 7}, "deletionProtection": False, "exact": exact}])


AUDIT_STREAM = "arn:aws:kinesis:eu-west-1:123456789012:stream/audit-logs"
STREAM_ROLE = "arn:aws:iam::123456789012:role/CWLtoKinesisRole"


def test_a_rule_can_ship_its_groups_to_a_destination_of_its_own() -> None:
    policy = _policy([{"name": "audit", "match": {"namePrefixes": ["/audit/"]},
                       "shipping": {"enabled": True, "destinationArn": AUDIT_STREAM, "destinationRoleArn": STREAM_ROLE}}])

    audit = policy.subscription(KnownFacts("/audit/trail", filters=(SubscriptionFilter("log-group-governor", DESTINATION),)))
    other = policy.subscription(KnownFacts("/app/orders"))

    assert (audit.action, audit.subscription_filter) == (Action.UPDATE_FILTER, SubscriptionFilter("log-group-governor", AUDIT_STREAM, "", STREAM_ROLE))
    assert other.subscription_filter.destination_arn == DESTINATION
    assert [d.arn for d in policy.destinations] == [DESTINATION, AUDIT_STREAM]


@pytest.mark.parametrize("shipping, flat, says", [
    ({"enabled": True, "destinationArn": "arn:aws:lambda:eu-west-1:123456789012:function:other"}, {}, "a Lambda function per rule is not offered"),
    ({"enabled": True, "destinationArn": AUDIT_STREAM}, {}, "destinationRoleArn: a kinesis destination needs"),
    ({"enabled": False, "destinationArn": AUDIT_STREAM, "destinationRoleArn": STREAM_ROLE}, {}, "ships nowhere"),
    ({"enabled": True, "destinationArn": AUDIT_STREAM, "destinationRoleArn": STREAM_ROLE}, {"subscriptionMode": "account-policy"},
     "one destination"),
])
def test_a_rules_destination_is_refused_where_it_cannot_work(shipping: dict, flat: dict, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        _policy([{"match": {"namePrefixes": ["/audit/"]}, "shipping": shipping}], **flat)


# --- issue 26, item 13: a name pattern that backtracks catastrophically is refused at synth ---------------------------

@pytest.mark.parametrize("pattern, why", [
    ("(a+)+$", "a quantifier inside a quantified group"),
    (r"^/aws/lambda/(?:[a-z]+-)*prod$", "a quantifier inside a quantified group"),
    (r"^(\w+\s?)*$", "a quantifier inside a quantified group"),
    ("(a|aa)+", "an alternation inside a quantified group"),
    (r"(\w+)-\1", "a backreference"),
    ("^(?!/tmp/)", "a lookaround"),
    (r"(?<=/)prod", "a lookaround"),
    (".*-.*-.*x", "more than two"),
    (r"\w+\d*[a-z]+$", "more than two"),
    # Review of #26: two unbounded quantifiers then a fixed count, which costs its length on every way (3.9 s to 24 s on one name).
    (r"\w*\w*\w{100}!", "more than two"),
    (r"\w*\w*(?:\w{2}){64}!", "more than two"),
    (r"\w*\w*(?:(?:\w){4}){32}!", "more than two"),
    (r"\w*\w*a{100}!", "more than two"),
])
def test_issue26_a_name_pattern_that_can_backtrack_catastrophically_is_refused_at_synth(pattern: str, why: str) -> None:
    from stacks.settings import DeploymentSettings

    context = {**{k: v for k, v in json.loads((ROOT / "cdk.json").read_text())["context"].items()},
               "governor:destinationArn": DESTINATION,
               "governor:rules": [PRODUCTION, {"name": "slow", "match": {"namePatterns": ["^/ok/", pattern]}, "deletionProtection": True}]}

    with pytest.raises(ConfigError) as refused:
        DeploymentSettings.from_context(context)

    assert f"rules[1].match.namePatterns[1]: {pattern!r}" in str(refused.value) and why in str(refused.value)
    with pytest.raises(ConfigError, match=re.escape(f"excludePatterns[0]: {pattern!r}")):
        parse_policy_config({"destinationArn": DESTINATION, "excludePatterns": [pattern]})


def test_issue26_name_patterns_that_match_in_bounded_time_are_still_taken() -> None:
    patterns = ["^/aws/lambda/prod-", r"-\d+$", "^/ecs/[^/]+/.*$", "(prod|staging)-api", r"^/aws/lambda/(a|b)+$", "[0-9]{12}",
                r"(?:-v\d)?$", "(?i)^/AWS/"]
    policy = _policy([{"match": {"namePatterns": patterns}, "deletionProtection": True}], excludePatterns=patterns[:2])
    assert [p.pattern for p in policy.rules[0].match.name_patterns] == patterns

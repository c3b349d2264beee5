"""The account-level subscription filter policy's selection, from the policy core's decisions."""

from __future__ import annotations

import json

import pytest

from governor.account_policy import SELECTION_LIMIT_BYTES, SelectionTooLarge, must_not_ship, selection
from governor.config import parse_policy_config
from governor.policy import KnownFacts, Policy, SubscriptionFilter

SHIPPER = "arn:aws:lambda:eu-west-1:123456789012:function:log-shipper"


def _policy(**raw: object) -> Policy:
    return Policy(parse_policy_config({"destinationArn": SHIPPER, "excludePrefixes": ["/tmp/"], "excludePatterns": ["-debug$"],
                                       "excludeTags": {"opt-out": "true"}, "shippingPathLogGroups": ["/consumer/*", "/stream-proc"],
                                       **raw}))


def test_what_must_not_ship_is_what_the_policy_core_excludes_or_guards() -> None:
    policy = _policy()
    ours = SubscriptionFilter("log-group-governor", SHIPPER)

    assert must_not_ship(policy, KnownFacts("/tmp/scratch"))
    assert must_not_ship(policy, KnownFacts("/app/api-debug"))
    assert must_not_ship(policy, KnownFacts("/app/api", tags={"opt-out": "true"}))
    assert must_not_ship(policy, KnownFacts("/app/api", tags={"opt-out": "true"}, filters=(ours,)))  # opted out since
    assert must_not_ship(policy, KnownFacts("/consumer/shard-1"))  # a guarded prefix: only as an existing group
    assert must_not_ship(policy, KnownFacts("/aws/lambda/log-shipper"))
    assert not must_not_ship(policy, KnownFacts("/app/api"))
    assert not must_not_ship(policy, KnownFacts("/archive/x", log_group_class="INFREQUENT_ACCESS"))  # AWS leaves it out itself


def test_the_selection_always_names_the_guards_exact_names_even_before_those_groups_exist() -> None:
    chosen = selection(_policy(), ["/tmp/scratch", "/app/api-debug", "/tmp/scratch"])

    assert chosen.names == ("/app/api-debug", "/aws/lambda/log-shipper", "/stream-proc", "/tmp/scratch")
    assert chosen.criteria == 'LogGroupName NOT IN ["/app/api-debug", "/aws/lambda/log-shipper", "/stream-proc", "/tmp/scratch"]'
    assert json.loads(chosen.criteria.removeprefix("LogGroupName NOT IN ")) == list(chosen.names)
    assert not chosen.near_limit


def test_a_list_past_25_kb_is_refused_never_truncated_and_one_near_it_says_so() -> None:
    policy = _policy()
    name_bytes = 100
    near = [f"/app/{i:05d}-" + "x" * (name_bytes - 12) for i in range(int(SELECTION_LIMIT_BYTES * 0.85) // (name_bytes + 4))]
    assert selection(policy, near).near_limit

    too_many = near + [f"/app/more-{i:05d}-" + "y" * 80 for i in range(60)]
    with pytest.raises(SelectionTooLarge, match=r"would take [\d,]+ bytes for [\d,]+ log groups, more than the 25,600 AWS accepts.*nothing was written"):
        selection(policy, too_many)


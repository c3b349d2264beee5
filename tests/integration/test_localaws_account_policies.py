"""localaws' model of account-level policies (moto has none), through boto3 as the governor will call
it: each test states a rule of botocore 1.44.8's PutAccountPolicy documentation."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localaws.account import LocalAccount

DAY_S = 86_400


def _retention(account: LocalAccount, name: str, days: Any, *, prefixes: list[str] | None = None, mode: str = "RETROACTIVE",
               dry_run: bool = False) -> dict[str, Any]:
    request: dict[str, Any] = {"policyName": name, "policyType": "RETENTION_POLICY",
                               "policyDocument": json.dumps({"retentionInDays": days, "enforcementMode": mode})}
    if prefixes is not None:
        request["selectionCriteria"] = "LogGroupNamePrefix IN " + json.dumps(prefixes)
    if dry_run:
        request["dryRun"] = True
    return account.logs.put_account_policy(**request)


def _later(account: LocalAccount, seconds: float) -> None:
    account.gaps.account_policies.clock = lambda: time.time() + seconds


def _shown(account: LocalAccount, name: str) -> tuple[str | None, int | None]:
    [group] = [g for g in account.logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    return group.get("retentionPolicyName"), group.get("retentionInDays")


def test_a_retention_policy_takes_effect_after_24_hours_and_an_update_after_24_more(account: LocalAccount) -> None:
    account.create_log_group("/aws/lambda/a", retention_days=7)
    _retention(account, "baseline", 90)

    assert _shown(account, "/aws/lambda/a") == (None, 7)  # not yet
    _later(account, DAY_S + 1)
    assert _shown(account, "/aws/lambda/a") == ("baseline", 90)  # replaces the group's own retention
    _retention(account, "baseline", 365)
    assert _shown(account, "/aws/lambda/a") == ("baseline", 90)  # the previous document stays in effect meanwhile
    _later(account, 2 * DAY_S + 2)
    assert _shown(account, "/aws/lambda/a") == ("baseline", 365)


def test_the_longest_retention_wins_never_expire_longest_and_a_tie_names_the_first_created(account: LocalAccount) -> None:
    account.create_log_group("/aws/lambda/a")
    account.create_log_group("/ecs/b")
    _retention(account, "all-90", 90)
    _retention(account, "lambda-365", 365, prefixes=["/aws/lambda/"])
    _retention(account, "ecs-90", 90, prefixes=["/ecs/"])
    _later(account, DAY_S + 1)

    assert _shown(account, "/aws/lambda/a") == ("lambda-365", 365)
    assert _shown(account, "/ecs/b") == ("all-90", 90)
    _retention(account, "lambda-forever", "NEVER_EXPIRE", prefixes=["/aws/lambda/"])
    _later(account, 2 * DAY_S + 2)
    assert _shown(account, "/aws/lambda/a") == ("lambda-forever", None)


def test_new_only_leaves_the_groups_that_existed_before_it(account: LocalAccount) -> None:
    account.create_log_group("/old", retention_days=7)
    time.sleep(0.01)  # moto stamps groups in real milliseconds: /old, the policy, /new, in that order (a slow machine only widens the gaps)
    _retention(account, "new-groups", 90, mode="NEW_ONLY")
    time.sleep(0.01)
    account.create_log_group("/new")
    _later(account, DAY_S + 1)

    assert _shown(account, "/old") == (None, 7)
    assert _shown(account, "/new") == ("new-groups", 90)


def test_a_dry_run_counts_longer_shorter_and_unchanged_and_stores_nothing(account: LocalAccount) -> None:
    account.create_log_group("/a", retention_days=30)
    account.create_log_group("/b", retention_days=365)
    account.create_log_group("/c")  # never expires
    account.create_log_group("/d", retention_days=90)

    result = _retention(account, "baseline", 90, dry_run=True)["dryRunResult"]

    assert (result["increasedRetentionLogGroupCount"], result["decreasedRetentionLogGroupCount"],
            result["unchangedRetentionLogGroupCount"], result["totalMatchedLogGroups"]) == (1, 2, 1, 4)
    # "Up to 20 log groups in the scope of the policy ... can include log groups whose effective retention would not change."
    assert {i["logGroupName"]: (i["currentRetention"], i["proposedRetention"]) for i in result["topLogGroupsImpacted"]} == {
        "/a": ("30", "90"), "/b": ("365", "90"), "/c": ("NEVER_EXPIRE", "90"), "/d": ("90", "90")}
    assert account.logs.describe_account_policies(policyType="RETENTION_POLICY")["accountPolicies"] == []


def test_a_dry_run_counts_only_the_groups_in_the_policys_scope(account: LocalAccount) -> None:
    """DryRunResult.totalMatchedLogGroups: "the number of log groups in the scope of the policy that were analyzed"."""
    account.create_log_group("/aws/lambda/a", retention_days=7)
    account.create_log_group("/ecs/b", retention_days=7)
    account.create_log_group("/ecs/c")

    result = _retention(account, "lambda", 90, prefixes=["/aws/lambda/"], dry_run=True)["dryRunResult"]

    assert (result["totalMatchedLogGroups"], result["increasedRetentionLogGroupCount"], result["decreasedRetentionLogGroupCount"]) == (1, 1, 0)
    assert [i["logGroupName"] for i in result["topLogGroupsImpacted"]] == ["/aws/lambda/a"]


@pytest.mark.parametrize(("call", "code", "message"), [
    (lambda a: _retention(a, "short", 14), "InvalidParameterException", "at least 30 days"),
    (lambda a: _retention(a, "bad-mode", 90, mode="ALWAYS"), "InvalidParameterException", "enforcementMode"),
    (lambda a: a.logs.put_account_policy(policyName="regex", policyType="RETENTION_POLICY",
                                         policyDocument=json.dumps({"retentionInDays": 90, "enforcementMode": "RETROACTIVE"}),
                                         selectionCriteria='LogGroupName NOT IN ["/a"]'), "InvalidParameterException", "LogGroupNamePrefix only"),
    (lambda a: [_retention(a, f"p{i}", 90, prefixes=[f"/p{i}/"]) for i in range(21)], "LimitExceededException", "20 retention policies"),
])
def test_what_aws_refuses_is_refused(account: LocalAccount, call: Any, code: str, message: str) -> None:
    with pytest.raises(ClientError) as refused:
        call(account)

    assert refused.value.response["Error"]["Code"] == code and message in refused.value.response["Error"]["Message"]


def test_one_subscription_filter_policy_with_a_not_in_list_of_at_most_25_kb(account: LocalAccount, shipper_arn: str) -> None:
    document = json.dumps({"DestinationArn": shipper_arn, "FilterPattern": ""})
    account.logs.put_account_policy(policyName="ship-all", policyType="SUBSCRIPTION_FILTER_POLICY", policyDocument=document,
                                    selectionCriteria='LogGroupName NOT IN ["/aws/lambda/log-shipper"]')

    [stored] = account.logs.describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY")["accountPolicies"]
    assert stored["selectionCriteria"] == 'LogGroupName NOT IN ["/aws/lambda/log-shipper"]'
    with pytest.raises(ClientError, match="one subscription filter policy"):
        account.logs.put_account_policy(policyName="another", policyType="SUBSCRIPTION_FILTER_POLICY", policyDocument=document)
    too_long = "LogGroupName NOT IN " + json.dumps([f"/g/{i:05d}-" + "x" * 90 for i in range(300)])
    with pytest.raises(ClientError, match="at most 25600"):
        account.logs.put_account_policy(policyName="ship-all", policyType="SUBSCRIPTION_FILTER_POLICY", policyDocument=document,
                                        selectionCriteria=too_long)
    account.logs.delete_account_policy(policyName="ship-all", policyType="SUBSCRIPTION_FILTER_POLICY")
    assert account.logs.describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY")["accountPolicies"] == []

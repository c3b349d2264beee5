"""Clean uninstall: the custom resource's is_complete, called as CDK's Provider framework calls it."""

from __future__ import annotations

import io
import os
from typing import Any

from governor.handlers.backfill import build_parts
from governor.handlers.uninstall import PHYSICAL_ID, handle_is_complete, is_complete, on_event
from localaws.account import LocalAccount
from localaws.lambda_runtime import LocalLambdaContext, SimulatedClock, handler_output_to, invoke

FILTER = "log-group-governor"
STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/LogGroupGovernor/6f3c1a40-cd2b-11f0-9a1e-0a8f3b2c4d5e"


def _event(request_type: str) -> dict[str, Any]:
    """What the Provider framework hands isComplete: the CloudFormation request plus onEvent's answer."""
    return {
        "RequestType": request_type, "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:framework-onEvent",
        "ResponseURL": "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/x", "StackId": STACK_ID,
        "RequestId": "5c9e1f3a-8b2d-4e6f-a1c3-7d9e0b2f4a6c", "LogicalResourceId": "RemoveFiltersOnDelete57412CFF",
        "ResourceType": "Custom::RemoveFiltersOnDelete", "ResourceProperties": {"ServiceToken": "x"}, "PhysicalResourceId": PHYSICAL_ID,
    }


def test_deleting_the_stack_removes_only_the_governors_filters(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    vendor = account.create_function("vendor-apm-forwarder")
    ours = [account.create_log_group(f"/aws/lambda/svc-{i:03d}", filters=[(FILTER, shipper_arn)]) for i in range(60)]
    shared = account.create_log_group("/ecs/shared", filters=[(FILTER, shipper_arn), ("vendor-apm", vendor)])
    foreign = account.create_log_group("/ecs/foreign", filters=[("hand-made", shipper_arn)])  # ships to us, but not our filter
    account.create_log_group("/archive/audit", log_group_class="INFREQUENT_ACCESS")
    puts_before = account.calls["logs.PutSubscriptionFilter"], account.calls["logs.PutRetentionPolicy"]

    assert invoke(on_event, _event("Delete"), function_name="uninstall-start", out=io.StringIO()) == {"PhysicalResourceId": PHYSICAL_ID}
    answer = invoke(is_complete, _event("Delete"), function_name="uninstall-remover", out=io.StringIO(), timeout_ms=900_000)

    assert answer == {"IsComplete": True}
    assert all(account.snapshot(name)["filters"] == {} for name in ours)
    assert account.snapshot(shared)["filters"] == {"vendor-apm": vendor}
    assert account.snapshot(foreign)["filters"] == {"hand-made": shipper_arn}
    assert account.calls["logs.DeleteSubscriptionFilter"] == 61
    assert (account.calls["logs.PutSubscriptionFilter"], account.calls["logs.PutRetentionPolicy"]) == puts_before  # nothing else written


def test_creating_or_updating_the_stack_removes_nothing(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    account.create_log_group("/aws/lambda/svc", filters=[(FILTER, shipper_arn)])

    for request_type in ("Create", "Update"):
        assert invoke(is_complete, _event(request_type), function_name="uninstall-remover", out=io.StringIO()) == {"IsComplete": True}
    assert account.calls["logs.DescribeLogGroups"] == 0  # not a look at any group
    assert account.snapshot("/aws/lambda/svc")["filters"] == {FILTER: shipper_arn}


def test_a_removal_longer_than_a_call_resumes_and_a_second_delete_attempt_continues(account: LocalAccount, shipper_arn: str,
                                                                                   configure: Any) -> None:
    configure(apiQuotasTps={})  # the published quotas, in simulated time
    names = [account.create_log_group(f"/aws/lambda/svc-{i:03d}", filters=[(FILTER, shipper_arn)]) for i in range(120)]
    clock = SimulatedClock()
    parts = build_parts(os.environ, clock=clock.monotonic, sleep=clock.sleep)
    answers = []
    with handler_output_to(io.StringIO()):
        while not answers or not answers[-1]["IsComplete"]:
            # A slice of a quarter of Lambda's ceiling: the page margin leaves time for about one page.
            context = LocalLambdaContext("uninstall-remover", timeout_ms=150_000, clock=clock.monotonic)
            answers.append(handle_is_complete(_event("Delete"), context, parts))
            assert len(answers) < 10

    assert [a["IsComplete"] for a in answers][-1] is True and len(answers) > 1
    assert all(account.snapshot(name)["filters"] == {} for name in names)
    assert account.calls["logs.DeleteSubscriptionFilter"] == 120  # no group twice


def test_in_account_policy_mode_deleting_the_stack_deletes_the_governors_policy_and_leftover_filters(
        account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    import json

    from governor.aws import LogsGateway
    from governor.policy import Policy
    from governor.runtime import Settings
    from governor.subscription_policy import SubscriptionPolicyKeeper

    configure(subscriptionMode="account-policy")
    account.create_log_group("/aws/lambda/not-migrated", filters=[(FILTER, shipper_arn)])
    settings = Settings.from_environ(os.environ)
    SubscriptionPolicyKeeper(lambda: Policy(settings.config), LogsGateway(account.client("logs"))).replace([])
    account.logs.put_account_policy(policyName="security-team", policyType="RETENTION_POLICY",
                                    policyDocument=json.dumps({"retentionInDays": 365, "enforcementMode": "RETROACTIVE"}))

    answer = invoke(is_complete, _event("Delete"), function_name="uninstall-remover", out=io.StringIO(), timeout_ms=900_000)

    assert answer == {"IsComplete": True}
    assert account.logs.describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY")["accountPolicies"] == []
    assert account.snapshot("/aws/lambda/not-migrated")["filters"] == {}
    assert [p["policyName"] for p in account.logs.describe_account_policies(policyType="RETENTION_POLICY")["accountPolicies"]] == ["security-team"]

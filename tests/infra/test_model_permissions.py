"""Every permission the pinned API model says a call needs, on every role that makes the call.

The model of CloudWatch Logs (botocore, as pinned in requirements-dev.txt) documents extra permissions
for account-level policies: "To see subscription filter policies, you must have the
logs:DescribeSubscriptionFilters and logs:DescribeAccountPolicies permissions", and likewise for
creating and deleting them, and iam:PassRole for a destination other than a Lambda function. These
tests read those sentences from the model itself, so a role that drops one fails here, not on deploy.
"""

from __future__ import annotations

import re
import botocore.session
import pytest

from tests.infra.conftest import ACCOUNT, REGION, Synthesized, synthesize
from tests.infra.test_stack import _actions

#: "To see subscription filter policies, you must have the logs:A and logs:B permissions."
_SENTENCE = re.compile(r"To (?:see|create|delete) (?:a |an )?(?P<what>[a-z ]+?) polic(?:y|ies), you must have the "
                       r"(?P<first>logs:\w+)(?: and (?P<second>logs:\w+))? permissions?\.")
_PASS_ROLE = re.compile(r"To perform a (?P<operation>\w+) subscription filter operation for any destination except a Lambda function, "
                        r"you must also have the iam:PassRole permission")
_POLICY_TYPES = {"subscription filter": "SUBSCRIPTION_FILTER_POLICY", "retention": "RETENTION_POLICY"}

#: The account-policy calls each role makes (lambdas/governor/subscription_policy.py through aws.LogsGateway):
#: (handler suffix, operation, policy type).
CALLS = [
    ("subscribe_log_group", "DescribeAccountPolicies", "SUBSCRIPTION_FILTER_POLICY"),
    ("subscribe_log_group", "PutAccountPolicy", "SUBSCRIPTION_FILTER_POLICY"),
    ("backfill.handler", "DescribeAccountPolicies", "SUBSCRIPTION_FILTER_POLICY"),
    ("backfill.handler", "PutAccountPolicy", "SUBSCRIPTION_FILTER_POLICY"),
    ("uninstall.is_complete", "DescribeAccountPolicies", "SUBSCRIPTION_FILTER_POLICY"),
    ("uninstall.is_complete", "DeleteAccountPolicy", "SUBSCRIPTION_FILTER_POLICY"),
]


def model_requirements() -> dict[tuple[str, str], set[str]]:
    """(operation, policy type) -> the actions the model's documentation of the operation names."""
    model = botocore.session.get_session().get_service_model("logs")
    found: dict[tuple[str, str], set[str]] = {}
    for operation in ("DescribeAccountPolicies", "PutAccountPolicy", "DeleteAccountPolicy"):
        text = re.sub(r"<[^>]+>", "", model.operation_model(operation).documentation)
        for match in _SENTENCE.finditer(text):
            policy_type = _POLICY_TYPES.get(match["what"].strip())
            if policy_type:
                found[(operation, policy_type)] = {a for a in (match["first"], match["second"]) if a}
        if _PASS_ROLE.search(text):
            found.setdefault((operation, "iam:PassRole"), {"iam:PassRole"})
    return found


def test_the_model_says_what_account_policies_need() -> None:
    """The sentences are there to read (a model upgrade that rewords them fails here first)."""
    found = model_requirements()

    assert found[("DescribeAccountPolicies", "SUBSCRIPTION_FILTER_POLICY")] == {"logs:DescribeSubscriptionFilters", "logs:DescribeAccountPolicies"}
    assert found[("PutAccountPolicy", "SUBSCRIPTION_FILTER_POLICY")] == {"logs:PutSubscriptionFilter", "logs:PutAccountPolicy"}
    assert found[("DeleteAccountPolicy", "SUBSCRIPTION_FILTER_POLICY")] == {"logs:DeleteSubscriptionFilter", "logs:DeleteAccountPolicy"}
    assert found[("PutAccountPolicy", "RETENTION_POLICY")] == {"logs:PutRetentionPolicy", "logs:PutAccountPolicy"}
    assert ("PutAccountPolicy", "iam:PassRole") in found


@pytest.fixture(scope="module")
def account_policy_stacks() -> list[Synthesized]:
    """Account-policy mode to a Lambda of the account, and to an organization's logs destination with a sender role."""
    return [
        synthesize(subscriptionMode="account-policy", destinationArn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:log-shipper",
                   removeFiltersOnDelete=True, createTrail=False),
        synthesize(subscriptionMode="account-policy", destinationArn=f"arn:aws:logs:{REGION}:111111111111:destination:archive",
                   senderRole=True, removeFiltersOnDelete=True, createTrail=False),
    ]


@pytest.mark.parametrize(("handler", "operation", "policy_type"), CALLS)
def test_every_role_has_what_the_model_requires_for_its_account_policy_calls(
        account_policy_stacks: list[Synthesized], handler: str, operation: str, policy_type: str) -> None:
    required = model_requirements()[(operation, policy_type)]
    for stack in account_policy_stacks:
        actions = _actions(stack.role_policy_of(stack.function(handler)))
        assert required <= actions, f"{handler} calls {operation} ({policy_type}) without {sorted(required - actions)}"


def test_a_role_that_writes_the_policy_for_a_logs_destination_may_pass_the_sender_role(account_policy_stacks: list[Synthesized]) -> None:
    stack = account_policy_stacks[1]
    [sender_id] = [k for k, r in stack.resources.items() if r["Type"] == "AWS::IAM::Role"
                   and r["Properties"].get("Description", "").startswith("log-group-governor: lets CloudWatch Logs prove")]
    for handler in ("subscribe_log_group", "backfill.handler"):
        passes = [s for s in stack.role_policy_of(stack.function(handler)) if s["Action"] == "iam:PassRole"]
        assert [s["Resource"] for s in passes] == [{"Fn::GetAtt": [sender_id, "Arn"]}], handler
        assert passes[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "logs.amazonaws.com"}}

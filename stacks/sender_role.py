"""The sender role a member passes to an organization-wide CloudWatch Logs destination.

When a destination's access policy admits an organization (``aws:PrincipalOrgID``) rather than
listing accounts, CloudWatch Logs assumes a role *in the sender account* to check that the sender
belongs to the organization, and the sender names that role in every ``PutSubscriptionFilter``
(``roleArn``) and in its SUBSCRIPTION_FILTER_POLICY document (``RoleArn``). Source: the CloudWatch Logs
guide, "Step 2: (Only if using an organization) Create an IAM role" (CreateSubscriptionFilter-IAMrole)
and its account-level twin: a role trusted by ``logs.amazonaws.com`` with ``logs:PutLogEvents`` on the
sender's log groups that carry the filter.

The trust is the guide's own: ``logs.amazonaws.com`` with no condition. No page says CloudWatch Logs sends
``aws:SourceArn`` (or any other key) when it assumes a *sender* role, and a condition it does not meet
would make every member ship nothing (#27). What the role allows is narrow: ``logs:PutLogEvents`` on this
account's own log groups.
"""

from __future__ import annotations

from aws_cdk import Stack, Token
from aws_cdk import aws_iam as iam
from constructs import Construct

from .functions import acknowledge, log_groups_arn


class SenderRole(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self, "Role",
            assumed_by=iam.ServicePrincipal("logs.amazonaws.com"),  # the guide's trust, unconditioned (see above)
            description="log-group-governor: lets CloudWatch Logs prove this account's membership of the organization to the "
                        "organization-wide log destination (the roleArn of the governor's filters and account policy)",
        )
        # The guide's example names the one group that carries the filter; the governor subscribes every group.
        self.role.add_to_policy(iam.PolicyStatement(actions=["logs:PutLogEvents"], resources=[f"{log_groups_arn(self)}:*"]))
        # cdk-nag names an unresolved region or account by its pseudo parameter.
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
        acknowledge(self.role, f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:{region}:{account}:log-group:*:*]",
                    "the sender role covers every log group the governor subscribes, whose names are unknown at deploy time; "
                    "scoped to this account and region")

    @property
    def role_arn(self) -> str:
        return self.role.role_arn

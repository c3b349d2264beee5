"""The member's read-only role the organization's archive pulls a new group's first lines through (#31).

The archive's pull function (its role named ``ARCHIVE_PULLER_ROLE`` in the central account, the account of the fleet
bus) is the one principal this role trusts. It may read the account's log groups and nothing else: look a group up
(DescribeLogGroups: its creationTime), read its filters (DescribeSubscriptionFilters: the governor's, where it ships and
since when) and its events (FilterLogEvents). The archive assumes it only in the account EventBridge names as a
request's sender, so no member can have another's group read. The central role must exist before a member is deployed
(IAM refuses a trust naming a role that does not exist): deploy the archive first, as docs/organization.md says.
"""

from __future__ import annotations

from aws_cdk import Stack, Token
from aws_cdk import aws_iam as iam
from constructs import Construct

from governor.archive_names import ARCHIVE_PULLER_ROLE, MEMBER_READER_ROLE

from .functions import acknowledge, log_groups_arn

#: What the archive reads through the role: nothing it could write with.
READER_ACTIONS = ("logs:DescribeLogGroups", "logs:DescribeSubscriptionFilters", "logs:FilterLogEvents")


class ReplayReader(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, central_account: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.puller_arn = f"arn:{stack.partition}:iam::{central_account}:role/{ARCHIVE_PULLER_ROLE.format(region=stack.region)}"
        self.role = iam.Role(
            self, "Role", role_name=MEMBER_READER_ROLE.format(region=stack.region),
            assumed_by=iam.ArnPrincipal(self.puller_arn),
            description="log-group-governor: lets the organization's archive read what a new log group held before the governor's "
                        "filter (read only), to replay it into the archive with this account as its owner")
        self.role.add_to_policy(iam.PolicyStatement(actions=list(READER_ACTIONS), resources=[log_groups_arn(self)]))
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
        acknowledge(self.role, f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:{region}:{account}:log-group:*]",
                    "the archive reads the groups the governor subscribes, whose names are unknown at deploy time; read-only "
                    "actions, scoped to this account and region")

"""The governor's small shared state: drift fight counters, conflicts, drift repaired since the last
reconcile, and the reconcile lock (see governor.aws.StateTable). Items expire by TTL."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

#: What the event handlers do with it: read a conflict, count a change, declare a conflict, count a repair.
EVENT_HANDLER_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem")
#: A reconcile run also lists conflicts and holds (and releases) the lock.
RECONCILE_ACTIONS = (*EVENT_HANDLER_ACTIONS, "dynamodb:Scan", "dynamodb:DeleteItem")


class StateTable(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.TableV2(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute="expiresAt",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            # Counters and conflicts expire within days; nothing here outlives the stack's purpose.
            removal_policy=RemovalPolicy.DESTROY,
        )

    def statement(self, actions: tuple[str, ...]) -> iam.PolicyStatement:
        return iam.PolicyStatement(actions=list(actions), resources=[self.table.table_arn])

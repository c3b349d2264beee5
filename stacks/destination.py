"""The log destination: the one configured, or (when none is) a built-in one the stack deploys."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from governor.config import Destination, DestinationKind

from .functions import log_groups_arn

#: Kinesis keeps records a day: consumers that fall behind by less catch up without loss.
BUILT_IN_STREAM_RETENTION = Duration.hours(24)


def grant_logs_invoke(scope: Construct, destination: Destination) -> None:
    """One statement for every log group of the account and region, never one per group: a Lambda
    resource policy is capped at 20 KB, which per-group statements exhaust after a few dozen groups."""
    lambda_.CfnPermission(
        scope,
        "LogsMayInvokeDestination",
        action="lambda:InvokeFunction",
        function_name=destination.arn,
        principal="logs.amazonaws.com",
        source_arn=log_groups_arn(scope),
        source_account=Stack.of(scope).account,
    )


class BuiltInStreamDestination(Construct):
    """An encrypted on-demand Kinesis stream that CloudWatch Logs may write to; log consumers attach to it."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.stream = kinesis.Stream(
            self,
            "Stream",
            encryption=kinesis.StreamEncryption.MANAGED,
            stream_mode=kinesis.StreamMode.ON_DEMAND,
            retention_period=BUILT_IN_STREAM_RETENTION,
        )
        self.role = iam.Role(
            self,
            "LogsDeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "logs.amazonaws.com",
                conditions={"StringLike": {"aws:SourceArn": log_groups_arn(self)}},
            ),
            description="log-group-governor: lets CloudWatch Logs deliver subscribed log events to the built-in stream",
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["kinesis:PutRecord"], resources=[self.stream.stream_arn]))
        self.destination = Destination(
            arn=self.stream.stream_arn,
            kind=DestinationKind.KINESIS,
            name=self.stream.stream_name,
            account=Stack.of(self).account,
            region=Stack.of(self).region,
            partition=Stack.of(self).partition,
            role_arn=self.role.role_arn,
        )

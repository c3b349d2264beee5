"""Letting CloudWatch Logs deliver to a Lambda destination."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from governor.config import Destination

from .functions import log_groups_arn



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

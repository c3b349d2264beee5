"""Clean uninstall (opt-in): on stack deletion, remove the governor's own filters from every group.

A custom resource whose delete runs an uninstall run (governor.handlers.uninstall) through CDK's
Provider framework: a minute between slices, one hour at most per delete attempt (the framework's
ceiling, and CloudFormation's for a custom resource's answer). Everything that
could subscribe a group again (the rules, the event handlers and their queues' mappings, the backfill
function, its state machine and schedule) depends on the custom resource, so CloudFormation deletes
it first and the removal does not race the governor itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from .functions import OWN_LOG_RETENTION, GovernorFunction, acknowledge

#: Lambda's ceiling: each slice stops starting pages two minutes before it (handlers.backfill).
SLICE_TIMEOUT = Duration.minutes(15)
#: The Provider framework's limit for one delete attempt (its documented maximum); a longer run
#: resumes on the next attempt.
TOTAL_TIMEOUT = Duration.hours(1)
QUERY_INTERVAL = Duration.minutes(1)


class FilterRemovalOnDelete(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, statements: Sequence[iam.PolicyStatement],
                 environment: Mapping[str, str], powertools_layer: lambda_.ILayerVersion) -> None:
        super().__init__(scope, construct_id)
        self.start = GovernorFunction(
            self, "Start", handler="governor.handlers.uninstall.on_event", statements=[],
            description="uninstall: answers the custom resource (the work is done by the remover)",
            environment={}, powertools_layer=powertools_layer, timeout=Duration.seconds(30),
        )
        self.remover = GovernorFunction(
            self, "Remover", handler="governor.handlers.uninstall.is_complete", statements=statements,
            description="uninstall: removes the governor's own subscription filters, a paced slice per call",
            environment=environment, powertools_layer=powertools_layer, timeout=SLICE_TIMEOUT,
        )
        provider = cr.Provider(
            self, "Provider", on_event_handler=self.start.function, is_complete_handler=self.remover.function,
            query_interval=QUERY_INTERVAL, total_timeout=TOTAL_TIMEOUT,
            log_group=logs.LogGroup(self, "ProviderLogs", retention=OWN_LOG_RETENTION),
        )
        self.resource = CustomResource(self, "Resource", service_token=provider.service_token, resource_type="Custom::RemoveFiltersOnDelete")
        reason = ("CDK's Provider framework (its onEvent, isComplete and onTimeout functions and its waiter state machine) "
                  "invokes only this construct's functions and writes its own logs through the AWS managed basic execution policy")
        stack = Stack.of(self)
        invoked = [self.start.function, self.remover.function,
                   *(c for c in provider.node.find_all() if isinstance(c, lambda_.Function))]
        for function in invoked:  # invoke permissions cover a function's versions (":*"), as CDK grants them
            acknowledge(provider, f"AwsSolutions::AwsSolutions-IAM5[Resource::<{stack.get_logical_id(function.node.default_child)}.Arn>:*]", reason)
        acknowledge(provider, "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                    reason)
        for finding in ("AwsSolutions-L1", "AwsSolutions-SF1", "AwsSolutions-SF2"):
            acknowledge(provider, f"AwsSolutions::{finding}", reason)

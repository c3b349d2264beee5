"""One governor Lambda function: its own role, its own log group, the shared code asset."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from governor.config import METRICS_NAMESPACE, SERVICE_NAME

#: The Lambda code: the `governor` package, shipped as it is (no bundling, so no Docker).
LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
#: The governor's own logs: long enough to investigate an incident, short enough to cost little.
OWN_LOG_RETENTION = logs.RetentionDays.ONE_MONTH


class GovernorFunction(Construct):
    """A function of the governor with a role that can do only what ``statements`` allow."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        statements: Sequence[iam.PolicyStatement],
        environment: Mapping[str, str],
        powertools_layer: lambda_.ILayerVersion,
        timeout: Duration = Duration.seconds(60),
        memory_size_mib: int = 256,
        dead_letter_queue: sqs.IQueue | None = None,
        reserved_concurrency: int | None = None,
        log_group_name: str | None = None,
        code: lambda_.Code | None = None,
        role_name: str | None = None,
    ) -> None:
        """``log_group_name``: a fixed name for its log group (default: generated), for a guard that
        must know it before it exists (the central archive's). ``code``: an asset of its own (default:
        lambdas/ as it is)."""
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=OWN_LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY,
                                       log_group_name=log_group_name)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{SERVICE_NAME}: {description}",
            role_name=role_name,
        )
        # Writing its own logs, instead of the AWS managed basic execution policy (any log group).
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{self.log_group.log_group_arn}:log-stream:*"],
            )
        )
        for statement in statements:
            self.role.add_to_policy(statement)
        acknowledge(
            self,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{Stack.of(self).get_logical_id(self.log_group.node.default_child)}.Arn>:log-stream:*]",
            "Lambda names its log streams per execution environment at run time; the log group itself is this function's own",
        )
        acknowledge(
            self,
            "AwsSolutions::AwsSolutions-L1",
            "pinned to python3.13 to match the Powertools layer (AWSLambdaPowertoolsPythonV3-python313); upgrade both together",
        )

        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=code or lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=["**/__pycache__", "**/*.pyc"]),
            handler=handler,
            description=f"{SERVICE_NAME}: {description}",
            role=self.role,
            log_group=self.log_group,
            layers=[powertools_layer],
            timeout=timeout,
            memory_size=memory_size_mib,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                **environment,
            },
            dead_letter_queue=dead_letter_queue,
            reserved_concurrent_executions=reserved_concurrency,
        )


def log_groups_arn(scope: Construct) -> str:
    """Every log group of the stack's account and region: the governor's remit."""
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"


def acknowledge(scope: Construct, finding_id: str, reason: str) -> None:
    """Accept one cdk-nag finding on ``scope`` (and below), saying why."""
    Validations.of(scope).acknowledge(Acknowledgment(id=finding_id, reason=reason))

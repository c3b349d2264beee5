"""The backfill: a Lambda doing time-boxed slices, a Step Functions loop running it for as long as
the work needs, and a bucket for checkpoints, per-page decisions and summaries.

Why a state machine: at 5 requests per second a million log groups take days, far past one Lambda
invocation, and Lambda's recursive loop detection stops a function that re-invokes itself (directly
or through a queue) after about 16 hops. Step Functions loops are not subject to it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from aws_cdk import custom_resources as cr
from constructs import Construct

from governor.config import ENV_REPORTS_BUCKET

from .buckets import private_bucket
from .functions import OWN_LOG_RETENTION, GovernorFunction, acknowledge

#: Lambda's ceiling; the function hands over with minutes to spare (see the handler's margins).
BACKFILL_TIMEOUT = Duration.minutes(15)
BACKFILL_MEMORY_MIB = 512
#: A million groups take ~2.5 days at the published quotas; the execution may take four times that.
EXECUTION_TIMEOUT = Duration.days(10)
REPORT_EXPIRY = Duration.days(90)
#: The id under which CDK puts AwsCustomResource's singleton provider function in the stack.
AWS_CUSTOM_RESOURCE_PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"
#: Errors the function raises for input or configuration it cannot use: retrying cannot help.
NOT_RETRYABLE = ["BadRequest", "ConfigError"]


class BackfillRunner(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        statements: Sequence[iam.PolicyStatement],
        environment: Mapping[str, str],
        powertools_layer: lambda_.ILayerVersion,
        access_logs: s3.IBucket,
        start_on_deploy_as: str | None,
        reconcile_schedule: str | None = None,
        role_name: str | None = None,
    ) -> None:
        """``start_on_deploy_as``: a fingerprint of the configuration to start an apply run on every
        deploy that changes it (None: start runs by hand). ``reconcile_schedule``: an EventBridge
        Scheduler expression that starts a reconcile run (None: none)."""
        super().__init__(scope, construct_id)
        self.bucket = private_bucket(
            self, "Reports", expire_after=REPORT_EXPIRY, access_logs=access_logs, access_logs_prefix="reports-bucket/"
        )
        self.function = GovernorFunction(
            self,
            "Function",
            handler="governor.handlers.backfill.handler",
            description="brings existing log groups into line, a time-boxed slice per invocation",
            role_name=role_name,
            statements=[
                *statements,
                iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[self.bucket.arn_for_objects("runs/*")]),
                # Without ListBucket a missing checkpoint reads as AccessDenied instead of NoSuchKey.
                iam.PolicyStatement(
                    actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn], conditions={"StringLike": {"s3:prefix": ["runs/*", "coverage/*"]}}
                ),
                iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[self.bucket.arn_for_objects("coverage/latest.json")]),
                # One listing of functions per run, to find orphaned /aws/lambda/<name> groups.
                iam.PolicyStatement(actions=["lambda:ListFunctions"], resources=["*"]),
            ],
            environment={**environment, ENV_REPORTS_BUCKET: self.bucket.bucket_name},
            powertools_layer=powertools_layer,
            timeout=BACKFILL_TIMEOUT,
            memory_size_mib=BACKFILL_MEMORY_MIB,
        )
        acknowledge(
            self.function,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{_logical_id(self.bucket)}.Arn>/runs/*]",
            "a run writes one object per page of log groups under runs/<run id>/; the names are made at run time",
        )
        acknowledge(
            self.function,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "lambda:ListFunctions (one listing of function names per run) and tag:GetResources (the tags of log groups "
            "carrying an exclusion key, in bulk) support no resource-level permissions; both only read. With a data protection rule "
            "that sends audit findings to a log group, logs:CreateLogDelivery (a log delivery) takes only * as well",
        )
        self.state_machine = self._state_machine()
        if start_on_deploy_as:
            self._start_on_deploy(start_on_deploy_as)
        self.schedule = None
        if reconcile_schedule:
            self.schedule = scheduler.Schedule(
                self,
                "Reconcile",
                description="log-group-governor: a reconcile run over every log group (it ends at once while another is going)",
                schedule=scheduler.ScheduleExpression.expression(reconcile_schedule),
                target=scheduler_targets.StepFunctionsStartExecution(
                    self.state_machine, input=scheduler.ScheduleTargetInput.from_object({"reconcile": True}), retry_attempts=3,
                ),
            )

    def _state_machine(self) -> sfn.StateMachine:
        slice_ = tasks.LambdaInvoke(
            self,
            "Run a slice",
            lambda_function=self.function.function,
            payload=sfn.TaskInput.from_object({
                "execution": sfn.JsonPath.string_at("$$.Execution.Name"),
                "input": sfn.JsonPath.object_at("$$.Execution.Input"),
            }),
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        slice_.add_retry(errors=NOT_RETRYABLE, max_attempts=0)
        # Throttled past botocore's retries, a crash, a timeout: the slice resumes from its checkpoint.
        slice_.add_retry(
            errors=["States.ALL"], interval=Duration.seconds(10), backoff_rate=2, max_attempts=10,
            max_delay=Duration.minutes(5), jitter_strategy=sfn.JitterType.FULL,
        )
        finished = sfn.Succeed(self, "Finished")
        loop = slice_.next(
            sfn.Choice(self, "Done?").when(sfn.Condition.boolean_equals("$.done", True), finished).otherwise(slice_)
        )
        log_group = logs.LogGroup(self, "ExecutionLogs", retention=OWN_LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment="log-group-governor backfill: runs slices until every log group has been seen",
            definition_body=sfn.DefinitionBody.from_chainable(loop),
            timeout=EXECUTION_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        acknowledge(
            state_machine,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs log delivery and X-Ray tracing for Step Functions support no resource-level permissions",
        )
        acknowledge(
            state_machine,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{_logical_id(self.function.function)}.Arn>:*]",
            "the state machine invokes the backfill function only; ':*' covers its versions, as CDK grants invoke",
        )
        return state_machine

    def _start_on_deploy(self, fingerprint: str) -> None:
        """Start an apply run on create and whenever the configuration changes; its runId is derived
        from the configuration, so a deploy that changes nothing starts nothing new."""
        digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        start = cr.AwsSdkCall(
            service="SFN",
            action="startExecution",
            parameters={"stateMachineArn": self.state_machine.state_machine_arn, "input": json.dumps({"runId": f"deploy-{digest}"})},
            physical_resource_id=cr.PhysicalResourceId.of(f"backfill-{digest}"),
        )
        trigger = cr.AwsCustomResource(
            self,
            "StartOnDeploy",
            on_create=start,
            on_update=start,
            policy=cr.AwsCustomResourcePolicy.from_statements([
                iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.state_machine.state_machine_arn])
            ]),
            install_latest_aws_sdk=False,
        )
        trigger.node.add_dependency(self.state_machine)
        # The provider function CDK adds for AwsCustomResource (one per stack) uses the basic execution
        # policy: acknowledged on that function alone, so a finding anywhere else still fails synth.
        provider = Stack.of(self).node.find_child(AWS_CUSTOM_RESOURCE_PROVIDER_ID)
        acknowledge(
            provider,
            "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's AwsCustomResource provider writes its own logs through the AWS managed basic execution policy; it only starts the backfill",
        )


def _logical_id(construct: Construct) -> str:
    return Stack.of(construct).get_logical_id(construct.node.default_child)

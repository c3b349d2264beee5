"""ship-logs: the built-in destination the stack deploys when the configuration names none, and the
central archive's consumer.

A function with capped concurrency (a log storm cannot starve the account's other functions), its
own encrypted dead-letter queue with an alarm, and, for the default Firehose sink, an archive:
Firehose into an encrypted S3 bucket. Invoked by CloudWatch Logs (the one wildcard permission it
needs), or, in the central account, by a Kinesis event source on the archive's stream.
"""

from __future__ import annotations

from dataclasses import replace

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from governor.config import Destination, DestinationKind
from ship_logs.config import ENV_SHIP_LOGS, ENV_SHIP_LOGS_DLQ_URL, OWN_LOG_GROUP_METRIC, ShipLogsConfig, SinkAuth, SinkKind

from .buckets import private_bucket
from .alarms import Alarms
from .dead_letters import DeadLetters
from .destination import grant_logs_invoke
from .functions import ARCHITECTURE, OWN_LOG_RETENTION, GovernorFunction, acknowledge
from .ship_logs_asset import ship_logs_code

#: Time for a 1 MB batch, its retries with backoff, and the metrics.
SHIP_LOGS_TIMEOUT = Duration.seconds(120)
SHIP_LOGS_MEMORY_MIB = 512
#: How long Lambda keeps trying a batch (its async queue, throttled by the concurrency cap) before the DLQ.
MAX_EVENT_AGE = Duration.hours(6)
ARCHIVE_EXPIRY = Duration.days(365)
#: The central archive's stream: records a batch, retries of a failing record, how old a record may get.
KINESIS_BATCH_SIZE = 100
KINESIS_RETRY_ATTEMPTS = 10
KINESIS_MAX_RECORD_AGE = Duration.hours(24)


class LogArchive(Construct):
    """Firehose into an encrypted bucket, gzip, partitioned by day. Written with the L1 resource so
    its role gets exactly the actions Firehose's S3 destination needs (the L2 grants wildcards)."""

    def __init__(self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket, error_log_group_name: str | None = None) -> None:
        super().__init__(scope, construct_id)
        self.bucket = private_bucket(self, "Bucket", expire_after=ARCHIVE_EXPIRY, access_logs=access_logs,
                                     access_logs_prefix="archive-bucket/")
        self.error_logs = logs.LogGroup(self, "DeliveryErrors", retention=OWN_LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY,
                                        log_group_name=error_log_group_name)
        error_stream = logs.LogStream(self, "S3Delivery", log_group=self.error_logs, removal_policy=RemovalPolicy.DESTROY)
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("firehose.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}),
            description="log-group-governor: lets the archive's Firehose stream write to its bucket",
        )
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"], resources=[self.bucket.bucket_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"], resources=[self.bucket.arn_for_objects("*")]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:PutLogEvents"], resources=[f"{self.error_logs.log_group_arn}:log-stream:{error_stream.log_stream_name}"]))
        acknowledge(
            role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{stack.get_logical_id(self.bucket.node.default_child)}.Arn>/*]",
            "Firehose names the objects it writes (by day and delivery); the bucket is the archive's own",
        )
        self.stream = firehose.CfnDeliveryStream(
            self,
            "Stream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="AWS_OWNED_CMK"),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=self.bucket.bucket_arn,
                role_arn=role.role_arn,
                compression_format="GZIP",
                prefix="logs/!{timestamp:yyyy/MM/dd}/",
                error_output_prefix="errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(interval_in_seconds=300, size_in_m_bs=64),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=self.error_logs.log_group_name, log_stream_name=error_stream.log_stream_name),
            ),
        )
        self.stream.node.add_dependency(role)
        self.stream_arn = self.stream.attr_arn


class ShipLogsDestination(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ShipLogsConfig,
        powertools_layer: lambda_.ILayerVersion,
        access_logs: s3.IBucket,
        alarms: Alarms,
        stream: kinesis.IStream | None = None,
        log_group_prefix: str | None = None,
    ) -> None:
        """``stream``: consume this Kinesis stream (the central archive) instead of being invoked by
        CloudWatch Logs of this account. ``log_group_prefix``: name its log groups under this prefix (the
        central archive's, so that every member's guard knows them before they exist)."""
        super().__init__(scope, construct_id)
        #: Log groups on the shipping path: never subscribed (the guard), or ship-logs would read its own output.
        self.protected_log_groups: list[str] = []
        self.dead_letters = DeadLetters(self, "DeadLetters", alarms=alarms, what="ship-logs batches and records")

        if config.sink is SinkKind.FIREHOSE and not config.delivery_stream_arn:
            self.archive = LogArchive(self, "Archive", access_logs=access_logs,
                                      error_log_group_name=f"{log_group_prefix}firehose-errors" if log_group_prefix else None)
            config = replace(config, delivery_stream_arn=self.archive.stream_arn)
            self.protected_log_groups.append(self.archive.error_logs.log_group_name)

        self.function = GovernorFunction(
            self,
            "Function",
            handler="ship_logs.handler.handler",
            code=ship_logs_code(architecture=ARCHITECTURE.name),
            description="ships subscribed log groups' records to the log store (and, if asked, their metrics to CloudWatch)",
            statements=_statements(self, config),
            environment={
                ENV_SHIP_LOGS: Stack.of(self).to_json_string(config.to_json_dict()),
                ENV_SHIP_LOGS_DLQ_URL: self.dead_letters.queue.queue_url,
            },
            powertools_layer=powertools_layer,
            timeout=SHIP_LOGS_TIMEOUT,
            memory_size_mib=SHIP_LOGS_MEMORY_MIB,
            dead_letter_queue=self.dead_letters.queue,
            reserved_concurrency=config.reserved_concurrency,
            log_group_name=f"{log_group_prefix}ship-logs" if log_group_prefix else None,
        )
        self.protected_log_groups.append(self.function.log_group.log_group_name)
        alarms.on_governor_metric("ShipLogsOwnLogGroup", name=OWN_LOG_GROUP_METRIC,
                                  description="ship-logs received a batch of its own log group and dropped it: something subscribed "
                                              "that group (a hand-made filter, an account policy, a guard that missed it); remove it")
        if config.metrics.any:
            acknowledge(
                self.function,
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "PutMetricData has no resource-level permissions, and MONITORING lines name their own namespaces",
            )
        stack = Stack.of(self)
        if stream is not None:
            # A batch that fails whole is split until the failing record is alone; a record the sink
            # keeps failing is retried, then its batch's metadata goes to the dead-letter queue.
            self.function.function.add_event_source(sources.KinesisEventSource(
                stream, starting_position=lambda_.StartingPosition.TRIM_HORIZON, batch_size=KINESIS_BATCH_SIZE,
                bisect_batch_on_error=True, report_batch_item_failures=True, retry_attempts=KINESIS_RETRY_ATTEMPTS,
                max_record_age=KINESIS_MAX_RECORD_AGE, on_failure=sources.SqsDlq(self.dead_letters.queue)))
            self.destination = None
            return
        # Lambda's dead-letter configuration already lets the role send to the queue: the same
        # permission covers the records the sink refused, which the function sends there itself.
        self.function.function.configure_async_invoke(retry_attempts=2, max_event_age=MAX_EVENT_AGE)

        self.destination = Destination(
            arn=self.function.function.function_arn,
            kind=DestinationKind.LAMBDA,
            name=self.function.function.function_name,
            account=stack.account,
            region=stack.region,
            partition=stack.partition,
        )
        grant_logs_invoke(self, self.destination)


def _statements(scope: Construct, config: ShipLogsConfig) -> list[iam.PolicyStatement]:
    # PutMetricData only for the metric families asked for (ship-logs' own metrics go to its log, in EMF).
    statements = [iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"])] if config.metrics.any else []
    if config.sink is SinkKind.FIREHOSE:
        statements.append(iam.PolicyStatement(actions=["firehose:PutRecordBatch"], resources=[config.delivery_stream_arn]))
    if config.auth in (SinkAuth.BASIC, SinkAuth.HEADER):
        action = "ssm:GetParameter" if ":ssm:" in config.secret_arn else "secretsmanager:GetSecretValue"
        statements.append(iam.PolicyStatement(actions=[action], resources=[config.secret_arn]))
    if config.auth is SinkAuth.SIGV4:
        # _bulk, and the index template ship-logs puts once per container before its first _bulk.
        statements.append(iam.PolicyStatement(actions=["es:ESHttpPost"], resources=[f"{config.domain_arn}/_bulk",
                                                                                   f"{config.domain_arn}/_index_template/log-group-governor"]))
    return statements

"""The archive's pull of what members' new groups held before their filters (#31, lambdas/governor/archive_pull.py).

- A rule on the fleet bus takes the members' replay requests (source ``log-group-governor``, detail-type
  ``log-group-governor replay request``; the bus admits only the members' governor roles by name) to the function, which
  queues each on a FIFO queue with MessageGroupId = the event's ``account``: an EventBridge rule can give an SQS target
  only a fixed group id, so the function sets it. Chosen over a per-account pacer in DynamoDB because the queue does the
  pacing itself: one batch per member at a time, in one container, pacing its calls at PULL_QUOTA_SHARE of the
  member's quotas, with no extra write per call, and other members go on in parallel (``PULL_CONCURRENCY``).
- The function assumes, in the requesting account only, the member's reader role (stacks/replay_reader.py), whose trust
  names this function's role (fixed name ``ARCHIVE_PULLER_ROLE``) alone; it may assume no other role.
- The ledger is a table of its own (key ``replay#<account>#<group>``, the group's life in the record); records
  expire a week after their last write, as the members' do.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from governor.archive_names import (ARCHIVE_PULLER_ROLE, ENV_DESTINATION_ARN, ENV_QUEUE_URL, ENV_STREAM_ARN, ENV_TABLE, MEMBER_READER_ROLE,
                                    PULL_FAILED_METRIC, REPLAY_DETAIL_TYPE, REPLAY_SOURCE)
from shared.config import METRICS_NAMESPACE, SERVICE_NAME

from .alarms import ALARM_PERIOD, Alarms
from .dead_letters import DLQ_RETENTION, DeadLetters, encrypted_queue
from .functions import GovernorFunction, acknowledge

#: The function's timeout: a slice of 20 s per request, ten requests a batch, and the time a delivery and its record take.
PULL_TIMEOUT = Duration.minutes(5)
#: How many members' requests are pulled at once (one container per member at a time: the FIFO group).
PULL_CONCURRENCY = 10
PULL_MAX_RECEIVE_COUNT = 5


class ArchiveReplay(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, bus: events.IEventBus, stream: kinesis.IStream, destination_arn: str,
                 organization_id: str | None, member_accounts: tuple[str, ...], powertools_layer: lambda_.ILayerVersion, alarms: Alarms,
                 log_group_prefix: str | None = None) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.table = dynamodb.TableV2(
            self, "Ledger", partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING), billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            time_to_live_attribute="expiresAt", removal_policy=RemovalPolicy.DESTROY)  # a week of records: nothing to keep
        self.dead_letters = sqs.Queue(self, "DeadLetters", fifo=True, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                                      retention_period=DLQ_RETENTION)
        self.queue = encrypted_queue(
            self, "Queue", fifo=True, visibility_timeout=Duration.seconds(PULL_TIMEOUT.to_seconds() * 2), retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=PULL_MAX_RECEIVE_COUNT))
        readers = ([f"arn:{stack.partition}:iam::*:role/{MEMBER_READER_ROLE.format(region=stack.region)}"] if organization_id else
                   [f"arn:{stack.partition}:iam::{a}:role/{MEMBER_READER_ROLE.format(region=stack.region)}" for a in member_accounts])
        assume = iam.PolicyStatement(actions=["sts:AssumeRole"], resources=readers,
                                     conditions={"StringEquals": {"aws:ResourceOrgID": organization_id}} if organization_id else None)
        self.function = GovernorFunction(
            self, "Function", handler="governor.handlers.archive_pull.handler", timeout=PULL_TIMEOUT, powertools_layer=powertools_layer,
            description="pulls what members' new log groups held before their filters into the archive's stream",
            statements=[assume, iam.PolicyStatement(actions=["kinesis:PutRecord"], resources=[stream.stream_arn]),
                        iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:PutItem"], resources=[self.table.table_arn]),
                        iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queue.queue_arn])],
            environment={ENV_QUEUE_URL: self.queue.queue_url, ENV_TABLE: self.table.table_name, ENV_STREAM_ARN: stream.stream_arn,
                         ENV_DESTINATION_ARN: destination_arn},
            role_name=ARCHIVE_PULLER_ROLE.format(region=stack.region),
            log_group_name=f"{log_group_prefix}archive-replay" if log_group_prefix else None)
        if organization_id:
            acknowledge(self.function, f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/"
                                       f"{MEMBER_READER_ROLE.format(region=stack.region)}]",
                        "the members' reader role, by its one name, in any account of the organization (aws:ResourceOrgID): "
                        "members join after deploy; the function assumes it only in the account EventBridge names as a request's sender")
        self.function.function.add_event_source(sources.SqsEventSource(self.queue, batch_size=10, report_batch_item_failures=True,
                                                                       max_concurrency=PULL_CONCURRENCY))
        self.intake_dead_letters = DeadLetters(self, "IntakeDeadLetters", alarms=alarms, what="members' replay requests")
        acknowledge(self.intake_dead_letters.queue, "AwsSolutions::AwsSolutions-SQS3",
                    "it is a dead-letter queue: the replay requests rule's EventBridge target's (cdk-nag recognizes only SQS redrive policies)")
        events.Rule(self, "Requests", event_bus=bus, description="log-group-governor: members' replay requests to the archive's pull",
                    event_pattern=events.EventPattern(source=[REPLAY_SOURCE], detail_type=[REPLAY_DETAIL_TYPE]),
                    targets=[targets.LambdaFunction(self.function.function, retry_attempts=8, max_event_age=Duration.hours(6),
                                                    dead_letter_queue=self.intake_dead_letters.queue)])
        self.failed_alarm = alarms.alarm(
            self, "PullFailed", metric=cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=PULL_FAILED_METRIC,
                                                         dimensions_map={"service": SERVICE_NAME}, statistic="Sum", period=ALARM_PERIOD),
            description="the archive could not pull what a member's new group held before its filter (its log names the account, the "
                        "group and the window): the member's reader role is missing or trusts another role (deploy the member's "
                        "governor with this archive's fleetBusArn), or a read or write failed and the request is retried")
        self.dead_letters_alarm = alarms.alarm(
            self, "PullDeadLetters", metric=self.dead_letters.metric_approximate_number_of_messages_visible(period=Duration.minutes(1),
                                                                                                            statistic="Maximum"),
            description="members' replay requests failed after all retries and wait in the pull's dead-letter queue: what those groups "
                        "held before their filters is not in the archive until they are redriven")

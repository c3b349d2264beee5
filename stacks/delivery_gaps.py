"""The delivery-gap watch and its replay (#31 item 2; governor.delivery_gaps): a function run every WATCH_EVERY_MINUTES
that reads the governed filters' delivery metrics and queues each gap once, the encrypted queue it drains, and the alarms
on what could not be replayed."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from governor import metric_names
from governor.config import METRICS_NAMESPACE, SERVICE_NAME
from governor.gap_settings import ENV_GAP_QUEUE_URL, GAP_CONCURRENCY, WATCH_EVERY_MINUTES

from .alarms import ALARM_PERIOD, Alarms
from .dead_letters import DeadLetters, encrypted_queue
from .functions import GovernorFunction, acknowledge

#: A gap's replay takes a slice of an invocation (governor.replay.REPLAY_SLICE_S) and its records; the watch reads 250
#: groups' metrics a call.
TIMEOUT = Duration.minutes(5)
#: A gap whose destination still refuses comes back after this long ...
VISIBILITY_TIMEOUT = Duration.minutes(30)
#: ... this many times: 24 hours, as long as CloudWatch Logs itself retries a delivery (guide, "Subscriptions"). Then it
#: dead-letters and alarms.
MAX_RECEIVE_COUNT = 48


class DeliveryGapReplay(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, statements: Sequence[iam.PolicyStatement], environment: dict[str, str],
                 powertools_layer: lambda_.ILayerVersion, alarms: Alarms, role_name: str | None = None) -> None:
        """``role_name``: a member's, which the fleet bus admits by name (stacks.fleet.GAP_REPLAY_ROLE)."""
        super().__init__(scope, construct_id)
        self.dead_letters = DeadLetters(self, "DeadLetters", alarms=alarms,
                                        what="delivery gaps whose replay the destination refused for 24 hours (their lines are not "
                                             "delivered until redriven)")
        self.queue = encrypted_queue(self, "Queue", retention_period=Duration.days(4), visibility_timeout=VISIBILITY_TIMEOUT,
                                     dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters.queue, max_receive_count=MAX_RECEIVE_COUNT))
        self.function = GovernorFunction(
            self, "Function", handler="governor.handlers.delivery_gaps.handler", timeout=TIMEOUT, powertools_layer=powertools_layer,
            description="finds the minutes a disabled subscription skipped and replays them",
            statements=[*statements,
                        # ListMetrics and GetMetricData take no resource (the Service Authorization Reference).
                        iam.PolicyStatement(actions=["cloudwatch:ListMetrics", "cloudwatch:GetMetricData"], resources=["*"])],
            environment={**environment, ENV_GAP_QUEUE_URL: self.queue.queue_url}, role_name=role_name)
        self.queue.grant_send_messages(self.function.function)
        acknowledge(self.function, "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                    "cloudwatch:ListMetrics and cloudwatch:GetMetricData support no resource-level permissions; both only read")
        self.function.function.add_event_source(sources.SqsEventSource(self.queue, batch_size=5, report_batch_item_failures=True,
                                                                       max_concurrency=GAP_CONCURRENCY))
        self.schedule = events.Rule(self, "Watch", schedule=events.Schedule.rate(Duration.minutes(WATCH_EVERY_MINUTES)),
                                    description="log-group-governor: look for the minutes disabled subscriptions skipped",
                                    targets=[targets.LambdaFunction(self.function.function, retry_attempts=2)])
        self.unreplayed_alarm = alarms.alarm(
            self, "GapUnreplayed", metric=cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=metric_names.GAP_UNREPLAYED,
                                                            dimensions_map={"service": SERVICE_NAME}, statistic="Sum", period=ALARM_PERIOD),
            description="CloudWatch Logs skipped a governed group's lines while its filter was disabled after a delivery error, and "
                        "the governor could not replay them all (the delivery-gaps function's log names the group, the window and "
                        "the reason: past replayMaxEvents / replayMaxBytes, the group deleted, a destination it cannot write to)")

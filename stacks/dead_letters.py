"""Where failed events end: an encrypted queue, and an alarm that says something landed there."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

#: SQS keeps a message at most 14 days: the time there is to look at and redrive a failed event.
DLQ_RETENTION = Duration.days(14)


class DeadLetters(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, alarm_topic_arn: str | None) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "NotEmpty",
            alarm_description="log-group-governor: events failed after all retries and wait in the dead-letter queue",
            metric=self.queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if alarm_topic_arn:
            self.alarm.add_alarm_action(cw_actions.SnsAction(sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn)))

"""Where the governor's alarms go: an encrypted SNS topic of its own (``alarmEmail`` subscribes an
address), or an existing topic (``alarmTopicArn``). Every alarm the stack makes notifies it, so no
failure is silent by default."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from governor.config import METRICS_NAMESPACE, SERVICE_NAME

#: How often alarms look at their metric; one breaching period fires them.
ALARM_PERIOD = Duration.minutes(5)


class Alarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, topic_arn: str | None, email: str | None, topic: bool = True) -> None:
        """``topic`` False: no topic in this account (a member of an organization whose fleet view takes each alarm's state
        change from the forwarder the stack adds: stacks.governor_stack, governor:alarmTopic)."""
        super().__init__(scope, construct_id)
        #: Every alarm made here, for the dashboard and the fleet forwarder.
        self.all: list[cloudwatch.Alarm] = []
        self.topic: sns.ITopic | None = None
        self.action: cw_actions.SnsAction | None = None
        if not topic:
            return
        if topic_arn:
            self.topic: sns.ITopic = sns.Topic.from_topic_arn(self, "Topic", topic_arn)
        else:
            # CloudWatch alarms can publish to an encrypted topic only with a customer managed key
            # whose policy lets CloudWatch use it (the AWS managed SNS key does not).
            key = kms.Key(self, "TopicKey", enable_key_rotation=True,
                          description=f"{SERVICE_NAME}: encrypts the alarm topic")
            key.add_to_resource_policy(iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ))
            own = sns.Topic(self, "Topic", display_name=f"{SERVICE_NAME} alarms", master_key=key, enforce_ssl=True)
            if email:
                own.add_subscription(subscriptions.EmailSubscription(email))
            self.topic = own
        self.action = cw_actions.SnsAction(self.topic)
        CfnOutput(Stack.of(self), "AlarmTopicArn", value=self.topic.topic_arn,
                  description="every alarm of the governor notifies this topic; subscribe your on-call to it")

    def alarm(self, scope: Construct, construct_id: str, *, metric: cloudwatch.IMetric, description: str, threshold: float = 1) -> cloudwatch.Alarm:
        """An alarm that fires when ``metric`` reaches ``threshold`` in one period, and notifies the topic."""
        alarm = cloudwatch.Alarm(
            scope,
            construct_id,
            alarm_description=f"{SERVICE_NAME}: {description}",
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if self.action is not None:
            alarm.add_alarm_action(self.action)
        self.all.append(alarm)
        return alarm

    def on_governor_metric(self, construct_id: str, *, name: str, description: str, reason: str | None = None) -> cloudwatch.Alarm:
        """An alarm on one of the functions' own metrics (namespace LogGroupGovernor, service dimension)."""
        dimensions = {"service": SERVICE_NAME, **({"Reason": reason} if reason else {})}
        metric = cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=name, dimensions_map=dimensions,
                                   statistic="Sum", period=ALARM_PERIOD)
        return self.alarm(self, construct_id, metric=metric, description=description)

"""LogArchiveStack: the organization's central log archive, one per region in a logging account (#10).

A CloudWatch Logs destination (the cross-account kind PutSubscriptionFilter and PutAccountPolicy
accept) in front of an encrypted Kinesis data stream, whose policy admits the organization
(``aws:PrincipalOrgID``) or listed accounts only, and ship-logs consuming the stream: the same
parsing, metrics and sinks as the per-account destination, records keeping their source account and
region. Members' governors point ``destinationArn`` at the destination of their region (output
``DestinationArn``); a destination takes only log groups of its own region.

The loop guard: the archive's own log groups (ship-logs', the Firehose archive's error log, the fleet
recorder's) are in the central account, not in a member's, so no member's subscription can feed them
back; they are named under ``ARCHIVE_LOG_GROUP_PREFIX``, which the rollout adds to every member's
``shippingPathLogGroups``, so a member governor in the central account itself never subscribes them.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_logs as logs
from constructs import Construct

from fleet.rollup import REPORTING_METRIC
from shared.config import METRICS_NAMESPACE, SERVICE_NAME

from .alarms import ALARM_PERIOD, Alarms
from .archive_replay import ArchiveReplay
from .buckets import private_bucket
from .fleet import FleetView
from .powertools_layer import powertools_layer
from .ship_logs import ShipLogsDestination
from .org_settings import (  # noqa: F401  (the archive's settings live without CDK; importers keep these names)
    ARCHIVE,
    ARCHIVE_KEYS,
    ARCHIVE_LOG_GROUP_PREFIX,
    ARCHIVE_LOG_GROUPS,
    ARCHIVE_PREFIX,
    DEFAULT_DESTINATION_NAME,
    DESTINATION_ACTIONS,
    DESTINATION_POLICY_LIMIT_BYTES,
    ArchiveSettings,
    destination_policy,
    destination_policy_bytes,
    max_listed_accounts,
)

#: How far behind its stream the archive's consumer may fall before it alarms.
ARCHIVE_MAX_LAG = Duration.minutes(10)
#: The archive expects a delivery from reporting members at least this often.
DELIVERY_SILENCE = Duration.hours(1)


class LogArchiveStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: ArchiveSettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        access_logs = private_bucket(self, "AccessLogs", expire_after=Duration.days(90))
        alarms = Alarms(self, "Alarms", topic_arn=settings.alarm_topic_arn, email=settings.alarm_email)
        layer = powertools_layer(self, "Powertools", override_arn=settings.powertools_layer_arn)

        self.stream = kinesis.Stream(self, "Stream", shard_count=settings.shards, encryption=kinesis.StreamEncryption.MANAGED,
                                     retention_period=Duration.hours(settings.stream_retention_hours))
        self.consumer = ShipLogsDestination(self, "ShipLogs", config=settings.ship_logs, powertools_layer=layer, access_logs=access_logs,
                                            alarms=alarms, stream=self.stream, log_group_prefix=ARCHIVE_LOG_GROUP_PREFIX)

        # Every failure loud: a consumer that falls behind its stream alarms before records age out of it.
        alarms.alarm(self, "ArchiveConsumerBehind", threshold=ARCHIVE_MAX_LAG.to_milliseconds(),
                     metric=self.consumer.function.function.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(5)),
                     description=f"the archive's ship-logs is more than {ARCHIVE_MAX_LAG.to_minutes():.0f} minutes behind its stream: "
                                 f"the sink is slow or failing (see its errors), or archive:shards is too low for the members' volume")

        # CloudWatch Logs writes into the stream with this role. Its trust names only the condition key AWS's
        # own example of a destination role uses (CreateDestination: aws:SourceArn, the senders' CloudWatch Logs
        # ARNs): the listed accounts, or for an organization every account of this region, since no AWS page
        # says CloudWatch Logs sends aws:SourceOrgID here. Who may send at all is the destination's access
        # policy's decision (aws:PrincipalOrgID, checked through each member's sender role).
        senders = settings.member_accounts if not settings.organization_id else ("*",)
        sources = {"StringLike": {"aws:SourceArn": [f"arn:{self.partition}:logs:{self.region}:{a}:*" for a in
                                                    dict.fromkeys((*senders, *(() if settings.organization_id else (self.account,))))]}}
        role = iam.Role(self, "DeliveryRole", assumed_by=iam.ServicePrincipal("logs.amazonaws.com", conditions=sources),
                        description="log-group-governor: lets CloudWatch Logs put the admitted accounts' log events into the archive stream")
        role.add_to_policy(iam.PolicyStatement(actions=["kinesis:PutRecord", "kinesis:PutRecords"], resources=[self.stream.stream_arn]))

        self.destination_arn = f"arn:{self.partition}:logs:{self.region}:{self.account}:destination:{settings.destination_name}"
        self.destination = logs.CfnDestination(
            self, "Destination", destination_name=settings.destination_name, role_arn=role.role_arn,
            target_arn=self.stream.stream_arn, destination_policy=self.to_json_string(destination_policy(settings, self.destination_arn)))
        self.destination.node.add_dependency(role)  # its policy too: CloudWatch Logs tests delivery on create

        self.fleet = FleetView(self, "Fleet", organization_id=settings.organization_id, member_accounts=settings.member_accounts,
                               powertools_layer=layer, alarms=alarms, log_group_prefix=ARCHIVE_LOG_GROUP_PREFIX)
        self._delivery_alarms(alarms)
        # #31: what members' new groups held before their filters, pulled through each member's reader role.
        self.replay = ArchiveReplay(self, "Replay", bus=self.fleet.bus, stream=self.stream, destination_arn=self.destination_arn,
                                    organization_id=settings.organization_id, member_accounts=settings.member_accounts,
                                    powertools_layer=layer, alarms=alarms, log_group_prefix=ARCHIVE_LOG_GROUP_PREFIX)

        CfnOutput(self, "DestinationArn", value=self.destination_arn,
                  description="members' governor:destinationArn in this region (a destination takes its own region's groups only)")
        CfnOutput(self, "ShippingPathLogGroups", value=self.to_json_string(self.consumer.protected_log_groups),
                  description="a governor in this account must never subscribe these (governor:shippingPathLogGroups)")

    def _delivery_alarms(self, alarms: Alarms) -> None:
        """The destination side of delivery. A wrong trust (the sender role, this delivery role) or a refused
        policy shows nowhere in the members' governors: their filters exist and nothing arrives. So the
        archive alarms when its stream takes no record for an hour while the fleet view says members are
        reporting, and when the stream refuses writes (CloudWatch Logs retries throttled deliveries for
        24 hours, then drops them)."""
        incoming = self.stream.metric_incoming_records(statistic="Sum", period=DELIVERY_SILENCE)
        reporting = cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=REPORTING_METRIC, dimensions_map={"service": SERVICE_NAME},
                                      statistic="Maximum", period=DELIVERY_SILENCE)
        alarms.alarm(self, "ArchiveDeliveriesStopped", metric=cloudwatch.MathExpression(
            expression="IF(FILL(reporting, 0) >= 1 AND FILL(incoming, 0) < 1, 1, 0)", using_metrics={"incoming": incoming, "reporting": reporting},
            period=DELIVERY_SILENCE, label="no deliveries while members report"),
            description=f"the archive's stream took no record for {DELIVERY_SILENCE.to_hours():.0f} hour while members are reporting: "
                        f"CloudWatch Logs cannot deliver (a member's sender role, this stack's delivery role or the destination's access "
                        f"policy refuses); run python -m cli selftest in a member to see which step fails")
        alarms.alarm(self, "ArchiveWritesThrottled", metric=self.stream.metric("WriteProvisionedThroughputExceeded", statistic="Sum",
                                                                                period=ALARM_PERIOD),
                     description="the archive's stream refused writes for throughput: deliveries are delayed and dropped after 24 "
                                 "hours of retries; raise archive:shards")

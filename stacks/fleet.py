"""The fleet view in the central account (#10): a bus that admits only the organization's governors,
the recorder that keeps each member's latest coverage and alarm states, an hourly check for members
that stopped reporting (an alarm), and a dashboard of the fleet.

Members: ``governor:fleetBusArn`` makes a governor's reconcile put its coverage on the bus and its
alarms' state changes follow (an EventBridge rule on its default bus).
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from fleet.rollup import ALARM_DETAIL_TYPE, ALARMING_METRIC, MEMBER_ALARM_RAISED_METRIC, COVERAGE_DETAIL_TYPE, ENV_FLEET_TABLE, NEWLY_SILENT_METRIC, SILENT_METRIC, SOURCE
from shared.config import METRICS_NAMESPACE, SERVICE_NAME

from .alarms import ALARM_PERIOD, Alarms
from .dead_letters import DeadLetters
from .functions import GovernorFunction, acknowledge

from .org_settings import FLEET_BUS_NAME  # noqa: E402  (the rollout and the CLI name the bus without CDK)
#: The members' two roles that may put events on the fleet bus, named alike in every member (a region
#: of its own each: IAM names are per account): the reconcile's, which reports coverage, and the
#: forwarder of its alarms' state changes. Nobody else in the organization may write a fleet row.
REPORTER_ROLE = "log-group-governor-reporter-{region}"
FORWARDER_ROLE = "log-group-governor-fleet-forwarder-{region}"
#: The member's subscribe function, which asks the archive to pull a new group's first lines (#31).
SUBSCRIBER_ROLE = "log-group-governor-subscriber-{region}"
#: The member's delivery-gap function, which asks the archive to pull the minutes a disabled filter skipped (#31).
GAP_REPLAY_ROLE = "log-group-governor-delivery-gaps-{region}"


def member_roles(region: str, account: str = "*", partition: str = "aws") -> list[str]:
    return [f"arn:{partition}:iam::{account}:role/{name.format(region=region)}" for name in (REPORTER_ROLE, FORWARDER_ROLE, SUBSCRIBER_ROLE,
                                                                                                GAP_REPLAY_ROLE)]


def fleet_bus_arn(region: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:events:{region}:{account}:event-bus/{FLEET_BUS_NAME}"


class FleetView(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, organization_id: str | None, member_accounts: tuple[str, ...],
                 powertools_layer: lambda_.ILayerVersion, alarms: Alarms, log_group_prefix: str | None = None) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=FLEET_BUS_NAME)
        # Only the members' governor roles (by name), of the organization's accounts or the listed ones.
        roles = {"ArnLike": {"aws:PrincipalArn": member_roles(Stack.of(self).region, partition=Stack.of(self).partition)}}
        condition = {"StringEquals": {"aws:PrincipalOrgID": organization_id}, **roles} if organization_id else roles
        principals = [iam.AnyPrincipal()] if organization_id else [iam.AccountPrincipal(a) for a in member_accounts]
        self.bus.add_to_resource_policy(iam.PolicyStatement(
            sid="OrganizationGovernors", actions=["events:PutEvents"], principals=principals, resources=[self.bus.event_bus_arn],
            conditions=condition))
        self.table = dynamodb.TableV2(
            self, "Table", partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING), billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            time_to_live_attribute="expiresAt",  # a member's rows go some days after its last word (rollup.ROW_TTL_S)
            removal_policy=RemovalPolicy.DESTROY)  # rebuilt by the members' next reconciles
        self.recorder = GovernorFunction(
            self, "Recorder", handler="fleet.handler.handler", description="records each member governor's coverage and alarms",
            statements=[iam.PolicyStatement(actions=["dynamodb:PutItem", "dynamodb:Scan"], resources=[self.table.table_arn])],
            environment={ENV_FLEET_TABLE: self.table.table_name}, powertools_layer=powertools_layer,
            log_group_name=f"{log_group_prefix}fleet-recorder" if log_group_prefix else None)
        # A report the recorder could not take waits in an alarmed queue, not lost after EventBridge's retries.
        self.dead_letters = DeadLetters(self, "DeadLetters", alarms=alarms, what="members' coverage reports and alarm changes")
        acknowledge(self.dead_letters.queue, "AwsSolutions::AwsSolutions-SQS3",
                    "it is a dead-letter queue: the fleet rules' EventBridge targets' (cdk-nag recognizes only SQS redrive policies)")
        target = targets.LambdaFunction(self.recorder.function, retry_attempts=8, max_event_age=Duration.hours(6),
                                        dead_letter_queue=self.dead_letters.queue)
        events.Rule(self, "Coverage", event_bus=self.bus, description="log-group-governor: members' coverage to the fleet table",
                    event_pattern=events.EventPattern(source=[SOURCE], detail_type=[COVERAGE_DETAIL_TYPE]), targets=[target])
        events.Rule(self, "Alarms", event_bus=self.bus, description="log-group-governor: members' alarm states to the fleet table",
                    event_pattern=events.EventPattern(source=["aws.cloudwatch"], detail_type=[ALARM_DETAIL_TYPE]), targets=[target])
        events.Rule(self, "Check", schedule=events.Schedule.rate(Duration.hours(1)), targets=[target],
                    description="log-group-governor: count the members that stopped reporting")
        for construct_id, name, what in (("SilentMembers", SILENT_METRIC, "a member governor stopped reporting its coverage (python -m cli "
                                                                           "fleet-status names it): its reconcile stopped, or it cannot reach the bus"),
                                         ("MemberWentSilent", NEWLY_SILENT_METRIC, "another member governor stopped reporting since the last "
                                                                                   "hourly check (this alarm fires again for each new one; "
                                                                                   "python -m cli fleet-status names them; --forget removes a member that left)"),
                                         ("MembersAlarming", ALARMING_METRIC, "a member governor's alarm is firing (python -m cli fleet-status names it)")):
            alarms.alarm(self, construct_id, description=what, metric=cloudwatch.Metric(
                namespace=METRICS_NAMESPACE, metric_name=name, dimensions_map={"service": SERVICE_NAME}, statistic="Maximum", period=ALARM_PERIOD))
        # Members without a topic of their own (governor:alarmTopic false) are notified through this one: it fires as a member's
        # alarm goes into ALARM, and again for the next (the recorder's log and fleet-status name them).
        alarms.alarm(self, "MemberAlarmRaised", description="a member governor's alarm went into ALARM (the fleet recorder's log and "
                     "python -m cli fleet-status name it; members without an alarm topic of their own are told only through this)",
                     metric=cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=MEMBER_ALARM_RAISED_METRIC,
                                              dimensions_map={"service": SERVICE_NAME}, statistic="Sum", period=ALARM_PERIOD))

        def search(name: str, statistic: str) -> cloudwatch.MathExpression:
            return cloudwatch.MathExpression(expression=f"SEARCH('{{{METRICS_NAMESPACE},Account,Region,service}} MetricName=\"{name}\"', "
                                                        f"'{statistic}', 3600)", label=name, period=Duration.hours(1))

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Compliant % by account and region", left=[search("FleetCompliantPercent", "Minimum")], width=12),
            cloudwatch.GraphWidget(title="Governed groups by account and region", left=[search("FleetGoverned", "Maximum")], width=12),
            cloudwatch.GraphWidget(title="Errors by account and region", left=[search("FleetErrors", "Maximum")], width=8),
            cloudwatch.GraphWidget(title="Members silent / alarming", left=[
                cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=n, dimensions_map={"service": SERVICE_NAME}, statistic="Maximum")
                for n in (SILENT_METRIC, ALARMING_METRIC)], width=8),
            cloudwatch.AlarmStatusWidget(title="Fleet alarms", alarms=alarms.all, width=8),
        )
        CfnOutput(Stack.of(self), "FleetBusArn", value=self.bus.event_bus_arn, description="members' governor:fleetBusArn in this region")
        CfnOutput(Stack.of(self), "FleetTableName", value=self.table.table_name, description="python -m cli fleet-status --table <this>")

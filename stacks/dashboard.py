"""One CloudWatch dashboard for the governor: coverage over time, decisions by reason, errors,
dead letters, conflicts and opt-outs, backfill and reconcile progress, ship-logs, and every alarm.

Plain ``aws_cloudwatch``: the widgets read the functions' own metrics (governor.metric_names), which
a monitoring library would not know, and it adds no dependency to the stack.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from governor import metric_names as names
from governor.config import METRICS_NAMESPACE, SERVICE_NAME

HOUR = Duration.hours(1)
DAY = Duration.days(1)
WIDTH = 8


def _metric(name: str, *, period: Duration = HOUR, statistic: str = "Sum", label: str | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=name, dimensions_map={"service": SERVICE_NAME},
                             period=period, statistic=statistic, label=label or name)


def _by_reason(name: str, label: str) -> cloudwatch.MathExpression:
    """Every Reason the metric is published with, one line each."""
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{METRICS_NAMESPACE},Reason,service}} MetricName=\"{name}\" service=\"{SERVICE_NAME}\"', 'Sum', 3600)",
        label=label, period=HOUR,
    )


def delivery_errors_by_group(filter_name: str, *, top: int = 10) -> str:
    """CloudWatch Logs' own DeliveryErrors of the governor's filter, one line per log group (its dimensions:
    ``LogGroupName, DestinationType, FilterName``, the guide's "Monitoring with CloudWatch metrics"), the worst first."""
    return (f"SELECT SUM(DeliveryErrors) FROM SCHEMA(\"AWS/Logs\", DestinationType, FilterName, LogGroupName) "
            f"WHERE FilterName = '{filter_name}' GROUP BY LogGroupName ORDER BY SUM() DESC LIMIT {top}")


class GovernorDashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, alarms: Sequence[cloudwatch.IAlarm], event_queues: Sequence[sqs.IQueue],
                 dead_letter_queues: Sequence[sqs.IQueue], state_machine: sfn.IStateMachine,
                 functions: Sequence[lambda_.IFunction], ship_logs: lambda_.IFunction | None, controls: Sequence[str] = (),
                 filter_name: str | None = None) -> None:
        """``controls``: the aspects the event handlers govern (subscription, retention, and what the rules add): one
        compliance line each. ``filter_name``: the governor's filter, whose delivery errors are drawn per log group."""
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.days(14))
        coverage = [
            _metric(names.COVERAGE_LOG_GROUPS, period=DAY, statistic="Maximum", label="log groups"),
            _metric(names.COVERAGE_GOVERNED, period=DAY, statistic="Maximum", label="governed"),
            _metric(names.COVERAGE_COMPLIANT, period=DAY, statistic="Maximum", label="compliant"),
        ]
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Coverage (each finished reconcile)", left=coverage, width=WIDTH * 2),
            cloudwatch.SingleValueWidget(title="Compliant, % of governed", width=WIDTH, metrics=[
                _metric(names.COVERAGE_COMPLIANT_PERCENT, period=DAY, statistic="Minimum", label="compliant %"),
                *(cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=names.COVERAGE_CONTROL_COMPLIANT_PERCENT,
                                    dimensions_map={"service": SERVICE_NAME, "Control": control}, period=DAY, statistic="Minimum",
                                    label=f"{control} %") for control in controls)]),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Decisions", width=WIDTH, left=[
                _metric(names.SUBSCRIBED), _metric(names.FILTERS_UPDATED), _metric(names.RETENTION_SET),
                _metric(names.FILTERS_REMOVED), _metric(names.DRIFT_REPAIRED), _metric(names.COMPLIANT)]),
            cloudwatch.GraphWidget(title="Skipped, by reason", width=WIDTH, left=[_by_reason(names.SKIPPED, "skipped")]),
            cloudwatch.GraphWidget(title="Conflicts and opt-outs, by reason", width=WIDTH, left=[
                _by_reason(names.CONFLICTS, "conflicts"), _by_reason(names.FILTERS_REMOVED, "opted out: filter removed")]),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Errors", width=WIDTH, left=[
                _metric(names.ERRORS), _metric(names.DESTINATION_ERRORS), _metric(names.IGNORED_EVENTS),
                *(f.metric_errors(period=HOUR, label=f"Lambda errors: {f.node.scope.node.id}") for f in functions)]),
            cloudwatch.GraphWidget(title="Queues: waiting and dead letters", width=WIDTH, left=[
                *(q.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum",
                                                                   label=f"waiting: {q.node.scope.node.id}") for q in event_queues),
                *(q.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum",
                                                                   label=f"dead letters: {q.node.scope.node.scope.node.id}") for q in dead_letter_queues)]),
            cloudwatch.GraphWidget(title="Backfill and reconcile runs", width=WIDTH, left=[
                state_machine.metric_started(period=HOUR, label="started"), state_machine.metric_succeeded(period=HOUR, label="finished"),
                state_machine.metric_failed(period=HOUR, label="failed"),
                _metric(names.COVERAGE_REPAIRED, period=DAY, statistic="Maximum", label="groups repaired by a run")]),
        )
        self.dashboard.add_widgets(cloudwatch.GraphWidget(
            title="Stored bytes: governed, and in groups that never expire (each finished run over every group)", width=WIDTH * 3, left=[
                _metric(names.COVERAGE_STORED_BYTES, period=DAY, statistic="Maximum", label="stored, governed"),
                _metric(names.COVERAGE_NEVER_EXPIRE_STORED_BYTES, period=DAY, statistic="Maximum", label="stored, never expiring")]))
        if filter_name is not None:
            # After a delivery error CloudWatch Logs can disable a filter "for up to 10 minutes ... during this disabled period,
            # logs are skipped" (the guide, "Subscriptions"): which groups lost lines, and when (#27).
            self.dashboard.add_widgets(cloudwatch.GraphWidget(
                title="Delivery errors by log group (a filter may then be off up to 10 minutes: its lines are skipped, then replayed)",
                width=WIDTH * 3,
                left=[cloudwatch.MathExpression(expression=delivery_errors_by_group(filter_name), label="", period=Duration.minutes(5))]))
            # The replay function (#31): new groups' first lines and the delivery gaps it found, replayed or not.
            self.dashboard.add_widgets(cloudwatch.GraphWidget(
                title="Replays: new groups' first lines and delivery gaps", width=WIDTH * 3, left=[
                    _metric(names.REPLAY_QUEUED, label="new groups asked for"), _metric(names.REPLAYED_EVENTS, label="first lines replayed"),
                    _metric(names.DELIVERY_GAPS, label="delivery gaps found"), _metric(names.GAP_REPLAYED_EVENTS, label="gap lines replayed"),
                    _metric(names.GAP_UNREPLAYED, label="gaps not replayed whole (alarmed)")]))
        if ship_logs is not None:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(title="ship-logs: records", width=WIDTH * 2, left=[
                    _metric("RecordsShipped", label="shipped"), _metric("RecordsRejected", label="refused"),
                    _metric("SinkRetries", label="retried"), _metric("RecordsDegraded", label="degraded"),
                    _metric("ShipFailures", label="batches failed")]),
                cloudwatch.GraphWidget(title="ship-logs: duration", width=WIDTH, left=[
                    ship_logs.metric_duration(period=Duration.minutes(5), statistic="p50", label="p50"),
                    ship_logs.metric_duration(period=Duration.minutes(5), statistic="p99", label="p99"),
                    ship_logs.metric_duration(period=Duration.minutes(5), statistic="Maximum", label="max")]),
            )
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=WIDTH * 3))

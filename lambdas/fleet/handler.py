"""fleet-recorder: the central bus's events into the fleet table, and an hourly count of silent members.

Members' governors put their finished reconcile's coverage on the central bus (detail-type
``log-group-governor coverage``) and forward their alarms' state changes; the bus admits only the
organization's accounts. The member is the event's ``account`` and ``region``, which EventBridge sets
from the sender: a member cannot report for another.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.config import METRICS_NAMESPACE, SERVICE_NAME, ConfigError

from .rollup import (ALARM_DETAIL_TYPE, ALARMING_METRIC, COVERAGE_DETAIL_TYPE, DEFAULT_STALE_AFTER_S, ENV_FLEET_TABLE, ENV_STALE_AFTER_HOURS,
                     MEMBER_ALARM_RAISED_METRIC, NEWLY_SILENT_METRIC, REPORTING_METRIC, SILENT_METRIC, SOURCE, AlarmState, MemberReport, statuses)
from .store import FleetTable


logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
wall_clock = time.time


@cache
def fleet_table() -> FleetTable:
    name = os.environ.get(ENV_FLEET_TABLE)
    if not name:
        raise ConfigError(f"{ENV_FLEET_TABLE} is not set: set it to the fleet table's name (the stack does this)")
    return FleetTable(name)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    stale_h = float(os.environ.get(ENV_STALE_AFTER_HOURS) or DEFAULT_STALE_AFTER_S / 3600)
    return handle_fleet_event(event, fleet_table(), now=wall_clock(), stale_after_s=stale_h * 3600)


def handle_fleet_event(event: Any, table: FleetTable, *, now: float, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        return _ignored("not an EventBridge event")
    detail_type, detail = event.get("detail-type"), event.get("detail")
    if event.get("source") == "aws.events" and detail_type == "Scheduled Event":
        rows = statuses(*table.contents(), now=now, stale_after_s=stale_after_s)
        silent = [f"{m.account}/{m.region}" for m in rows if m.silent]
        alarming = [f"{m.account}/{m.region}" for m in rows if m.alarming]
        metrics.add_metric(name=SILENT_METRIC, unit=MetricUnit.Count, value=len(silent))
        metrics.add_metric(name=ALARMING_METRIC, unit=MetricUnit.Count, value=len(alarming))
        metrics.add_metric(name=REPORTING_METRIC, unit=MetricUnit.Count, value=len(rows) - len(silent))
        # An alarm already firing for one silent member would say nothing of a second: count the new ones.
        newly = sorted(set(silent) - table.swap_silent(silent))
        metrics.add_metric(name=NEWLY_SILENT_METRIC, unit=MetricUnit.Count, value=len(newly))
        if silent:
            logger.warning("members stopped reporting", extra={"silent": silent, "newlySilent": newly})
        return {"status": "checked", "members": len(rows), "reporting": len(rows) - len(silent), "silent": silent, "newlySilent": newly,
                "alarming": alarming}
    account, region = event.get("account"), event.get("region")
    if not isinstance(account, str) or not isinstance(region, str) or not isinstance(detail, Mapping):
        return _ignored("no account, region or detail")
    if event.get("source") == SOURCE and detail_type == COVERAGE_DETAIL_TYPE:
        if not isinstance(detail.get("runId"), str) or not isinstance(detail.get("governed"), int):
            return _ignored("a coverage event without runId and governed")
        table.put_report(MemberReport(account, region, now, dict(detail)))
        _member_metrics(account, region, detail)
        logger.info("member coverage recorded", extra={"account": account, "region": region, "runId": detail["runId"]})
        return {"status": "recorded", "account": account, "region": region}
    if event.get("source") == "aws.cloudwatch" and detail_type == ALARM_DETAIL_TYPE:
        name, state = detail.get("alarmName"), (detail.get("state") or {}).get("value")
        if not isinstance(name, str) or not isinstance(state, str):
            return _ignored("an alarm event without alarmName and state")
        table.put_alarm(AlarmState(account, region, name, state, now))
        if state == "ALARM":
            # The hourly count would say nothing of a second member while the first still alarms, and only within the hour.
            metrics.add_metric(name=MEMBER_ALARM_RAISED_METRIC, unit=MetricUnit.Count, value=1)
            logger.warning("a member's alarm fired", extra={"account": account, "region": region, "alarm": name})
        return {"status": "recorded", "account": account, "region": region, "alarm": name, "state": state, "raised": state == "ALARM"}
    return _ignored(f"{event.get('source')}/{detail_type} is not a fleet event")


def _member_metrics(account: str, region: str, detail: Mapping[str, Any]) -> None:
    """The member's coverage as metrics by Account and Region, for the central dashboard."""
    for name, value, unit in (("FleetCompliantPercent", detail.get("compliantPercent"), MetricUnit.Percent),
                              ("FleetGoverned", detail.get("governed"), MetricUnit.Count), ("FleetErrors", detail.get("errors"), MetricUnit.Count)):
        if isinstance(value, (int, float)):
            with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE, default_dimensions={"service": SERVICE_NAME}) as metric:
                metric.add_dimension(name="Account", value=account)
                metric.add_dimension(name="Region", value=region)


def _ignored(reason: str) -> dict[str, Any]:
    logger.warning("event ignored", extra={"reason": reason})
    return {"status": "ignored", "reason": reason}

"""The fleet view: a member's reconcile reports its coverage to the central bus; the recorder keeps
each member's latest report and alarms; `python -m cli fleet-status` prints them and flags a member
that stopped reporting."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest

import cli.__main__ as cli
from fleet.handler import handle_fleet_event
from fleet.rollup import statuses
from fleet.store import FleetTable
from localaws.account import LocalAccount
from tests.conftest import reconcile_runner

FLEET_TABLE = "log-group-governor-fleet"
DAY = 86_400
NOW = 1_795_850_000.0
MEMBERS = [("210987654321", "eu-west-1"), ("210987654321", "us-east-1"), ("345678901234", "eu-west-1")]


@pytest.fixture
def table(account: LocalAccount) -> FleetTable:
    account.client("dynamodb").create_table(TableName=FLEET_TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    return FleetTable(FLEET_TABLE, account.client("dynamodb"))


def coverage_event(account: str, region: str, *, run_id: str = "nightly", governed: int = 120, compliant_percent: float = 97.5,
                   opt_outs: int = 3, conflicts: int = 1, errors: int = 0) -> dict[str, Any]:
    """As EventBridge delivers a member's PutEvents on the central bus (account and region set by EventBridge)."""
    return {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "log-group-governor coverage",
            "source": "log-group-governor", "account": account, "time": "2026-11-29T03:14:00Z", "region": region,
            "resources": [], "detail": {"runId": run_id, "dryRun": False, "reconcile": True, "finishedAt": "2026-11-29T03:14:00Z",
                                        "logGroups": governed + 10, "governed": governed, "compliant": int(governed * compliant_percent / 100),
                                        "compliantPercent": compliant_percent, "repairedByThisRun": 2,
                                        "excluded": {"excluded-tag": opt_outs, "excluded-prefix": 7}, "conflicts": {"no-free-slot": conflicts},
                                        "unsupportedClass": 4, "orphans": 0, "errors": errors}}


def alarm_event(account: str, region: str, name: str, state: str) -> dict[str, Any]:
    return {"version": "0", "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a4a", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": account, "time": "2026-11-29T03:20:00Z", "region": region,
            "resources": [f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"],
            "detail": {"alarmName": name, "state": {"value": state, "reason": "Threshold Crossed", "timestamp": "2026-11-29T03:20:00.000+0000"},
                       "previousState": {"value": "OK"}, "configuration": {"metrics": []}}}


def scheduled_event() -> dict[str, Any]:
    return {"version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "111111111111", "time": "2026-11-29T04:00:00Z", "region": "eu-west-1", "resources": [], "detail": {}}


def test_the_recorder_keeps_each_members_latest_report_and_flags_a_silent_one(table: FleetTable) -> None:
    handle_fleet_event(coverage_event(*MEMBERS[0], run_id="monday"), table, now=NOW - 2 * DAY)
    handle_fleet_event(coverage_event(*MEMBERS[0], run_id="tuesday", compliant_percent=99.0), table, now=NOW - 3600)
    handle_fleet_event(coverage_event(*MEMBERS[1]), table, now=NOW - 3600)
    handle_fleet_event(coverage_event(*MEMBERS[2]), table, now=NOW - 4 * DAY)  # its reconcile stopped days ago
    handle_fleet_event(alarm_event(*MEMBERS[1], "LogGroupGovernor-DeadLetters", "ALARM"), table, now=NOW - 60)

    checked = handle_fleet_event(scheduled_event(), table, now=NOW)

    assert checked["silent"] == ["345678901234/eu-west-1"] and checked["alarming"] == ["210987654321/us-east-1"]
    assert (checked["members"], checked["reporting"]) == (3, 2)  # the archive expects deliveries while members report
    rows = {(m.account, m.region): m.as_dict() for m in statuses(*table.contents(), now=NOW)}
    assert rows[MEMBERS[0]]["runId"] == "tuesday" and rows[MEMBERS[0]]["compliantPercent"] == 99.0
    assert (rows[MEMBERS[0]]["optOuts"], rows[MEMBERS[0]]["conflicts"]) == (3, 1)


def test_the_member_is_who_sent_the_event_and_foreign_events_are_ignored(table: FleetTable) -> None:
    event = coverage_event(*MEMBERS[0])
    event["detail"]["account"] = "999999999999"  # a claim in the detail is not who sent it

    handle_fleet_event(event, table, now=NOW)
    ignored = handle_fleet_event({**coverage_event(*MEMBERS[0]), "source": "someone.else"}, table, now=NOW)
    malformed = handle_fleet_event({**coverage_event(*MEMBERS[0]), "detail": {"hello": "world"}}, table, now=NOW)

    assert [(r.account, r.region) for r in table.contents()[0]] == [MEMBERS[0]]
    assert ignored["status"] == malformed["status"] == "ignored"


def test_fleet_status_prints_coverage_per_account_and_region_and_fails_while_a_member_is_silent(
        account: LocalAccount, table: FleetTable, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.boto3, "Session", lambda **_: boto3.DEFAULT_SESSION)
    monkeypatch.setattr(cli.time, "time", lambda: NOW)
    handle_fleet_event(coverage_event(*MEMBERS[0]), table, now=NOW - 3600)
    handle_fleet_event(coverage_event(*MEMBERS[2], errors=2), table, now=NOW - 4 * DAY)
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(["fleet-status", "--table", FLEET_TABLE, "--region", account.region], stdout=out, stderr=err)

    lines = out.getvalue().splitlines()
    assert code == 1, err.getvalue()
    assert lines[0].split()[:3] == ["account", "region", "groups"]
    healthy = next(line for line in lines if line.startswith("210987654321"))
    assert "97.5%" in healthy and healthy.endswith("ok")
    silent = next(line for line in lines if line.startswith("345678901234"))
    assert "96 h ago" in silent and silent.endswith("SILENT")
    assert lines[-1] == "2 members, 1 silent"


def test_a_members_reconcile_reports_its_coverage_to_the_fleet_bus(account: LocalAccount, configure: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The central bus is a bus in moto's one account here; what reaches it is read through a rule and a queue."""
    events, sqs = account.client("events"), account.client("sqs")
    bus = events.create_event_bus(Name="log-group-governor-fleet")["EventBusArn"]
    queue = sqs.create_queue(QueueName="fleet-tap")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="tap", EventBusName="log-group-governor-fleet", EventPattern=json.dumps({"source": ["log-group-governor"]}))
    events.put_targets(Rule="tap", EventBusName="log-group-governor-fleet", Targets=[{"Id": "q", "Arn": queue_arn}])
    monkeypatch.setenv("GOVERNOR_FLEET_BUS", bus)
    account.create_log_group("/aws/lambda/orders")

    run = reconcile_runner()("nightly-7")

    assert run.result["done"] is True
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    delivered = json.loads(message["Body"])
    assert (delivered["source"], delivered["detail-type"]) == ("log-group-governor", "log-group-governor coverage")
    assert delivered["detail"]["runId"] == "nightly-7" and delivered["detail"]["governed"] == 1


def test_a_row_past_its_ttl_pins_no_alarm_and_a_member_going_silent_alarms_each_time(table: FleetTable) -> None:
    """One stray event must not hold FleetSilentMembers in ALARM for ever, and a second member going
    silent while the alarm already fires must notify again (#18)."""
    from fleet.rollup import ROW_TTL_S

    handle_fleet_event(coverage_event("999988887777", "eu-west-1"), table, now=NOW - ROW_TTL_S - DAY)  # long gone
    handle_fleet_event(coverage_event(*MEMBERS[0]), table, now=NOW - 3 * DAY)                           # silent now
    handle_fleet_event(coverage_event(*MEMBERS[1]), table, now=NOW - 3600)

    first = handle_fleet_event(scheduled_event(), table, now=NOW)
    again = handle_fleet_event(scheduled_event(), table, now=NOW + 3600)
    later = handle_fleet_event(scheduled_event(), table, now=NOW + 3 * DAY)  # the second member stopped too

    assert first["silent"] == ["210987654321/eu-west-1"] and first["members"] == 2  # the expired row is not a member
    assert (first["newlySilent"], again["newlySilent"], later["newlySilent"]) == (["210987654321/eu-west-1"], [], ["210987654321/us-east-1"])


def test_fleet_status_forget_removes_a_member_that_left(account: LocalAccount, table: FleetTable) -> None:
    handle_fleet_event(coverage_event(*MEMBERS[2]), table, now=NOW)
    handle_fleet_event(alarm_event(*MEMBERS[2], "LogGroupGovernor-DeadLetters", "ALARM"), table, now=NOW)
    handle_fleet_event(coverage_event(*MEMBERS[0]), table, now=NOW)
    err = io.StringIO()

    code = cli.main(["fleet-status", "--table", FLEET_TABLE, "--forget", "345678901234/eu-west-1"], stdout=io.StringIO(), stderr=err)
    bad = cli.main(["fleet-status", "--table", FLEET_TABLE, "--forget", "345678901234"], stdout=io.StringIO(), stderr=io.StringIO())

    assert (code, err.getvalue().strip(), bad) == (0, "forgot 345678901234/eu-west-1: 2 rows removed", 2)
    reports, alarms = table.contents()
    assert {(r.account, r.region) for r in reports} == {MEMBERS[0]} and alarms == []


def test_the_fleet_view_shows_each_members_compliance_per_control() -> None:
    """#21: a member whose rules govern more controls reports each one's compliance; the fleet table prints it."""
    from fleet.rollup import MemberReport, table

    coverage = {"logGroups": 10, "governed": 9, "compliantPercent": 88.9, "conflicts": {}, "excluded": {}, "errors": 0,
                "byControl": {"subscription": {"governed": 9, "compliant": 9, "compliantPercent": 100.0},
                              "encryption": {"governed": 9, "compliant": 8, "compliantPercent": 88.9}}}
    rows = statuses([MemberReport("111111111111", "eu-west-1", 1_000.0, coverage)], [], now=1_100.0)

    assert rows[0].as_dict()["byControl"] == {"subscription": 100.0, "encryption": 88.9}
    assert "per control: encryption 88.9%, subscription 100.0%" in table(rows, now=1_100.0)


def test_review_each_member_alarm_going_into_alarm_is_counted_at_once_for_members_without_a_topic(table: FleetTable) -> None:
    """A member without a topic of its own is told through the fleet view: the first member's alarm must not hide the second's."""
    from fleet import handler as fleet_handler

    fleet_handler.metrics.clear_metrics()
    first = handle_fleet_event(alarm_event(*MEMBERS[0], "LogGroupGovernor-DeadLetters", "ALARM"), table, now=NOW)
    second = handle_fleet_event(alarm_event(*MEMBERS[1], "LogGroupGovernor-HandlerErrors", "ALARM"), table, now=NOW + 60)
    back = handle_fleet_event(alarm_event(*MEMBERS[0], "LogGroupGovernor-DeadLetters", "OK"), table, now=NOW + 120)

    assert (first["raised"], second["raised"], back["raised"]) == (True, True, False)
    assert fleet_handler.metrics.metric_set["FleetMemberAlarmRaised"]["Value"] == [1.0, 1.0]
    fleet_handler.metrics.clear_metrics()

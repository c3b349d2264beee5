"""The organization's central log archive (org_app.py): the destination, who may use it, its stream,
and ship-logs consuming it; cdk-nag and cfn-lint on the template."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from org_app import build_org_app
from shared.config import ConfigError
from tests.infra.conftest import REGION, REPO_CONTEXT, Synthesized
from tests.infra.test_stack import CFN_LINT_IGNORED

CENTRAL = "111111111111"
MEMBERS = ["210987654321", "345678901234"]
ORG = "o-a1b2c3d4e5"


def synthesize_archive(**overrides: Any) -> Synthesized:
    context = {**REPO_CONTEXT, **{f"archive:{k}": v for k, v in overrides.items()}}
    outdir = Path(tempfile.mkdtemp(prefix="cdk.out-archive-"))
    app = cdk.App(context=context, outdir=str(outdir))
    stack = build_org_app(app, env=cdk.Environment(account=CENTRAL, region=REGION))
    app.synth()
    return Synthesized(Template.from_stack(stack), outdir)


@pytest.fixture(scope="module")
def org_archive() -> Synthesized:
    return synthesize_archive(organizationId=ORG)


@pytest.fixture(scope="module")
def listed_archive() -> Synthesized:
    return synthesize_archive(memberAccounts=MEMBERS)


def _destination(synthesized: Synthesized) -> dict[str, Any]:
    [destination] = synthesized.of_type("AWS::Logs::Destination")
    return destination["Properties"]


def _policy(synthesized: Synthesized) -> dict[str, Any]:
    raw = _destination(synthesized)["DestinationPolicy"]
    return json.loads(raw if isinstance(raw, str) else "".join(p if isinstance(p, str) else "<token>" for p in raw["Fn::Join"][1]))


def _render(value: Any) -> Any:
    """A template value with the partition resolved (``aws``), as CloudFormation would."""
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join("aws" if p == {"Ref": "AWS::Partition"} else str(_render(p)) for p in parts)
    if isinstance(value, dict):
        return {k: _render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v) for v in value]
    return value


def test_the_destination_admits_the_organization_and_nobody_else(org_archive: Synthesized) -> None:
    [statement] = _policy(org_archive)["Statement"]

    assert statement["Effect"] == "Allow" and statement["Principal"] == {"AWS": "*"}
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": [ORG]}}  # a foreign account is not in the organization
    assert statement["Action"] == ["logs:PutSubscriptionFilter", "logs:PutAccountPolicy"]
    assert statement["Resource"].endswith(":destination:log-group-governor-archive")


def test_a_listed_destination_admits_exactly_the_members(listed_archive: Synthesized) -> None:
    [statement] = _policy(listed_archive)["Statement"]

    assert statement["Principal"] == {"AWS": MEMBERS} and "Condition" not in statement
    assert "999999999999" not in json.dumps(statement)


def test_cloudwatch_logs_writes_to_the_stream_for_admitted_sources_only(org_archive: Synthesized, listed_archive: Synthesized) -> None:
    # Only aws:SourceArn, the key AWS's CreateDestination example uses: no page says CloudWatch Logs sends aws:SourceOrgID.
    for synthesized, condition in ((org_archive, {"StringLike": {"aws:SourceArn": [f"arn:aws:logs:{REGION}:*:*"]}}),
                                   (listed_archive, {"StringLike": {"aws:SourceArn": [f"arn:aws:logs:{REGION}:{a}:*" for a in (*MEMBERS, CENTRAL)]}})):
        destination = _destination(synthesized)
        role_id = destination["RoleArn"]["Fn::GetAtt"][0]
        [trust] = synthesized.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "logs.amazonaws.com"} and _render(trust["Condition"]) == condition
        statements = [s for p in synthesized.of_type("AWS::IAM::Policy") if {"Ref": role_id} in p["Properties"]["Roles"]
                      for s in p["Properties"]["PolicyDocument"]["Statement"]]
        stream_id = destination["TargetArn"]["Fn::GetAtt"][0]
        assert statements == [{"Action": ["kinesis:PutRecord", "kinesis:PutRecords"], "Effect": "Allow",
                               "Resource": {"Fn::GetAtt": [stream_id, "Arn"]}}]


def test_the_stream_is_encrypted_and_ship_logs_consumes_it_record_by_record(org_archive: Synthesized) -> None:
    [stream] = org_archive.of_type("AWS::Kinesis::Stream")
    assert stream["Properties"]["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}
    [mapping] = [m for m in org_archive.of_type("AWS::Lambda::EventSourceMapping") if "StartingPosition" in m["Properties"]]  # #31: and the pull's queue
    properties = mapping["Properties"]
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True and properties["MaximumRetryAttempts"] == 10
    assert "OnFailure" in properties["DestinationConfig"]
    consumer = org_archive.resources[properties["FunctionName"]["Ref"]]
    assert consumer["Properties"]["Handler"] == "ship_logs.handler.handler"
    # Invoked by the stream only: no account's CloudWatch Logs may invoke it directly.
    permissions = [p["Properties"] for p in org_archive.of_type("AWS::Lambda::Permission")]
    assert all(p["Principal"] == "events.amazonaws.com" for p in permissions)  # only the fleet recorder's rules
    assert not any(p["FunctionName"] == {"Fn::GetAtt": [properties["FunctionName"]["Ref"], "Arn"]} for p in permissions)


def test_the_fleet_bus_admits_only_the_organizations_governors_and_a_silent_member_alarms(org_archive: Synthesized) -> None:
    [bus_policy] = org_archive.of_type("AWS::Events::EventBusPolicy") or [None]
    if bus_policy is not None:
        statement = bus_policy["Properties"]["Statement"]
    else:
        [bus] = org_archive.of_type("AWS::Events::EventBus")
        [statement] = bus["Properties"]["Policy"]["Statement"]
    assert statement["Action"] == "events:PutEvents" and statement["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": ORG}
    # ...and only the members' governor roles (#18: before, any principal of any account of the organization).
    assert [_render(a) for a in statement["Condition"]["ArnLike"]["aws:PrincipalArn"]] == [
        f"arn:aws:iam::*:role/log-group-governor-reporter-{REGION}", f"arn:aws:iam::*:role/log-group-governor-fleet-forwarder-{REGION}",
        f"arn:aws:iam::*:role/log-group-governor-subscriber-{REGION}",  # #31: a new group's replay request
        f"arn:aws:iam::*:role/log-group-governor-delivery-gaps-{REGION}"]  # #31 item 2: a delivery gap's
    rules = [r["Properties"] for r in org_archive.of_type("AWS::Events::Rule")]
    patterns = [r.get("EventPattern") for r in rules if "EventPattern" in r]
    assert {"source": ["log-group-governor"], "detail-type": ["log-group-governor coverage"]} in patterns
    assert {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]} in patterns
    assert any(r.get("ScheduleExpression") == "rate(1 hour)" for r in rules)
    silent = [a["Properties"] for a in org_archive.of_type("AWS::CloudWatch::Alarm") if a["Properties"].get("MetricName") == "FleetSilentMembers"]
    assert silent and silent[0]["AlarmActions"]
    newly = [a["Properties"] for a in org_archive.of_type("AWS::CloudWatch::Alarm") if a["Properties"].get("MetricName") == "FleetNewlySilentMembers"]
    assert newly and newly[0]["AlarmActions"]  # fires again for each member that goes silent
    [table] = [t for k, t in org_archive.resources.items() if t["Type"] == "AWS::DynamoDB::GlobalTable" and "Ledger" not in k]  # #31's ledger apart
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["Properties"]["Replicas"][0]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_cdk_nag_and_cfn_lint_are_clean(org_archive: Synthesized) -> None:
    from cfnlint.api import ManualArgs, lint

    report = json.loads((org_archive.outdir / "validation-report.json").read_text())
    [nag] = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert (nag["conclusion"], nag["violations"]) == ("success", [])
    assert all(len(v["reason"]) > 30 for v in nag["suppressedViolations"])
    matches = lint(json.dumps(org_archive.template.to_json()), config=ManualArgs(regions=[REGION], ignore_checks=list(CFN_LINT_IGNORED)))
    assert [str(m) for m in matches] == []


@pytest.mark.parametrize(("context", "message"), [
    ({}, "the destination must admit someone"),
    ({"archive:organizationId": "org-1"}, "archive:organizationId: expected an AWS Organizations id"),
    ({"archive:memberAccounts": ["12345"]}, "12-digit account ids"),
    ({"archive:organizationId": ORG, "archive:shard": 2}, "unknown context key"),
])
def test_an_archive_configuration_that_cannot_work_stops_synth(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_org_app(cdk.App(context={**REPO_CONTEXT, **context}))


def test_a_consumer_falling_behind_and_a_lost_fleet_report_alarm(org_archive: Synthesized) -> None:
    alarms = [a["Properties"] for a in org_archive.of_type("AWS::CloudWatch::Alarm")]
    behind = [a for a in alarms if a.get("MetricName") == "IteratorAge"]
    assert behind and behind[0]["Threshold"] == 600_000 and behind[0]["AlarmActions"]
    fleet_rules = [r["Properties"] for r in org_archive.of_type("AWS::Events::Rule")]
    assert all("DeadLetterConfig" in t for r in fleet_rules for t in r["Targets"])


def test_deliveries_that_stop_while_members_report_and_a_throttled_stream_alarm(org_archive: Synthesized) -> None:
    """A wrong trust or role shows on the destination side within the hour, not when someone looks (#17)."""
    alarms = {a["Properties"]["AlarmDescription"].split(": ", 1)[1][:40]: a["Properties"] for a in org_archive.of_type("AWS::CloudWatch::Alarm")}
    [stopped] = [a for d, a in alarms.items() if d.startswith("the archive's stream took no record")]
    [expression] = [m for m in stopped["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "IF(FILL(reporting, 0) >= 1 AND FILL(incoming, 0) < 1, 1, 0)"
    inputs = {m["Id"]: m["MetricStat"] for m in stopped["Metrics"] if "MetricStat" in m}
    assert (inputs["incoming"]["Metric"]["MetricName"], inputs["incoming"]["Stat"], inputs["incoming"]["Period"]) == ("IncomingRecords", "Sum", 3600)
    assert (inputs["reporting"]["Metric"]["MetricName"], inputs["reporting"]["Metric"]["Namespace"]) == ("FleetReportingMembers", "LogGroupGovernor")
    assert stopped["AlarmActions"] and stopped["Threshold"] == 1
    [throttled] = [a for a in alarms.values() if a.get("MetricName") == "WriteProvisionedThroughputExceeded"]
    assert throttled["AlarmActions"] and throttled["Statistic"] == "Sum"


def test_a_listed_destination_policy_must_fit_the_5120_bytes_aws_stores() -> None:
    from shared.config import ConfigError
    from stacks.archive import ArchiveSettings, max_listed_accounts

    fits = max_listed_accounts()
    assert 50 < fits < 200  # the figure docs/organization.md and configuration.md give (test_reference checks them)
    ArchiveSettings.from_context({"archive:memberAccounts": [f"{n:012d}" for n in range(fits)]})
    with pytest.raises(ConfigError, match=r"archive:memberAccounts: \d+ accounts make the destination's access policy about [\d,]+ bytes; "
                                          r"PutDestinationPolicy takes at most 5,120. Admit the organization instead"):
        ArchiveSettings.from_context({"archive:memberAccounts": [f"{n:012d}" for n in range(fits + 1)]})
    # An organization is one condition, whatever its size.
    ArchiveSettings.from_context({"archive:organizationId": ORG, "archive:memberAccounts": [f"{n:012d}" for n in range(fits + 1)]})


@pytest.mark.parametrize("kind", ["organization", "listed"])
def test_issue31_the_archives_pull_assumes_only_the_members_reader_role_and_writes_only_its_stream(
        org_archive: Synthesized, listed_archive: Synthesized, kind: str) -> None:
    synthesized = org_archive if kind == "organization" else listed_archive
    function = synthesized.function("governor.handlers.archive_pull.handler")
    role = synthesized.resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
    assert role["Properties"]["RoleName"] == f"log-group-governor-archive-replay-{REGION}"  # the name members' roles trust
    statements = {tuple(s["Action"]) if isinstance(s["Action"], list) else (s["Action"],): _render(s) for s in synthesized.role_policy_of(function)}
    assume = statements[("sts:AssumeRole",)]
    if kind == "organization":
        assert assume["Resource"] == f"arn:aws:iam::*:role/log-group-governor-replay-reader-{REGION}"
        assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORG}}
    else:
        assert sorted(assume["Resource"]) == [f"arn:aws:iam::{m}:role/log-group-governor-replay-reader-{REGION}" for m in MEMBERS]
    # The queue: consumed (the event source mapping's grant) and sent to (intake, continuations), and nothing else.
    consume = ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:SendMessage")
    assert set(statements) == {("sts:AssumeRole",), ("kinesis:PutRecord",), ("dynamodb:GetItem", "dynamodb:PutItem"), consume,
                               ("logs:CreateLogStream", "logs:PutLogEvents")}
    queue_id = next(k for k, v in synthesized.resources.items() if v["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in v["Properties"]
                    and v["Properties"].get("FifoQueue"))
    assert statements[consume]["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    stream_id = next(k for k, v in synthesized.resources.items() if v["Type"] == "AWS::Kinesis::Stream")
    assert statements[("kinesis:PutRecord",)]["Resource"] == {"Fn::GetAtt": [stream_id, "Arn"]}


def test_issue31_requests_go_from_the_fleet_bus_through_a_fifo_queue_grouped_by_member_and_failures_alarm(org_archive: Synthesized) -> None:
    resources = org_archive.template.to_json()["Resources"]
    function_id = next(k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function" and v["Properties"].get("Handler") == "governor.handlers.archive_pull.handler")
    [rule] = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::Events::Rule"
              and v["Properties"].get("EventPattern") == {"source": ["log-group-governor"], "detail-type": ["log-group-governor replay request"]}]
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} and target["DeadLetterConfig"] and target["RetryPolicy"]
    queues = {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue" and v["Properties"].get("FifoQueue")}
    [(queue_id, queue)] = [(k, q) for k, q in queues.items() if "RedrivePolicy" in q]
    assert queue["SqsManagedSseEnabled"] and queue["RedrivePolicy"]["maxReceiveCount"] == 5
    assert queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] in queues  # a FIFO dead-letter queue
    [mapping] = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::Lambda::EventSourceMapping"
                 and v["Properties"]["FunctionName"] == {"Ref": function_id}]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]} and mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    alarms = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::CloudWatch::Alarm"]
    failed = [a for a in alarms if a.get("MetricName") == "ArchivePullFailed"]
    assert failed and failed[0]["AlarmActions"]
    [ledger] = [v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::DynamoDB::GlobalTable" and "Ledger" in k]
    assert ledger["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}

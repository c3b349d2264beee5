"""Act 6 of `make demo`: an organization on moto (issue #10). A logging account holds the central
archive in two regions (a destination admitting the organization, its stream, ship-logs, the fleet
bus); three member accounts in both regions run the real governor handlers pointed at their region's
archive; their groups are subscribed, their events ship from the central stream with account and
region, their reconciles report to the fleet bus, and `python -m cli fleet-status`'s table prints,
with a member whose reconcile stopped flagged silent. A foreign account is refused by the destination.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, TextIO
from unittest import mock

import boto3

from fleet import rollup
from fleet.handler import handle_fleet_event
from fleet.store import FleetTable
from governor.config import ENV_CONFIG, ENV_FLEET_BUS, ENV_REPORTS_BUCKET, ENV_STATE_TABLE
from governor.handlers import create_log_group as handlers
from governor.handlers.backfill import build_parts, handle_backfill
from localaws.events import create_log_group_event
from localaws.lambda_runtime import LocalLambdaContext, SimulatedClock, handler_output_to, invoke
from localaws.log_store import log_store
from localaws.organization import Organization
from localaws.payloads import lambda_log_events
from ship_logs import handler as ship_logs
from ship_logs.config import ENV_ALLOW_LOOPBACK_HTTP, ENV_SHIP_LOGS, ENV_SHIP_LOGS_DLQ_URL
from stacks.archive import ArchiveSettings, destination_policy
from stacks.fleet import FLEET_BUS_NAME, fleet_bus_arn
from stacks.rollout import RolloutSettings
from stacks.settings import DeploymentSettings

ORG_ID = "o-exampleorg1"
CENTRAL = "111111111111"
MEMBERS = ("210987654321", "345678901234", "456789012345")
FOREIGN = "999999999999"
REGIONS = ("eu-west-1", "us-east-1")
GROUPS = ("/aws/lambda/orders-api", "/aws/lambda/billing-worker", "/ecs/search")
FLEET_TABLE = "log-group-governor-fleet"
STATE_TABLE = "log-group-governor-state"
REPORTS = "log-group-governor-reports"
SENDER_ROLE = "LogGroupGovernor-SenderRole"
#: The third member's reconcile in us-east-1 last reported this long ago: the fleet check flags it.
SILENT_FOR_S = 4 * 86400


def fleet_at_work(context: dict[str, Any], out: TextIO) -> None:
    print(f"\n6. An organization ({ORG_ID}): a central archive in {' and '.join(REGIONS)} (account {CENTRAL}), "
          f"{len(MEMBERS)} members in both regions\n")
    org = Organization(ORG_ID, {CENTRAL, *MEMBERS})
    org.install(boto3.DEFAULT_SESSION)
    rollout = RolloutSettings(central_account=CENTRAL, regions=REGIONS, waves=(("ou-exam-11111111",),))
    streams = {region: _archive(org, region) for region in REGIONS}
    with org.as_account(CENTRAL, REGIONS[0]):
        boto3.client("dynamodb").create_table(TableName=FLEET_TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        fleet = FleetTable(FLEET_TABLE, boto3.client("dynamodb"))
    for region in REGIONS:  # the fleet bus admits the organization's governors (the archive stack's policy)
        org.bus_policies[fleet_bus_arn(region, CENTRAL)] = {"Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "events:PutEvents", "Resource": fleet_bus_arn(region, CENTRAL),
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}}}]}

    now = time.time()
    with org.as_account(MEMBERS[0], REGIONS[0]):  # what the rollout shipped before #17: no sender role
        logs = boto3.client("logs")
        logs.create_log_group(logGroupName="/aws/lambda/before-the-sender-role")
        try:
            logs.put_subscription_filter(logGroupName="/aws/lambda/before-the-sender-role", filterName="log-group-governor", filterPattern="",
                                         destinationArn=rollout.destination_arn(REGIONS[0]))
            print("   UNEXPECTED: an organization-wide destination took a filter without the sender's role")
        except Exception as error:  # noqa: BLE001 (shown as AWS says it)
            print(f"   a member filter without the sender role: {type(error).__name__}: {str(error).split(': ', 1)[-1].split(' (')[0]}")
        logs.delete_log_group(logGroupName="/aws/lambda/before-the-sender-role")
    print("   members (the member template of the StackSet rollout: the real handlers, this region's destination, the sender role):")
    for member in MEMBERS:
        for region in REGIONS:
            governed = _member(org, member, region, rollout, context, out)
            written = sum(org.deliver(member, region, group, lambda_log_events(12, seed=(MEMBERS.index(member) * 10 + REGIONS.index(region)) * 10 + n))
                          for n, group in enumerate(governed))  # distinct event ids per group
            print(f"     {member} {region}: {len(governed)} groups subscribed to {rollout.destination_arn(region).split(':', 5)[-1]} "
                  f"in {CENTRAL}; {written} batches written to the {region} archive stream")

    with org.as_account(FOREIGN, REGIONS[0]):
        boto3.client("logs").create_log_group(logGroupName=GROUPS[0])
        try:
            boto3.client("logs").put_subscription_filter(logGroupName=GROUPS[0], filterName="log-group-governor", filterPattern="",
                                                         destinationArn=rollout.destination_arn(REGIONS[0]))
            print("     UNEXPECTED: a foreign account could subscribe")
        except Exception as error:  # noqa: BLE001 (shown as AWS says it)
            print(f"     {FOREIGN} (not in the organization): {type(error).__name__}: "
                  f"{str(error).split(': ', 1)[-1].split(' on resource')[0]} on the destination")

    print("\n   the central archive's ship-logs, from each region's stream (a local log store stands in for OpenSearch):")
    with log_store() as store, org.as_account(CENTRAL, REGIONS[0]):
        _configure_ship_logs(store)
        for region, stream in streams.items():
            batch = org.kinesis_event(CENTRAL, region, stream)
            result = invoke(ship_logs.handler, batch, function_name="ship-logs", out=out)
            print(f"     {region}: {len(batch['Records'])} Kinesis records, {result['shipped']} log records shipped, "
                  f"{len(result['batchItemFailures'])} failures")
        ship_logs.shipper.cache_clear()
        by_source: dict[tuple[str, str], int] = {}
        for document in store.documents():
            by_source[(document["owner"], document["region"])] = by_source.get((document["owner"], document["region"]), 0) + 1
        print("     records by source account and region: " + ", ".join(f"{a}/{r} {n}" for (a, r), n in sorted(by_source.items())))

    print("\n   the fleet view: each member's reconcile reported to its region's fleet bus; the recorder keeps the latest")
    print(f"   ({MEMBERS[2]}'s last report in {REGIONS[1]} is made {SILENT_FOR_S // 86400} days old: its reconcile stopped; "
          f"{MEMBERS[1]} forwards a dead-letter alarm)")
    with org.as_account(CENTRAL, REGIONS[0]), handler_output_to(out):
        for bus, delivered in sorted(org.delivered.items()):
            for event in delivered:
                silent = event["account"] == MEMBERS[2] and event["region"] == REGIONS[1]
                handle_fleet_event(event, fleet, now=now - SILENT_FOR_S if silent else now)
        handle_fleet_event(_alarm(MEMBERS[1], REGIONS[0]), fleet, now=now)
        rows = rollup.statuses(*fleet.contents(), now=now)
    print("   python -m cli fleet-status --table " + FLEET_TABLE)
    print("\n".join(f"     {line}" for line in rollup.table(rows, now=now).splitlines()))


def _archive(org: Organization, region: str) -> str:
    """The archive stack's destination and stream in ``region`` of the logging account."""
    with org.as_account(CENTRAL, region):
        kinesis = boto3.client("kinesis", region_name=region)
        kinesis.create_stream(StreamName="log-archive", ShardCount=1)
        stream = kinesis.describe_stream_summary(StreamName="log-archive")["StreamDescriptionSummary"]["StreamARN"]
        boto3.client("events", region_name=region).create_event_bus(Name=FLEET_BUS_NAME)
    arn = f"arn:aws:logs:{region}:{CENTRAL}:destination:log-group-governor-archive"
    org.create_destination(CENTRAL, "log-group-governor-archive", stream, destination_policy(ArchiveSettings(organization_id=ORG_ID), arn),
                           region=region)
    return stream


def _member(org: Organization, member: str, region: str, rollout: RolloutSettings,
            context: dict[str, Any], out: TextIO) -> list[str]:
    """One member governor: its groups created and governed from their events, then its reconcile."""
    settings = DeploymentSettings.from_context({**context, "governor:destinationArn": rollout.destination_arn(region),
                                                "governor:destinationRoleArn": _sender_role(org, member),
                                                "governor:fleetBusArn": fleet_bus_arn(region, CENTRAL)})
    env = {ENV_CONFIG: json.dumps(settings.policy.to_json_dict()), ENV_STATE_TABLE: STATE_TABLE, ENV_REPORTS_BUCKET: f"{REPORTS}-{member}",
           ENV_FLEET_BUS: settings.fleet_bus_arn or ""}
    with org.as_account(member, region), mock.patch.dict(os.environ, env):
        s3 = boto3.client("s3", region_name=region)
        bucket = f"{REPORTS}-{member}-{region}"
        # us-east-1 takes no LocationConstraint (S3's rule; moto enforces it)
        s3.create_bucket(Bucket=bucket, **({} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}))
        os.environ[ENV_REPORTS_BUCKET] = bucket
        _state_table(region)
        handlers.subscription_parts.cache_clear()
        governed = []
        for group in GROUPS:
            boto3.client("logs", region_name=region).create_log_group(logGroupName=group)
            result = invoke(handlers.subscribe_log_group, create_log_group_event(group, region=region, account=member), function_name="subscribe-log-group", out=out)
            if result.get("applied"):
                governed.append(group)
        clock = SimulatedClock()
        parts = build_parts(os.environ, clock=clock.monotonic, sleep=clock.sleep)
        with handler_output_to(out):
            handle_backfill({"execution": "nightly", "input": {"reconcile": True}},
                            LocalLambdaContext("backfill", timeout_ms=900_000, clock=clock.monotonic), parts)
        handlers.subscription_parts.cache_clear()
    return governed


def _sender_role(org: Organization, member: str) -> str:
    """The member template's sender role (stacks/sender_role.py; IAM is global: one per member)."""
    with org.as_account(member):
        iam = boto3.client("iam")
        try:
            return iam.get_role(RoleName=SENDER_ROLE)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
            return iam.create_role(RoleName=SENDER_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _state_table(region: str) -> None:
    dynamodb = boto3.client("dynamodb", region_name=region)
    dynamodb.create_table(TableName=STATE_TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")


def _configure_ship_logs(store: Any) -> None:
    queue = boto3.client("sqs").create_queue(QueueName="archive-ship-logs-dlq")["QueueUrl"]
    secret = boto3.client("secretsmanager").create_secret(Name="archive-store", SecretString=json.dumps({"username": "u", "password": "p"}))["ARN"]
    os.environ.update({ENV_SHIP_LOGS: json.dumps({"sink": "opensearch", "endpoint": store.url, "auth": "basic", "secretArn": secret,
                                                  "index": "logs-%Y.%m.%d"}), ENV_SHIP_LOGS_DLQ_URL: queue, ENV_ALLOW_LOOPBACK_HTTP: "1"})
    ship_logs.shipper.cache_clear()


def _alarm(member: str, region: str) -> dict[str, Any]:
    return {"version": "0", "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a4a", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": member, "time": "2026-11-29T03:20:00Z", "region": region, "resources": [],
            "detail": {"alarmName": "LogGroupGovernor-DeadLetters", "state": {"value": "ALARM"}}}

"""An organization on moto (localaws.organization): members' governors subscribe their groups to the
central archive's destination, whose policy (the archive stack's own) refuses a foreign account; the
members' events reach the central stream and ship-logs ships them with their account and region."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from governor.handlers.create_log_group import subscribe_log_group
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, sqs_batch
from localaws.log_store import LogStore, log_store
from localaws.organization import Organization
from localaws.payloads import lambda_log_events
from ship_logs import handler as ship_logs
from ship_logs.config import ENV_ALLOW_LOOPBACK_HTTP, ENV_SHIP_LOGS, ENV_SHIP_LOGS_DLQ_URL
from stacks.archive import ArchiveSettings, destination_policy
from tests.conftest import STATE_TABLE, call, call_failing

ORG_ID = "o-a1b2c3d4e5"
CENTRAL, MEMBER, FOREIGN = "111111111111", "210987654321", "999999999999"
GROUP = "/aws/lambda/orders-api"


@pytest.fixture
def org(account: LocalAccount, configure: Any) -> Iterator[tuple[Organization, str, str]]:
    organization = Organization(ORG_ID, {CENTRAL, MEMBER})
    organization.install(boto3.DEFAULT_SESSION)
    with organization.as_account(CENTRAL):
        kinesis = boto3.client("kinesis")
        kinesis.create_stream(StreamName="log-archive", ShardCount=1)
        stream = kinesis.describe_stream_summary(StreamName="log-archive")["StreamDescriptionSummary"]["StreamARN"]
    # The archive stack's own policy, as it synthesizes it.
    destination = organization.create_destination(CENTRAL, "log-group-governor-archive", stream, destination_policy(
        ArchiveSettings(organization_id=ORG_ID), f"arn:aws:logs:{account.region}:{CENTRAL}:destination:log-group-governor-archive"))
    for member in (MEMBER, FOREIGN):
        with organization.as_account(member):
            account.create_state_table(STATE_TABLE)
            boto3.client("logs").create_log_group(logGroupName=GROUP)
    with organization.as_account(MEMBER):  # the member template's sender role (stacks/sender_role.py)
        sender = boto3.client("iam").create_role(RoleName="LogGroupGovernor-SenderRole", AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    configure(destinationArn=destination, destinationRoleArn=sender["Role"]["Arn"])
    yield organization, destination, stream


def test_a_members_governor_subscribes_its_group_to_the_central_destination(org: tuple[Organization, str, str]) -> None:
    organization, destination, _ = org

    with organization.as_account(MEMBER):
        invocation = call(subscribe_log_group, create_log_group_event(GROUP, account=MEMBER))
        filters = boto3.client("logs").describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"]

    assert (invocation.result["action"], invocation.result["applied"]) == ("subscribe", True)
    assert [(f["filterName"], f["destinationArn"], f["roleArn"]) for f in filters] == [
        ("log-group-governor", destination, f"arn:aws:iam::{MEMBER}:role/LogGroupGovernor-SenderRole")]


def test_a_member_that_passes_no_sender_role_is_refused_as_aws_refuses_it(org: tuple[Organization, str, str], configure: Any) -> None:
    """The configuration the rollout shipped before #17 (no role to an organization-wide destination). AWS answers
    InvalidParameterException "Role ARN is required ..." (recorded: cloud-custodian#8246, FIDELITY.md O4): a destination
    every new group would meet, so it alarms (DestinationErrors) and the event is kept."""
    organization, destination, _ = org
    configure(destinationArn=destination)

    with organization.as_account(MEMBER):
        invocation = call(subscribe_log_group, sqs_batch([create_log_group_event(GROUP, account=MEMBER)]))
        filters = boto3.client("logs").describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"]

    assert invocation.result["batchItemFailures"] and filters == []
    assert invocation.metrics()[("DestinationErrors", None)] == 1
    [error] = [line for line in invocation.logs if line.get("level") == "ERROR"]
    assert "Role ARN is required when creating subscription filter against destination with Organization access policy" in error["error"]


@pytest.mark.parametrize("trusted_by", ["lambda.amazonaws.com", None])
def test_issue27_a_sender_role_cloudwatch_logs_cannot_assume_is_asked_again_then_a_conflict_with_its_fix(
        org: tuple[Organization, str, str], configure: Any, trusted_by: str | None) -> None:
    """#27 item 1: AWS answers ValidationException "Make sure you have given CloudWatch Logs permission to assume the provided
    role." (recorded: terraform-provider-aws#48088) for a role it cannot assume, also for a role a StackSet created moments
    ago (IAM's eventual consistency). Each redelivery asks again; the last records the conflict, which alarms with its fix."""
    from governor.pacing import EVENT_MAX_RECEIVE_COUNT
    organization, destination, _ = org
    with organization.as_account(MEMBER):
        role = f"arn:aws:iam::{MEMBER}:role/not-yet-there"
        if trusted_by:
            role = boto3.client("iam").create_role(RoleName="untrusted", AssumeRolePolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": trusted_by}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        configure(destinationArn=destination, destinationRoleArn=role)
        deliveries = []
        for receive in range(1, EVENT_MAX_RECEIVE_COUNT + 1):
            batch = sqs_batch([create_log_group_event(GROUP, account=MEMBER)])
            batch["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(receive)
            deliveries.append(call(subscribe_log_group, batch))

    assert all(d.result["batchItemFailures"] for d in deliveries[:-1])  # asked again while the queue redelivers
    assert not any(line.get("level") == "ERROR" for d in deliveries[:-1] for line in d.logs)  # not an error yet: it may propagate
    assert deliveries[-1].result == {"batchItemFailures": []}  # the last delivery finishes it, with the conflict
    [conflict] = [line for line in deliveries[-1].logs if line.get("decision") == "conflict"]
    assert conflict["reason"] == "sender-role-not-assumable" and "trust logs.amazonaws.com" in conflict["detail"]
    assert deliveries[-1].metrics()[("Conflicts", "sender-role-not-assumable")] == 1


def test_a_foreign_account_is_refused_by_the_destination_policy(org: tuple[Organization, str, str]) -> None:
    organization, destination, _ = org

    with organization.as_account(FOREIGN):
        error, _ = call_failing(subscribe_log_group, create_log_group_event(GROUP, account=FOREIGN))
        filters = boto3.client("logs").describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"]

    assert "AccessDeniedException" in str(error) and "not authorized" in str(error)
    assert filters == []


def test_a_members_events_reach_the_central_stream_and_ship_with_account_and_region(
        org: tuple[Organization, str, str], account: LocalAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    organization, _, stream = org
    with organization.as_account(MEMBER):
        call(subscribe_log_group, create_log_group_event(GROUP, account=MEMBER))
    events = lambda_log_events(20, seed=11)

    assert organization.deliver(MEMBER, account.region, GROUP, events) == 1
    batch = organization.kinesis_event(CENTRAL, account.region, stream)

    with organization.as_account(CENTRAL), log_store() as store:
        _ship_logs_to(store, account, monkeypatch)
        result = call(ship_logs.handler, batch, function_name="ship-logs").result
    assert result["batchItemFailures"] == [] and result["shipped"] > 0
    assert {(d["owner"], d["region"], d["logGroup"]) for d in store.documents()} == {(MEMBER, account.region, GROUP)}
    ship_logs.shipper.cache_clear()


def _ship_logs_to(store: LogStore, account: LocalAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = boto3.client("sqs").create_queue(QueueName="ship-logs-dlq")["QueueUrl"]
    secret = boto3.client("secretsmanager").create_secret(Name="store", SecretString=json.dumps({"username": "u", "password": "p"}))["ARN"]
    monkeypatch.setenv(ENV_SHIP_LOGS, json.dumps({"sink": "opensearch", "endpoint": store.url, "auth": "basic", "secretArn": secret,
                                                  "index": "logs-%Y.%m.%d"}))
    monkeypatch.setenv(ENV_SHIP_LOGS_DLQ_URL, queue)
    monkeypatch.setenv(ENV_ALLOW_LOOPBACK_HTTP, "1")
    ship_logs.shipper.cache_clear()

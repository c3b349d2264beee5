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
from localaws.events import create_log_group_event
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
    """The configuration the rollout shipped before #17 (no role to an organization-wide destination)."""
    organization, destination, _ = org
    configure(destinationArn=destination)

    with organization.as_account(MEMBER):
        error, _ = call_failing(subscribe_log_group, create_log_group_event(GROUP, account=MEMBER))
        filters = boto3.client("logs").describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"]

    assert "AccessDeniedException" in str(error) and "admits an organization: the sender must pass a role" in str(error)
    assert filters == []


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

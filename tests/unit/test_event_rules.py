"""The rules' patterns (governor.events.event_pattern, as the stack deploys them) against CloudTrail
records of the shapes CloudTrail really writes (localaws/events/cloudtrail: eventVersion 1.03-1.11, IAM
users, service-linked roles with invokedBy, AWS services, string responseElements, a refused call with
null requestParameters), matched by moto's EventBridge pattern engine; and the handlers' own check of
the record's account and region (#18)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from governor.events import EVENTS_BY_ASPECT, IgnoredEvent, event_pattern, parse_log_group_call

RECORDS = Path(__file__).resolve().parents[2] / "localaws" / "events" / "cloudtrail"
OWN_ROLES = ["arn:aws:iam::123456789012:role/governor-SubscribeLogGroupRole", "arn:aws:iam::123456789012:role/governor-SetRetentionRole"]
ACCOUNT, REGION = "123456789012", "eu-west-1"


def record(name: str) -> dict[str, Any]:
    return json.loads((RECORDS / f"{name}.json").read_text())


def matches(event: dict[str, Any], aspect: str = "subscription") -> bool:
    pattern = event_pattern(aspect, own_roles=OWN_ROLES, account=ACCOUNT, region=REGION)
    return EventPattern(json.dumps(pattern), pattern).matches_event(event)


@pytest.mark.parametrize("name", ["v1.04-iam-user-via-cloudformation", "v1.08-iam-user-agent", "v1.08-service-linked-role",
                                  "v1.11-assumed-role-without-issuer", "v1.03-refused-null-parameters", "v1.08-aws-service"])
def test_every_principal_but_the_governors_own_wakes_both_handlers(name: str) -> None:
    assert matches(record(name)) and matches(record(name), "retention")


def test_an_assumed_role_without_a_session_issuer_is_not_lost() -> None:
    """An absent field never matches anything-but: without its own branch this record matched nothing."""
    event = record("v1.11-assumed-role-without-issuer")
    legacy = event_pattern("subscription", own_roles=OWN_ROLES)
    legacy["detail"]["$or"] = legacy["detail"]["$or"][:2]  # the two branches the rules had before #18

    assert matches(event)
    assert not EventPattern(json.dumps(legacy), legacy).matches_event(event)


def test_the_governors_own_calls_never_wake_it() -> None:
    assert not matches(record("v1.09-governor-own-role"))


@pytest.mark.parametrize(("field", "value"), [("account", "210987654321"), ("region", "us-east-1")])
def test_a_record_of_another_account_or_region_does_not_match(field: str, value: str) -> None:
    event = record("v1.08-iam-user-agent")
    event[field] = value

    assert not matches(event)


@pytest.mark.parametrize(("where", "value"), [(("account",), "210987654321"), (("detail", "recipientAccountId"), "210987654321"),
                                              (("region",), "us-east-1"), (("detail", "awsRegion"), "us-east-1")])
def test_the_handlers_ignore_a_record_of_another_account_or_region(where: tuple[str, ...], value: str) -> None:
    """A bus that collects an organization's records, or a replay: the group of that name here is another group."""
    event = copy.deepcopy(record("v1.08-iam-user-agent"))
    target = event
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value

    with pytest.raises(IgnoredEvent) as ignored:
        parse_log_group_call(event, EVENTS_BY_ASPECT["subscription"], origin=(ACCOUNT, REGION))
    assert ignored.value.reason == "foreign-origin"
    assert parse_log_group_call(record("v1.08-iam-user-agent"), EVENTS_BY_ASPECT["subscription"], origin=(ACCOUNT, REGION)).log_group_name == "secure"


def test_a_tag_call_on_another_accounts_group_arn_is_ignored() -> None:
    event = record("v1.08-iam-user-agent")
    event["detail"].update(eventName="TagResource", requestParameters={
        "resourceArn": "arn:aws:logs:eu-west-1:210987654321:log-group:secure", "tags": {"team": "x"}})

    with pytest.raises(IgnoredEvent, match="a group of 210987654321 in eu-west-1"):
        parse_log_group_call(event, EVENTS_BY_ASPECT["subscription"], origin=(ACCOUNT, REGION))


@pytest.mark.parametrize("name", [p.stem for p in sorted(RECORDS.glob("*.json"))])
def test_the_parser_reads_every_real_shape_or_says_why_not(name: str) -> None:
    try:
        call = parse_log_group_call(record(name), EVENTS_BY_ASPECT["subscription"], origin=(ACCOUNT, REGION))
    except IgnoredEvent as ignored:
        assert (name, ignored.reason) == ("v1.03-refused-null-parameters", "malformed-event")
        return
    assert call.log_group_name == record(name)["detail"]["requestParameters"]["logGroupName"]
    assert call.principal


@pytest.mark.parametrize(("event_name", "function", "matched"), [
    ("UpdateFunctionConfiguration20150331v2", "log-shipper", True),   # as CloudTrail names it
    ("UpdateFunctionConfiguration", "log-shipper", True),
    ("CreateFunction20150331", "arn:aws:lambda:eu-west-1:123456789012:function:log-shipper", True),
    ("UpdateFunctionCode20150331v2", "log-shipper", False),
    ("UpdateFunctionConfiguration20150331v2", "orders-api", False),
])
def test_the_destination_rule_matches_lambdas_versioned_call_names(event_name: str, function: str, matched: bool) -> None:
    from governor.events import destination_pattern
    from localaws.events import lambda_call_event

    pattern = destination_pattern("log-shipper", account=ACCOUNT, region=REGION)
    event = lambda_call_event(event_name, function)

    assert EventPattern(json.dumps(pattern), pattern).matches_event(event) is matched

"""`python -m cli selftest` against a governor deployed in the local account (localaws.deployment): the
path a careful operator proves by hand after a deploy, each failure with its step and its fix."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from cli.__main__ import main
from localaws.account import LocalAccount
from localaws.deployment import LocalDeployment, deploy_governor

STACK = "LogGroupGovernor"
SHIPPER = "log-shipper"


def _config(destination: str, **overrides: Any) -> dict[str, Any]:
    """The functions' GOVERNOR_CONFIG as the stack deploys it (keys as in cdk.json)."""
    return {"destinationArn": destination, "defaultRetentionDays": 30, "excludeTags": {"log-group-governor:opt-out": "true"}, **overrides}


@pytest.fixture
def deployed(account: LocalAccount) -> Iterator[LocalDeployment]:
    deployment = deploy_governor(account, stack_name=STACK, config=_config(account.create_function(SHIPPER)))
    deployment.confirm_alarm_email()
    with deployment.running():
        yield deployment


@pytest.fixture(autouse=True)
def cli_sessions_see_localaws(account: LocalAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's own session carries localaws's fillers (moto lacks account policies), as the default one does."""
    import cli.__main__ as cli_main

    monkeypatch.setattr(cli_main.boto3, "Session", lambda profile_name=None, region_name=None: boto3.session.Session(
        botocore_session=boto3.DEFAULT_SESSION._session, region_name=region_name))


def selftest(account: LocalAccount, *extra: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(["selftest", "--stack-name", STACK, "--region", account.region, "--json", "--timeout", "0", *extra], stdout=out, stderr=io.StringIO())
    return code, json.loads(out.getvalue())


def _steps(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in report["steps"]}


def _canaries(account: LocalAccount) -> list[str]:
    return [g["logGroupName"] for g in account.logs.describe_log_groups(logGroupNamePrefix="/log-group-governor/selftest/")["logGroups"]]


def test_a_working_deployment_passes_every_step_and_leaves_no_canary(account: LocalAccount, deployed: LocalDeployment) -> None:
    code, report = selftest(account)

    steps = _steps(report)
    assert code == 0 and report["passed"] is True
    assert list(steps) == ["stack", "trail", "alarm-topic", "canary", "subscribed", "retention", "delivery", "cleanup"]
    assert all(s["passed"] for s in steps.values())
    assert steps["trail"]["detail"] == f"trail {STACK}-management-events logs write management events in {account.region}"
    assert steps["retention"]["detail"] == "30 days"
    assert steps["delivery"]["detail"] == "ForwardedLogEvents 1, DeliveryErrors 0"
    assert _canaries(account) == []


def test_the_text_report_names_each_step(account: LocalAccount, deployed: LocalDeployment) -> None:
    out = io.StringIO()
    code = main(["selftest", "--stack-name", STACK, "--region", account.region, "--timeout", "0"], stdout=out, stderr=io.StringIO())

    assert code == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == f"log-group-governor selftest of {STACK} in {account.region}"
    assert [line.split()[:2] for line in lines[1:-1]] == [["PASS", n] for n in ("stack", "trail", "alarm-topic", "canary", "subscribed",
                                                                                  "retention", "delivery", "cleanup")]
    assert lines[-1] == "all steps passed"


def test_a_governor_that_is_not_deployed_fails_at_the_first_step(account: LocalAccount) -> None:
    code, report = selftest(account)

    assert code == 1
    [step] = report["steps"]
    assert (step["name"], step["passed"]) == ("stack", False)
    assert step["detail"] == f"no stack {STACK} in {account.region}: the governor is not deployed here"
    assert "cdk deploy" in step["fix"]


def test_no_trail_means_no_event_and_the_canary_is_neither_subscribed_nor_kept(account: LocalAccount) -> None:
    deployment = deploy_governor(account, stack_name=STACK, config=_config(account.create_function(SHIPPER)), create_trail=False)
    deployment.confirm_alarm_email()
    with deployment.running():
        code, report = selftest(account)

    steps = _steps(report)
    assert code == 1
    assert steps["trail"]["passed"] is False and "no trail covers" in steps["trail"]["detail"]
    assert "governor:createTrail true" in steps["trail"]["fix"]
    assert steps["subscribed"]["passed"] is False and steps["retention"]["passed"] is False
    assert steps["cleanup"]["passed"] is True and _canaries(account) == []


def test_a_stopped_trail_is_named(account: LocalAccount, deployed: LocalDeployment) -> None:
    deployed.stop_trail()

    code, report = selftest(account)

    assert code == 1 and _steps(report)["trail"]["detail"].startswith(f"{STACK}-management-events is not logging")


def test_a_refusing_destination_fails_at_subscribed_with_what_the_governor_was_told(account: LocalAccount, deployed: LocalDeployment) -> None:
    account.lambda_.delete_function(FunctionName=SHIPPER)  # the destination is gone

    code, report = selftest(account)

    steps = _steps(report)
    assert code == 1
    assert steps["subscribed"]["passed"] is False
    assert "the governor logged: subscription: the destination refused the subscription" in steps["subscribed"]["detail"]
    assert steps["retention"]["passed"] is True  # retention does not depend on the destination
    assert _canaries(account) == []


def test_an_unconfirmed_alarm_subscription_fails_its_step_only(account: LocalAccount) -> None:
    deployment = deploy_governor(account, stack_name=STACK, config=_config(account.create_function(SHIPPER)))
    with deployment.running():  # the on-call never clicked the confirmation link
        code, report = selftest(account)

    steps = _steps(report)
    assert code == 1
    assert [n for n, s in steps.items() if not s["passed"]] == ["alarm-topic"]
    assert "1 subscription(s) await confirmation" in steps["alarm-topic"]["detail"]
    assert "aws sns subscribe --topic-arn" in steps["alarm-topic"]["fix"]


def test_a_canary_prefix_the_policy_excludes_is_reported_before_anything_is_created(account: LocalAccount) -> None:
    deployment = deploy_governor(account, stack_name=STACK, config=_config(account.create_function(SHIPPER), excludePrefixes=["/log-group-governor/"]))
    deployment.confirm_alarm_email()
    with deployment.running():
        code, report = selftest(account)

    step = _steps(report)["canary"]
    assert code == 1 and step["passed"] is False and "excluded-prefix" in step["detail"]
    assert _canaries(account) == []


def test_a_member_without_the_sender_role_fails_at_subscribed_with_the_archives_refusal(account: LocalAccount) -> None:
    from localaws.organization import Organization
    from stacks.archive import ArchiveSettings, destination_policy

    central, org_id = "111111111111", "o-a1b2c3d4e5"
    organization = Organization(org_id, {central, account.account_id})
    organization.install(boto3.DEFAULT_SESSION)
    arn = organization.create_destination(central, "archive", f"arn:aws:kinesis:{account.region}:{central}:stream/archive",
                                          destination_policy(ArchiveSettings(organization_id=org_id),
                                                             f"arn:aws:logs:{account.region}:{central}:destination:archive"))
    deployment = deploy_governor(account, stack_name=STACK, config=_config(arn))  # no destinationRoleArn: the rollout before #17
    deployment.confirm_alarm_email()
    with deployment.running():
        code, report = selftest(account)

    step = _steps(report)["subscribed"]
    assert code == 1 and step["passed"] is False
    assert "Role ARN is required when creating subscription filter against destination with Organization access policy" in step["detail"]
    assert "governor:senderRole" in step["fix"]


def test_account_policy_mode_checks_the_policy_and_its_guard_names(account: LocalAccount) -> None:
    from governor.aws import LogsGateway
    from governor.config import parse_policy_config
    from governor.policy import Policy
    from governor.subscription_policy import SubscriptionPolicyKeeper

    config = _config(account.create_function(SHIPPER), subscriptionMode="account-policy")
    deployment = deploy_governor(account, stack_name=STACK, config=config)
    deployment.confirm_alarm_email()
    with deployment.running():
        code, missing = selftest(account)
        # The first full run writes it (here the keeper, as the backfill's run would).
        SubscriptionPolicyKeeper(lambda: Policy(parse_policy_config(config)), LogsGateway(account.client("logs"))).replace([])
        passed_code, passed = selftest(account)

    step = _steps(missing)["account-policy"]
    assert code == 1 and step["passed"] is False and step["detail"] == "no account subscription filter policy named log-group-governor"
    assert "start a backfill" in step["fix"]
    steps = _steps(passed)
    assert passed_code == 0, passed
    assert steps["account-policy"]["detail"].startswith(f"policy log-group-governor ships to {config['destinationArn']}, 1 names left out")
    assert steps["subscribed"]["detail"] == "shipped by the account subscription filter policy (not in its NOT IN list)"
    assert steps["delivery"]["detail"] == "ForwardedLogEvents 1, DeliveryErrors 0"  # delivered through the account policy


def test_issue26_a_rule_that_ships_the_canary_to_its_own_destination_passes_subscribed(account: LocalAccount) -> None:
    """A rule in governor:rules ships /log-group-governor/selftest/ to its own Kinesis stream: the governor puts its filter
    there, as the policy core decides, and the self-test expects that destination, not governor:destinationArn."""
    stream = account.create_stream("security-logs")
    role = account.logs_delivery_role()
    rules = [{"name": "selftest to security", "match": {"namePrefixes": ["/log-group-governor/"]},
              "shipping": {"enabled": True, "destinationArn": stream, "destinationRoleArn": role}}]
    deployment = deploy_governor(account, stack_name=STACK, config=_config(account.create_function(SHIPPER), rules=rules))
    deployment.confirm_alarm_email()
    with deployment.running():
        code, report = selftest(account)

    steps = _steps(report)
    assert code == 0, json.dumps(report, indent=1)
    assert steps["subscribed"]["passed"] is True and steps["subscribed"]["detail"] == f"filter log-group-governor -> {stream} with role {role}"
    assert _canaries(account) == []


def test_issue29_a_stack_trail_that_copies_another_trail_passes_and_says_what_the_copy_costs(account: LocalAccount, deployed: LocalDeployment) -> None:
    cloudtrail = account.client("cloudtrail")
    account.client("s3").create_bucket(Bucket="org-trail-bucket", CreateBucketConfiguration={"LocationConstraint": account.region})
    cloudtrail.create_trail(Name="organization-trail", S3BucketName="org-trail-bucket", IsMultiRegionTrail=True)
    cloudtrail.put_event_selectors(TrailName="organization-trail", EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}])
    cloudtrail.start_logging(Name="organization-trail")

    code, report = selftest(account)

    trail = _steps(report)["trail"]
    assert code == 0 and trail["passed"] is True
    assert f"trail {STACK}-management-events logs write management events in {account.region}, and so does organization-trail" in trail["detail"]
    assert "paid second copy ($2.00 per 100,000 management events" in trail["detail"] and "governor:createTrail false" in trail["detail"]


def test_issue29_a_member_without_a_topic_passes_when_its_alarms_reach_the_fleet_view(account: LocalAccount) -> None:
    bus = f"arn:aws:events:{account.region}:111111111111:event-bus/log-group-governor-fleet"
    deployment = deploy_governor(account, stack_name=STACK, config=_config(account.create_function(SHIPPER)), alarm_email=None, fleet_bus_arn=bus)
    with deployment.running():
        code, report = selftest(account)
        assert code == 0 and _steps(report)["alarm-topic"]["detail"].startswith(f"no topic here: rule {STACK}-AlarmsToFleet forwards")

        account.client("events").disable_rule(Name=f"{STACK}-AlarmsToFleet")
        code, report = selftest(account)

    step = _steps(report)["alarm-topic"]
    assert code == 1 and step["passed"] is False and "is DISABLED: every alarm of the governor notifies nobody" in step["detail"]
    assert step["fix"] == f"aws events enable-rule --name {STACK}-AlarmsToFleet"

"""The member rollout (org_app.py with rollout:*): one service-managed StackSet per region, in waves,
each member pointed at its region's archive, the code staged where every member can read it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from org_app import build_org_app
from shared.config import ConfigError
from tests.infra.conftest import REPO_CONTEXT
from stacks.archive import ARCHIVE_LOG_GROUPS
from tests.infra.test_stack import CFN_LINT_IGNORED

ADMIN = "222222222222"
CENTRAL = "111111111111"
ORG = "o-a1b2c3d4e5"
REGIONS = ["eu-west-1", "us-east-1"]
WAVES = [["ou-ab12-11111111"], ["ou-ab12-22222222", "ou-ab12-33333333"]]


def synthesize_org(**overrides: Any) -> dict[str, Any]:
    context = {**REPO_CONTEXT, "archive:organizationId": ORG, "archive:regions": REGIONS, "rollout:centralAccount": CENTRAL,
               "rollout:regions": REGIONS, "rollout:waves": WAVES, **overrides}
    outdir = Path(tempfile.mkdtemp(prefix="cdk.out-org-"))
    app = cdk.App(context=context, outdir=str(outdir))
    build_org_app(app, env=cdk.Environment(account=ADMIN, region="eu-west-1"))
    app.synth()
    templates = {p.name.split(".")[0]: json.loads(p.read_text()) for p in outdir.glob("*.template.json")}
    return {"outdir": outdir, "templates": templates}


@pytest.fixture(scope="module")
def org() -> dict[str, Any]:
    return synthesize_org()


def _of_type(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == resource_type]


def _stack_sets(org: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["StackSetName"]: s for s in _of_type(org["templates"]["LogGroupGovernorRollout"], "AWS::CloudFormation::StackSet")}


def _members(org: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: t for name, t in org["templates"].items() if name.startswith("LogGroupGovernorRolloutMember")}


def _render(value: Any) -> str:
    """A template string value with its intrinsics written out: a GetAtt as <Logical.Attr>, a Ref as <Ref>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(p) for p in parts)
    if "Fn::GetAtt" in value:
        return "<" + ".".join(value["Fn::GetAtt"]) + ">"
    return f"<{value['Ref']}>"


def _configs(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The GOVERNOR_CONFIG of each governor function of a member template."""
    return [json.loads(_render(f["Environment"]["Variables"]["GOVERNOR_CONFIG"])) for f in _of_type(template, "AWS::Lambda::Function")
            if "GOVERNOR_CONFIG" in f.get("Environment", {}).get("Variables", {})]


def test_one_service_managed_stack_set_per_region_with_safe_defaults_and_the_first_wave_only(org: dict[str, Any]) -> None:
    stack_sets = _stack_sets(org)

    assert set(stack_sets) == {f"LogGroupGovernor-{r}" for r in REGIONS}
    for region in REGIONS:
        stack_set = stack_sets[f"LogGroupGovernor-{region}"]
        assert stack_set["PermissionModel"] == "SERVICE_MANAGED" and stack_set["CallAs"] == "DELEGATED_ADMIN"
        assert stack_set["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}  # new accounts get it
        assert stack_set["OperationPreferences"] == {"FailureTolerancePercentage": 0, "MaxConcurrentPercentage": 10,
                                                     "RegionConcurrencyType": "SEQUENTIAL"}
        assert stack_set["StackInstancesGroup"] == [{"DeploymentTargets": {"AccountFilterType": "NONE", "OrganizationalUnitIds": WAVES[0]},
                                                     "Regions": [region]}]


def test_the_next_wave_adds_its_ous_and_rollout_settings_come_from_context() -> None:
    later = _stack_sets(synthesize_org(**{"rollout:wave": 1, "rollout:failureTolerancePercentage": 5, "rollout:maxConcurrentPercentage": 25}))

    group = later["LogGroupGovernor-eu-west-1"]["StackInstancesGroup"][0]
    assert group["DeploymentTargets"]["OrganizationalUnitIds"] == [*WAVES[0], *WAVES[1]]
    assert later["LogGroupGovernor-eu-west-1"]["OperationPreferences"]["FailureTolerancePercentage"] == 5


def test_each_member_template_ships_to_its_regions_archive_and_reads_its_code_from_the_staging_bucket(org: dict[str, Any]) -> None:
    members = _members(org)

    assert len(members) == len(REGIONS)
    for name, template in members.items():
        region = next(r for r in REGIONS if r.replace("-", "") in name)
        assert "Transform" not in template  # StackSets refuse SAM transforms
        functions = _of_type(template, "AWS::Lambda::Function")
        assert functions
        for function in functions:
            assert function["Code"]["S3Bucket"] == {"Fn::Join": ["-", ["log-group-governor-assets", {"Ref": "AWS::Region"}]]}
        configs = _configs(template)
        assert {c["destinationArn"] for c in configs} == {f"arn:aws:logs:{region}:{CENTRAL}:destination:log-group-governor-archive"}


def test_the_staging_buckets_are_private_and_readable_by_the_organization_only(org: dict[str, Any]) -> None:
    for region in REGIONS:
        template = org["templates"][f"LogGroupGovernorAssets-{region}"]
        [bucket] = _of_type(template, "AWS::S3::Bucket")
        assert bucket["BucketName"] == f"log-group-governor-assets-{region}"
        assert bucket["PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                            "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        [policy] = _of_type(template, "AWS::S3::BucketPolicy")
        reads = [s for s in policy["PolicyDocument"]["Statement"] if s["Action"] == "s3:GetObject"]
        assert reads and all(s["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}} for s in reads)


def test_cdk_nag_and_cfn_lint_are_clean_on_every_stack_and_template(org: dict[str, Any]) -> None:
    from cfnlint.api import ManualArgs, lint

    report = json.loads((org["outdir"] / "validation-report.json").read_text())
    [nag] = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert (nag["conclusion"], nag["violations"]) == ("success", [])
    assert all(len(v["reason"]) > 30 for v in nag["suppressedViolations"])
    for name, template in org["templates"].items():
        matches = lint(json.dumps(template), config=ManualArgs(regions=["eu-west-1"], ignore_checks=list(CFN_LINT_IGNORED)))
        assert [str(m) for m in matches] == [], name


@pytest.mark.parametrize(("context", "message"), [
    ({"archive:regions": ["eu-west-1"]}, "us-east-1 have no archive"),
    ({"rollout:waves": [["engineering"]]}, "rollout:waves: a list of waves"),
    ({"rollout:wave": 2}, "rollout:wave: the last wave rolled out, an index into rollout:waves"),
    ({"rollout:centralAccount": "logging"}, "rollout:centralAccount"),
])
def test_a_rollout_that_cannot_work_stops_synth(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        synthesize_org(**context)


def test_members_report_to_their_regions_fleet_bus_and_forward_their_alarms(org: dict[str, Any]) -> None:
    for name, template in _members(org).items():
        region = next(r for r in REGIONS if r.replace("-", "") in name)
        bus = f"arn:aws:events:{region}:{CENTRAL}:event-bus/log-group-governor-fleet"
        backfill = next(f for f in _of_type(template, "AWS::Lambda::Function") if f["Handler"] == "governor.handlers.backfill.handler")
        assert backfill["Environment"]["Variables"]["GOVERNOR_FLEET_BUS"] == bus
        statements = [s for p in _of_type(template, "AWS::IAM::Policy") for s in p["PolicyDocument"]["Statement"]]
        assert {"Action": "events:PutEvents", "Effect": "Allow", "Resource": bus} in statements
        forwarding = [r for r in _of_type(template, "AWS::Events::Rule") if r.get("EventPattern", {}).get("source") == ["aws.cloudwatch"]]
        assert forwarding and forwarding[0]["Targets"][0]["Arn"] == bus


def test_the_archives_own_log_groups_are_named_under_a_prefix_every_member_guards(org: dict[str, Any]) -> None:
    """The loop guard: a member governor in the logging account itself never subscribes the archive's groups."""
    archive = org["templates"]["LogGroupGovernorArchive-eu-west-1"]
    names = {g.get("LogGroupName") for g in _of_type(archive, "AWS::Logs::LogGroup")}
    assert {"/log-group-governor/archive/ship-logs", "/log-group-governor/archive/fleet-recorder"} <= names
    assert {g["LogGroupName"] for g in _of_type(archive, "AWS::Logs::LogGroup") if "LogGroupName" in g} <= set(ARCHIVE_LOG_GROUPS)
    for template in _members(org).values():
        assert all({"/log-group-governor/archive/*", *ARCHIVE_LOG_GROUPS} <= set(c["shippingPathLogGroups"]) for c in _configs(template))


def test_in_account_policy_mode_members_guard_the_archives_exact_names() -> None:
    """An account policy's NOT IN list holds exact names: a prefix entry would guard nothing (#18)."""
    native = synthesize_org(**{"governor:subscriptionMode": "account-policy", "governor:backfillOnDeploy": True})

    for template in _members(native).values():
        assert all(c["shippingPathLogGroups"] == list(ARCHIVE_LOG_GROUPS) for c in _configs(template))


def test_the_management_account_can_deploy_the_stack_sets_itself() -> None:
    stack_sets = _stack_sets(synthesize_org(**{"rollout:callAs": "SELF"}))

    assert {s.get("CallAs", "SELF") for s in stack_sets.values()} == {"SELF"}


def _sender_roles(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"
            and r["Properties"].get("Description", "").startswith("log-group-governor: lets CloudWatch Logs prove")}


def test_members_of_an_organization_wide_archive_pass_a_sender_role_on_every_filter_and_policy(org: dict[str, Any]) -> None:
    """CloudWatch Logs guide, "Step 2: (Only if using an organization) Create an IAM role": the sender's
    role, trusted by logs.amazonaws.com, with logs:PutLogEvents on its log groups, named as roleArn."""
    for name, template in _members(org).items():
        [(role_id, role)] = _sender_roles(template).items()
        [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "logs.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
        assert "Condition" not in trust  # the guide's trust (#27): no page says CloudWatch Logs sends a key to condition on
        granted = [s for p in _of_type(template, "AWS::IAM::Policy") if {"Ref": role_id} in p["Roles"] for s in p["PolicyDocument"]["Statement"]]
        assert [(s["Action"], _render(s["Resource"])) for s in granted] == [
            ("logs:PutLogEvents", "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*:*")]
        # Every function that writes a filter or the account policy names it, and may pass it and nothing else.
        assert {c["destinationRoleArn"] for c in _configs(template)} == {f"<{role_id}.Arn>"}
        passes = [s for p in _of_type(template, "AWS::IAM::Policy") for s in p["PolicyDocument"]["Statement"] if s["Action"] == "iam:PassRole"]
        assert passes and all(s["Resource"] == {"Fn::GetAtt": [role_id, "Arn"]} for s in passes), name


def test_members_of_a_listed_archive_need_no_sender_role() -> None:
    listed = synthesize_org(**{"archive:organizationId": "", "archive:memberAccounts": ["210987654321"]})

    for template in _members(listed).values():
        assert _sender_roles(template) == {}
        assert {c["destinationRoleArn"] for c in _configs(template)} == {""}


def test_the_fleet_bus_admits_only_the_members_governor_roles_which_the_members_carry(org: dict[str, Any]) -> None:
    """Any principal of any organization account could write a fleet row before #18: only the
    reconcile's role and the alarm forwarder's, named alike in every member, may now."""
    for region in REGIONS:
        archive = org["templates"][f"LogGroupGovernorArchive-{region}"]
        [policy] = _of_type(archive, "AWS::Events::EventBusPolicy")
        condition = policy["Statement"]["Condition"]
        assert condition["StringEquals"] == {"aws:PrincipalOrgID": ORG}
        assert _render(condition["ArnLike"]["aws:PrincipalArn"][0]) == f"arn:<AWS::Partition>:iam::*:role/log-group-governor-reporter-{region}"
        assert _render(condition["ArnLike"]["aws:PrincipalArn"][1]) == f"arn:<AWS::Partition>:iam::*:role/log-group-governor-fleet-forwarder-{region}"
    for name, template in _members(org).items():
        region = next(r for r in REGIONS if r.replace("-", "") in name)
        names = {_render(r["RoleName"]) for r in _of_type(template, "AWS::IAM::Role") if "RoleName" in r}
        assert names == {"log-group-governor-reporter-<AWS::Region>", "log-group-governor-fleet-forwarder-<AWS::Region>",
                         # #31: the subscribe function asks the archive to pull; the archive reads through the reader role
                         "log-group-governor-subscriber-<AWS::Region>", "log-group-governor-replay-reader-<AWS::Region>",
                         # #31 item 2: the delivery-gap function asks the archive to pull the minutes a disabled filter skipped
                         "log-group-governor-delivery-gaps-<AWS::Region>"}, name


def test_issue31_each_member_has_a_read_only_role_the_archives_pull_alone_may_assume_and_asks_the_archive_over_its_bus(
        org: dict[str, Any]) -> None:
    for name, template in _members(org).items():
        region = next(r for r in REGIONS if r.replace("-", "") in name)
        resources = template["Resources"]
        [(role_id, reader)] = [(k, r["Properties"]) for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"
                               and _render(r["Properties"].get("RoleName", "")) == "log-group-governor-replay-reader-<AWS::Region>"]
        [trust] = reader["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Action"] == "sts:AssumeRole" and "Condition" not in trust
        assert _render(trust["Principal"]["AWS"]) == f"arn:<AWS::Partition>:iam::{CENTRAL}:role/log-group-governor-archive-replay-<AWS::Region>"
        [policy] = [p["Properties"] for p in resources.values() if p["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in p["Properties"]["Roles"]]
        [statement] = policy["PolicyDocument"]["Statement"]
        assert sorted(statement["Action"]) == ["logs:DescribeLogGroups", "logs:DescribeSubscriptionFilters", "logs:FilterLogEvents"]
        assert _render(statement["Resource"]) == "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*"
        [subscribe] = [f for f in _of_type(template, "AWS::Lambda::Function") if f["Handler"].endswith("subscribe_log_group")]
        bus = f"arn:aws:events:{region}:{CENTRAL}:event-bus/log-group-governor-fleet"
        assert subscribe["Environment"]["Variables"]["GOVERNOR_FLEET_BUS"] == bus
        subscribe_role = subscribe["Role"]["Fn::GetAtt"][0]
        puts = [s for p in resources.values() if p["Type"] == "AWS::IAM::Policy" and {"Ref": subscribe_role} in p["Properties"]["Roles"]
                for s in p["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "events:PutEvents"]
        assert [s["Resource"] for s in puts] == [bus]


#: #30 item 8: a sandbox OU keeps a week, the payments account 400 days, wherever it sits.
OVERRIDES = [{"name": "sandbox", "organizationalUnits": ["ou-ab12-22222222"], "governor": {"governor:defaultRetentionDays": 7}},
             {"name": "payments", "accounts": ["444444444444"], "governor": {"defaultRetentionDays": 400, "alarmEmail": "pay@example.com"}}]


def _member_of(org: dict[str, Any], region: str, label: str) -> dict[str, Any]:
    """The member template of a StackSet: its construct path is Member-<region>[-<label>] (the name's hash suffix aside)."""
    wanted = "LogGroupGovernorRolloutMember" + region.replace("-", "") + label
    [template] = [t for name, t in _members(org).items() if name[:-8] == wanted]
    return template


def test_issue30_overrides_by_ou_and_account_deploy_each_members_resolved_configuration() -> None:
    org = synthesize_org(**{"rollout:wave": 1, "rollout:overrides": OVERRIDES})
    stack_sets = _stack_sets(org)

    targets = {name: s["StackInstancesGroup"][0]["DeploymentTargets"] for name, s in stack_sets.items() if "eu-west-1" in name}
    others = ["ou-ab12-11111111", "ou-ab12-33333333"]
    assert targets == {
        # The organization's own StackSet keeps its name, and leaves the overridden account out.
        "LogGroupGovernor-eu-west-1": {"AccountFilterType": "DIFFERENCE", "Accounts": ["444444444444"], "OrganizationalUnitIds": others},
        "LogGroupGovernor-eu-west-1-sandbox": {"AccountFilterType": "DIFFERENCE", "Accounts": ["444444444444"],
                                               "OrganizationalUnitIds": ["ou-ab12-22222222"]},
        # The account, in whichever OU it sits: one of these two deploys it.
        "LogGroupGovernor-eu-west-1-payments": {"AccountFilterType": "INTERSECTION", "Accounts": ["444444444444"], "OrganizationalUnitIds": others},
        "LogGroupGovernor-eu-west-1-sandbox-payments": {"AccountFilterType": "INTERSECTION", "Accounts": ["444444444444"],
                                                        "OrganizationalUnitIds": ["ou-ab12-22222222"]},
    }
    retention = {label: {c["defaultRetentionDays"] for c in _configs(_member_of(org, "eu-west-1", label))}
                 for label in ("", "sandbox", "payments", "sandboxpayments")}
    assert retention == {"": {30}, "sandbox": {7}, "payments": {400}, "sandboxpayments": {400}}  # the account's wins over its OU's
    topics = _of_type(_member_of(org, "eu-west-1", "payments"), "AWS::SNS::Subscription")
    assert [t["Endpoint"] for t in topics if t["Protocol"] == "email"] == ["pay@example.com"]
    assert not _of_type(_member_of(org, "eu-west-1", "sandbox"), "AWS::SNS::Subscription")
    for label in ("", "sandbox", "payments", "sandboxpayments"):  # what the rollout sets itself stays the rollout's
        assert {c["destinationArn"] for c in _configs(_member_of(org, "eu-west-1", label))} == {
            f"arn:aws:logs:eu-west-1:{CENTRAL}:destination:log-group-governor-archive"}


def test_issue30_the_cli_resolves_a_member_as_the_rollout_deploys_it() -> None:
    """One function decides a member's configuration for the StackSets and for `rules`/`plan --member`."""
    from stacks.org_settings import RolloutSettings
    from stacks.overrides import group_context, resolve

    context = {**REPO_CONTEXT, "rollout:centralAccount": CENTRAL, "rollout:regions": REGIONS, "rollout:waves": WAVES, "rollout:wave": 1,
               "rollout:overrides": OVERRIDES}
    rollout = RolloutSettings.from_context(context)
    assert rollout is not None
    for group in rollout.stack_sets():
        for ou in group.organizational_units:
            for account in group.intersection_accounts or ("555555555555",):
                assert resolve(context, rollout.overrides, ou=ou, account=account).context == group_context(context, group)


def test_issue30_adding_overrides_leaves_the_organizations_stack_set_where_it_was(org: dict[str, Any]) -> None:
    def logical_ids(o: dict[str, Any]) -> dict[str, str]:
        return {r["Properties"]["StackSetName"]: lid for lid, r in o["templates"]["LogGroupGovernorRollout"]["Resources"].items()
                if r["Type"] == "AWS::CloudFormation::StackSet"}

    before, after = logical_ids(org), logical_ids(synthesize_org(**{"rollout:overrides": OVERRIDES}))

    assert {name: after[name] for name in before} == before  # updated in place, never replaced


def _check_overrides(overrides: list[dict[str, Any]]) -> None:
    """The organization app's configuration check (every error at once), with these overrides."""
    import org_app

    org_app.check({**REPO_CONTEXT, "archive:organizationId": ORG, "archive:regions": REGIONS, "rollout:centralAccount": CENTRAL,
                   "rollout:regions": REGIONS, "rollout:waves": WAVES, "rollout:overrides": overrides})


@pytest.mark.parametrize(("overrides", "message"), [
    ([{"name": "x", "organizationalUnits": ["ou-ab12-99999999"], "governor": {"defaultRetentionDays": 7}}],
     "ou-ab12-99999999 not in rollout:waves"),
    ([{"name": "x", "accounts": ["444444444444"], "governor": {"destinationArn": "arn:aws:logs:eu-west-1:1:destination:y"}}],
     "governor:destinationArn the rollout sets for every member"),
    ([{"name": "x", "accounts": ["444444444444"], "organizationalUnits": WAVES[0], "governor": {"defaultRetentionDays": 7}}],
     "exactly one of organizationalUnits"),
    ([{"name": "x", "accounts": ["444444444444"], "governor": {"defaultRetentionDay": 7}}],
     "did you mean governor:defaultRetentionDays"),
    # A later wave's mistake is found before its deploy, and a combination (the OU's topic, the account's e-mail) too.
    ([{"name": "late", "organizationalUnits": WAVES[1], "governor": {"defaultRetentionDays": 8}}],
     r"rollout:overrides \(late\): .*defaultRetentionDays"),
    ([{"name": "ou", "organizationalUnits": WAVES[0], "governor": {"alarmTopicArn": f"arn:aws:sns:eu-west-1:{CENTRAL}:t"}},
      {"name": "acct", "accounts": ["444444444444"], "governor": {"alarmEmail": "a@example.com"}}],
     r"rollout:overrides \(ou, acct\): alarmEmail"),
])
def test_issue30_an_override_that_cannot_work_stops_synth_naming_it(overrides: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _check_overrides(overrides)


def test_issue29_members_deploy_no_dashboard_and_with_an_organization_trail_no_trail(org: dict[str, Any]) -> None:
    member = _member_of(org, "eu-west-1", "")
    assert not _of_type(member, "AWS::CloudWatch::Dashboard") and _of_type(member, "AWS::CloudTrail::Trail")

    with_trail = synthesize_org(**{"rollout:organizationTrail": True, "rollout:overrides": [
        {"name": "showcase", "accounts": ["444444444444"], "governor": {"dashboard": True}}]})
    assert not _of_type(_member_of(with_trail, "eu-west-1", ""), "AWS::CloudTrail::Trail")
    assert _of_type(_member_of(with_trail, "eu-west-1", "showcase"), "AWS::CloudWatch::Dashboard")  # asked for


def test_issue29_a_member_without_its_own_topic_forwards_every_alarm_to_the_fleet_view(org: dict[str, Any]) -> None:
    member = _member_of(org, "eu-west-1", "")
    alarms = _of_type(member, "AWS::CloudWatch::Alarm")
    forward = [r for r in _of_type(member, "AWS::Events::Rule") if r.get("EventPattern", {}).get("detail-type") == ["CloudWatch Alarm State Change"]]

    assert not _of_type(member, "AWS::SNS::Topic") and not _of_type(member, "AWS::KMS::Key")  # $1.00 a month less a member
    assert alarms and all(not a.get("AlarmActions") for a in alarms)
    [rule] = forward
    assert len(rule["EventPattern"]["resources"]) == len(alarms)  # every alarm reaches the fleet view's MembersAlarming


@pytest.mark.parametrize(("keys", "message"), [
    ({"governor:alarmTopic": False}, "alarmTopic: false leaves every alarm notifying nobody"),
    ({"governor:alarmTopic": False, "governor:alarmEmail": "a@example.com", "governor:fleetBusArn": f"arn:aws:events:eu-west-1:{CENTRAL}:event-bus/f"},
     "alarmTopic: false means no topic, yet alarmTopicArn or alarmEmail names one"),
])
def test_issue29_no_topic_only_where_the_fleet_view_alarms(keys: dict[str, Any], message: str) -> None:
    from stacks.settings import DeploymentSettings

    with pytest.raises(ConfigError, match=message):
        DeploymentSettings.from_context({**REPO_CONTEXT, **keys})


@pytest.mark.parametrize(("overrides", "message"), [
    # Names joined by '-' that meet: refused before a construct clash (a traceback) when the later wave goes out.
    ([{"name": "a", "organizationalUnits": WAVES[0], "governor": {"defaultRetentionDays": 7}},
      {"name": "b", "organizationalUnits": WAVES[0], "governor": {"defaultRetentionDays": 14}},
      {"name": "a-b", "organizationalUnits": WAVES[1][:1], "governor": {"defaultRetentionDays": 90}}],
     r"rollout:overrides \(a-b\): its StackSet would be named LogGroupGovernor-eu-west-1-a-b, as that of a, b"),
    # Another prefix's keys would move the account to a StackSet of its own with the organization's configuration.
    ([{"name": "y", "accounts": ["555555555555"], "governor": {"archive:shards": 4, "myteam:foo": 1, "governor:governor:defaultRetentionDays": 7}}],
     r"archive:shards is not a governor: key.*myteam:foo is not a governor: key.*governor:governor:defaultRetentionDays is not"),
])
def test_issue30_review_overrides_synth_would_deploy_wrongly_are_refused(overrides: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _check_overrides(overrides)


def test_issue30_review_a_mistake_two_stack_sets_share_is_reported_once() -> None:
    with pytest.raises(ConfigError) as raised:
        _check_overrides([{"name": "bad", "organizationalUnits": WAVES[0], "governor": {"defaultRetentionDays": 8}},
                          {"name": "acct", "accounts": ["444444444444"], "governor": {"filterName": "mine"}}])

    assert len(raised.value.messages) == 1 and raised.value.messages[0].startswith("rollout:overrides (bad): defaultRetentionDays")


def test_issue30_review_long_override_names_synthesize(tmp_path: Path) -> None:
    names = [f"N{i}" + "x" * 30 for i in range(9)]  # nine 32-character names on one OU: a label of 296 characters
    org = synthesize_org(**{"rollout:overrides": [{"name": n, "organizationalUnits": WAVES[0], "governor": {"filterName": n}} for n in names]})

    [name] = [n for n in _stack_sets(org) if n.startswith("LogGroupGovernor-eu-west-1-")]
    assert len(name) <= 128 and name.startswith(f"LogGroupGovernor-eu-west-1-{names[0]}-{names[1]}")


def test_issue30_review_an_accounts_stack_set_waits_for_its_ous_to_let_the_account_go() -> None:
    org = synthesize_org(**{"rollout:overrides": OVERRIDES})
    resources = org["templates"]["LogGroupGovernorRollout"]["Resources"]
    by_name = {r["Properties"]["StackSetName"]: (lid, r) for lid, r in resources.items() if r["Type"] == "AWS::CloudFormation::StackSet"}

    base_id, _ = by_name["LogGroupGovernor-eu-west-1"]
    _, payments = by_name["LogGroupGovernor-eu-west-1-payments"]
    assert base_id in payments.get("DependsOn", [])

"""`log-group-governor rules` and `plan --explain GROUP` (#21), through the real CLI entry point against a local account."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli.__main__ import main
from localaws.account import LocalAccount

RULES = [{"name": "production", "match": {"namePrefixes": ["/aws/lambda/prod-"]}, "retention": {"days": 365}, "deletionProtection": True},
         {"name": "noisy batch", "match": {"tags": {"workload": "batch"}}, "retention": {"days": 7},
          "shipping": {"enabled": True, "filterPattern": "ERROR"}}]


@pytest.fixture
def cli(account: LocalAccount, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": account.region}.items():
        monkeypatch.setenv(key, value)
    import cli.__main__ as cli_main

    monkeypatch.setattr(cli_main.boto3, "Session", lambda profile_name=None, region_name=None: boto3.DEFAULT_SESSION)
    shipper = account.create_function("log-shipper")
    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())
    context["context"].update({"governor:destinationArn": shipper, "governor:rules": RULES,
                               "governor:retentionOverrides": {"/aws/lambda/legacy-": None}})
    (tmp_path / "cdk.json").write_text(json.dumps(context))

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, "--context", str(tmp_path / "cdk.json")], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()
    return run


def test_rules_prints_the_configured_rules_then_the_flat_keys_as_rules(account: LocalAccount, cli: Any) -> None:
    code, out, _ = cli("rules")

    printed = json.loads(out)
    assert code == 0 and printed["rules"][:2] == RULES
    assert [r["name"] for r in printed["rules"][2:]] == ["retentionOverrides['/aws/lambda/legacy-']", "defaultRetentionDays, filterPattern"]
    assert printed["rules"][-1] == {"name": "defaultRetentionDays, filterPattern", "match": {}, "retention": {"days": 30, "mode": "minimum"},
                                    "shipping": {"enabled": True}}
    assert printed["scope"]["excludeTags"] == {"log-group-governor:opt-out": "true"}


def test_explain_names_the_rule_behind_each_control_and_what_apply_would_do(account: LocalAccount, cli: Any) -> None:
    account.create_log_group("/ecs/nightly-etl", tags={"workload": "batch"})

    code, out, _ = cli("plan", "--explain", "/ecs/nightly-etl")

    assert code == 0
    assert "retention: rules[1] 'noisy batch' (tagged workload=batch)" in out
    assert "passed over rules[0] 'production': no name prefix matches" in out
    assert "shipping: rules[1] 'noisy batch'" in out and "deletionProtection: no rule sets it (left as it is)" in out
    assert "subscription: subscribe (not-subscribed)" in out and "retention: set-retention (retention-unset): never expires; set 7 days" in out
    assert account.logs.describe_subscription_filters(logGroupName="/ecs/nightly-etl")["subscriptionFilters"] == []  # nothing written

    code, out, _ = cli("plan", "--explain", "/ecs/nightly-etl", "--json")
    explained = json.loads(out)
    assert explained["controls"]["retention"]["rule"] == "rules[1] 'noisy batch'" and explained["decisions"]["retention"]["action"] == "set-retention"


def test_explain_of_a_group_that_does_not_exist_says_so(account: LocalAccount, cli: Any) -> None:
    code, out, err = cli("plan", "--explain", "/aws/lambda/nowhere", "--json")

    assert code == 4 and "no such log group" in json.loads(out)["error"]


def test_a_key_the_stack_created_is_read_from_its_outputs_and_without_them_the_cli_says_what_to_pass(
        account: LocalAccount, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": account.region}.items():
        monkeypatch.setenv(key, value)
    import cli.__main__ as cli_main

    monkeypatch.setattr(cli_main.boto3, "Session", lambda profile_name=None, region_name=None: boto3.DEFAULT_SESSION)
    shipper = account.create_function("log-shipper")
    key = account.client("kms").create_key()["KeyMetadata"]["Arn"]
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"DestinationArn": {"Value": shipper}, "RuleKeyArns": {"Value": json.dumps({"0": key})}}}
    account.client("cloudformation").create_stack(StackName="LogGroupGovernor", TemplateBody=json.dumps(template))
    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())
    context["context"]["governor:rules"] = [{"name": "audit", "match": {"namePrefixes": ["/audit/"]}, "kmsKeyArn": "create"}]
    (tmp_path / "cdk.json").write_text(json.dumps(context))
    account.create_log_group("/audit/trail")

    def run(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        return main([*argv, "--context", str(tmp_path / "cdk.json"), "--json"], stdout=out, stderr=io.StringIO()), out.getvalue()

    code, out = run("plan", "--explain", "/audit/trail", "--stack-name", "LogGroupGovernor")
    assert code == 0 and json.loads(out)["controls"]["kmsKeyArn"]["rule"] == "rules[0] 'audit'"

    code, out = run("plan", "--explain", "/audit/trail", "-c", f"destinationArn={shipper}")
    assert code == 2 and "pass --stack-name" in json.loads(out)["error"]


def test_issue26_explain_shows_the_decision_for_every_control_a_rule_sets_as_apply_would_make_it(
        account: LocalAccount, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from governor.rules import CONTROLS

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": account.region}.items():
        monkeypatch.setenv(key, value)
    import cli.__main__ as cli_main

    monkeypatch.setattr(cli_main.boto3, "Session", lambda profile_name=None, region_name=None: boto3.DEFAULT_SESSION)
    shipper = account.create_function("log-shipper")
    key = account.client("kms").create_key()["KeyMetadata"]["Arn"]
    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())
    context["context"].update({"governor:destinationArn": shipper, "governor:rules": [
        {"name": "payments", "match": {"namePrefixes": ["/payments/"]}, "deletionProtection": True, "kmsKeyArn": key,
         "dataProtection": {"identifiers": ["EmailAddress"]}}]})
    (tmp_path / "cdk.json").write_text(json.dumps(context))
    account.create_log_group("/payments/ledger")

    def run(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        return main(["plan", "--explain", "/payments/ledger", *argv, "--context", str(tmp_path / "cdk.json")], stdout=out,
                    stderr=io.StringIO()), out.getvalue()

    code, out = run()
    assert code == 0
    assert "protection: protect (deletion-protection-off): rules[0] 'payments' requires deletion protection" in out
    assert f"encryption: associate-kms-key (kms-key-missing): rules[0] 'payments' requires {key}" in out
    assert "data-protection: put-data-protection-policy (data-protection-missing): rules[0] 'payments': audit and mask EmailAddress" in out
    assert "subscription: subscribe (not-subscribed)" in out and "retention: set-retention (retention-unset)" in out

    code, out = run("--json")
    explained = json.loads(out)
    assert code == 0 and len(explained["decisions"]) == len(CONTROLS) == len(explained["controls"])  # one decision per control
    assert {c: d["action"] for c, d in explained["decisions"].items()} == {
        "retention": "set-retention", "subscription": "subscribe", "protection": "protect", "encryption": "associate-kms-key",
        "data-protection": "put-data-protection-policy", "field-indexes": "leave"}  # no rule sets field indexes: left as they are
    group = account.logs.describe_log_groups(logGroupNamePrefix="/payments/ledger")["logGroups"][0]
    assert not group.get("deletionProtectionEnabled") and "kmsKeyId" not in group  # nothing written


@pytest.mark.parametrize("override, nearest", [("govenor:filterName=x", "governor:filterName"), ("filterNam=x", "governor:filterName"),
                                               ("governor:defaultRetentionDay=30", "governor:defaultRetentionDays")])
def test_issue30_a_mistyped_key_on_the_cli_is_refused_naming_the_nearest_as_synth_does(cli: Any, override: str, nearest: str) -> None:
    """#30 item 1: one rule everywhere: `-c` with a key that is not one (a look-alike prefix, a typo) is bad input naming the
    nearest key, as `cdk synth` refuses it (shared.config.override_key)."""
    code, _, err = cli("rules", "-c", override)

    assert code == 2 and f"did you mean {nearest}?" in err and "valid keys" not in err


#: The organization app's keys with overrides (#30 item 8): sandboxes keep a week, the payments account 400 days.
ORGANIZATION = {
    "rollout:centralAccount": "111111111111", "rollout:regions": ["eu-west-1"],
    "rollout:waves": [["ou-exam-11111111"], ["ou-exam-22222222"]],
    "rollout:overrides": [{"name": "sandbox", "organizationalUnits": ["ou-exam-22222222"], "governor": {"governor:defaultRetentionDays": 7}},
                          {"name": "payments", "accounts": ["444444444444"], "governor": {"defaultRetentionDays": 400}}]}


def _with_organization(tmp_path: Path) -> Path:
    path = tmp_path / "cdk.json"
    context = json.loads(path.read_text())
    context["context"].update(ORGANIZATION)
    path.write_text(json.dumps(context))
    return path


def test_issue30_rules_shows_a_members_configuration_the_most_specific_override_winning(cli: Any, tmp_path: Path) -> None:
    _with_organization(tmp_path)

    code, out, err = cli("rules", "--member", "444444444444", "--ou", "ou-exam-22222222")
    printed = json.loads(out)
    assert code == 0 and printed["member"]["overrides"] == ["sandbox", "payments"]  # its OU's, then its account's
    assert printed["member"]["set"] == {"governor:defaultRetentionDays": {"value": 400, "by": "payments", "organization": 30}}
    assert printed["rules"][-1]["retention"]["days"] == 400

    code, out, _ = cli("rules", "--member", "555555555555", "--ou", "ou-exam-22222222")
    assert code == 0 and json.loads(out)["rules"][-1]["retention"]["days"] == 7 and json.loads(out)["member"]["overrides"] == ["sandbox"]

    code, out, err = cli("rules")
    assert code == 0 and json.loads(out)["rules"][-1]["retention"]["days"] == 30 and "member" not in json.loads(out)
    assert "rollout:overrides changes the configuration of some members (sandbox, payments)" in err


def test_issue30_explain_for_a_member_decides_with_its_overrides(account: LocalAccount, cli: Any, tmp_path: Path) -> None:
    _with_organization(tmp_path)
    account.create_log_group("/aws/lambda/checkout")

    code, out, _ = cli("plan", "--explain", "/aws/lambda/checkout", "--member", "444444444444", "--ou", "ou-exam-11111111")

    assert code == 0, out
    assert "member 444444444444 in ou-exam-11111111: overrides payments" in out
    assert "governor:defaultRetentionDays = 400 by payments (organization: 30)" in out
    assert "retention: set-retention (retention-unset): never expires; set 400 days" in out
    code, out, _ = cli("plan", "--explain", "/aws/lambda/checkout", "--json")
    assert json.loads(out)["decisions"]["retention"]["detail"].endswith("set 30 days")


@pytest.mark.parametrize(("argv", "message"), [
    (("--member", "4444"), "--member 4444: expected a 12-digit account id"),
    (("--member", "444444444444"), "--member without --ou: rollout:overrides has overrides by OU"),
    (("--member", "444444444444", "--ou", "ou-exam-99999999"), "--ou ou-exam-99999999: not an OU of rollout:waves"),
])
def test_issue30_a_member_the_rollout_could_not_deploy_is_bad_input(cli: Any, tmp_path: Path, argv: tuple[str, ...], message: str) -> None:
    _with_organization(tmp_path)

    code, _, err = cli("rules", *argv)

    assert code == 2 and message in err


def test_issue30_the_cli_runs_as_typed_without_node_and_prints_no_banner(cli: Any, tmp_path: Path) -> None:
    """The console script, as a user types it, with nothing but the venv's bin on PATH: no Node is started (the CDK's
    jsii runtime printed an 11-line end-of-life banner before every command)."""
    import subprocess
    import sys

    context = _with_organization(tmp_path)
    script = Path(sys.executable).parent / "log-group-governor"
    done = subprocess.run([str(script), "rules", "--context", str(context), "--member", "444444444444", "--ou", "ou-exam-22222222"],
                          capture_output=True, text=True, timeout=120, env={"PATH": str(script.parent), "HOME": str(tmp_path)})

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["member"]["overrides"] == ["sandbox", "payments"]
    assert done.stderr == ""


def test_issue30_review_a_member_under_invalid_overrides_is_bad_input_not_the_organizations(cli: Any, tmp_path: Path) -> None:
    path = _with_organization(tmp_path)
    context = json.loads(path.read_text())
    context["context"]["rollout:overrides"] = [{"name": "pay", "accounts": ["444444444444"],
                                                "governor": {"defaultRetentionDays": 545, "destinationArn": "arn:aws:logs:eu-west-1:1:destination:x"}}]
    path.write_text(json.dumps(context))

    code, out, err = cli("rules", "--member", "444444444444", "--ou", "ou-exam-11111111")

    assert code == 2 and out == "" and "invalid configuration" in err and "governor:destinationArn the rollout sets" in err


def test_issue30_review_rules_for_a_member_shows_the_archives_guard_and_what_c_sets_over_it(cli: Any, tmp_path: Path) -> None:
    _with_organization(tmp_path)

    code, out, _ = cli("rules", "--member", "444444444444", "--ou", "ou-exam-11111111", "-c", "defaultRetentionDays=14")

    printed = json.loads(out)
    assert code == 0 and "/log-group-governor/archive/ship-logs" in printed["scope"]["shippingPathLogGroups"]
    assert printed["member"]["then -c"] == {"governor:defaultRetentionDays": "14"} and printed["rules"][-1]["retention"]["days"] == 14

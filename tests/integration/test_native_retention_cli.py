"""`python -m cli retention-policies`: what the configuration compiles to, and with --dry-run what the
account says each policy would do (localaws' model of PutAccountPolicy's dry run)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

import cli.__main__ as cli
from localaws.account import LocalAccount

REPO_CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"


@pytest.fixture
def run(account: LocalAccount, monkeypatch: pytest.MonkeyPatch) -> Any:
    # The CLI makes its own session; in process it must be the one localaws fills moto's gaps in.
    monkeypatch.setattr(cli.boto3, "Session", lambda **_: boto3.DEFAULT_SESSION)

    def _run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["retention-policies", "--context", str(REPO_CDK_JSON), "--region", account.region, *args], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    return _run


def test_the_repository_default_cannot_be_expressed_and_says_why(run: Any) -> None:
    code, _, err = run()

    assert code == 2
    assert "retentionMode 'minimum'" in err and "excludeTags" in err


def test_an_exact_configuration_compiles_and_the_dry_run_names_the_groups_it_would_shorten(account: LocalAccount, run: Any) -> None:
    account.create_log_group("/aws/lambda/orders", retention_days=365)
    account.create_log_group("/aws/lambda/prod-ledger", retention_days=731)
    account.create_log_group("/ecs/api")
    writes_before = account.calls["logs.PutRetentionPolicy"]

    code, out, err = run("-c", "retentionMode=exact", "-c", "excludeTags={}", "-c", 'retentionOverrides={"/aws/lambda/prod-": 365}',
                         "--dry-run")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "log-group-governor-default: 30 days, every group"
    assert "would lengthen 0, shorten 3, keep 0 of 3 groups" in lines[1]  # never expire -> 30 days is shorter too
    assert "    shorter (among the 20 largest in scope): /aws/lambda/orders 365 -> 30 days" in lines
    assert "    shorter (among the 20 largest in scope): /ecs/api NEVER_EXPIRE -> 30 days" in lines
    assert any(line.startswith("log-group-governor-") and "365 days, groups starting with '/aws/lambda/prod-'" in line for line in lines)
    assert account.logs.describe_account_policies(policyType="RETENTION_POLICY")["accountPolicies"] == []  # a dry run writes nothing
    assert account.calls["logs.PutRetentionPolicy"] == writes_before


# --- plan / apply with retentionVia account-policy ---------------------------------------------------

NATIVE = ("-c", "retentionVia=account-policy", "-c", "retentionMode=exact", "-c", "excludeTags={}")


@pytest.fixture
def cli_run(account: LocalAccount, shipper_arn: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cli.boto3, "Session", lambda **_: boto3.DEFAULT_SESSION)

    def _run(mode: str, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main([mode, "--context", str(REPO_CDK_JSON), "--region", account.region, "--no-progress", "--no-count",
                         "-c", f"destinationArn={shipper_arn}", *args], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    return _run


def _retention_policies(account: LocalAccount) -> list[str]:
    return [p["policyName"] for p in account.logs.describe_account_policies(policyType="RETENTION_POLICY")["accountPolicies"]]


def test_plan_shows_the_native_policies_and_what_they_would_shorten_and_writes_nothing(account: LocalAccount, cli_run: Any) -> None:
    account.create_log_group("/aws/lambda/orders", retention_days=365)
    writes_before = account.calls["logs.PutRetentionPolicy"]

    code, out, err = cli_run("plan", *NATIVE, "--json")

    assert code == 0, err
    assert "log-group-governor-default: 30 days, every group" in err
    assert "shorter (among the 20 largest in scope): /aws/lambda/orders 365 -> 30 days" in err
    assert _retention_policies(account) == []
    decisions = [json.loads(line) for line in out.splitlines()][:-1]  # --json: the decisions, then the summary
    retention = next(d for d in decisions if d["aspect"] == "retention")
    assert (retention["action"], retention["reason"]) == ("skip", "retention-awaits-account-policy")
    assert account.calls["logs.PutRetentionPolicy"] == writes_before


def test_apply_that_would_shorten_needs_the_explicit_flag_then_writes_and_never_puts_a_groups_own(account: LocalAccount, cli_run: Any) -> None:
    account.create_log_group("/aws/lambda/orders", retention_days=365)
    account.create_log_group("/ecs/api", retention_days=30)
    writes_before = account.calls["logs.PutRetentionPolicy"]

    refused, _, err = cli_run("apply", *NATIVE)

    assert refused == 2 and "would shorten the retention of 1 log groups" in err and "--allow-shortening" in err
    assert _retention_policies(account) == []

    code, _, err = cli_run("apply", "--allow-shortening", *NATIVE)

    assert code == 0, err
    assert _retention_policies(account) == ["log-group-governor-default"]
    assert "they take effect in 24 hours" in err
    assert account.calls["logs.PutRetentionPolicy"] == writes_before
    account.gaps.account_policies.clock = lambda: time.time() + 25 * 3600  # a day later, the policy is in effect
    group = account.logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/orders")["logGroups"][0]
    assert (group["retentionPolicyName"], group["retentionInDays"]) == ("log-group-governor-default", 30)


def test_apply_that_shortens_nothing_needs_no_flag_and_drops_the_governors_stale_policies(account: LocalAccount, cli_run: Any) -> None:
    account.create_log_group("/ecs/api", retention_days=30)
    account.logs.put_account_policy(policyName="log-group-governor-0123456789ab", policyType="RETENTION_POLICY",
                                    policyDocument=json.dumps({"retentionInDays": 90, "enforcementMode": "RETROACTIVE"}),
                                    selectionCriteria='LogGroupNamePrefix IN ["/old/"]')
    account.logs.put_account_policy(policyName="security-team", policyType="RETENTION_POLICY",
                                    policyDocument=json.dumps({"retentionInDays": 365, "enforcementMode": "RETROACTIVE"}),
                                    selectionCriteria='LogGroupNamePrefix IN ["/audit/"]')

    code, _, err = cli_run("apply", *NATIVE)

    assert code == 0, err
    assert sorted(_retention_policies(account)) == ["log-group-governor-default", "security-team"]


# --- migrate between subscription modes ------------------------------------------------------------

def _filters(account: LocalAccount, group: str) -> dict[str, str]:
    return {f["filterName"]: f["destinationArn"] for f in account.logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]}


def test_migrate_to_account_policy_writes_the_policy_then_removes_only_the_governors_filters_resumably(
        account: LocalAccount, shipper_arn: str, cli_run: Any, tmp_path: Path) -> None:
    vendor = account.create_function("vendor-forwarder")
    account.create_log_group("/aws/lambda/orders", filters=[("log-group-governor", shipper_arn), ("vendor", vendor)])
    account.create_log_group("/aws/lambda/noisy", tags={"log-group-governor:opt-out": "true"})
    checkpoint = tmp_path / "migration.json"

    code, _, err = cli_run("migrate", "--to", "account-policy", "--checkpoint", str(checkpoint), "--out-file", str(tmp_path / "decisions.jsonl"))

    assert code == 0, err
    [policy] = account.logs.describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY")["accountPolicies"]
    assert "/aws/lambda/noisy" in json.loads(policy["selectionCriteria"].removeprefix("LogGroupName NOT IN "))
    assert _filters(account, "/aws/lambda/orders") == {"vendor": vendor}
    assert (tmp_path / "decisions.1-apply.jsonl").exists() and (tmp_path / "decisions.2-remove-filters.jsonl").exists()

    again, _, err = cli_run("migrate", "--to", "account-policy", "--checkpoint", str(checkpoint))

    assert again == 0 and err.count("is finished") == 2  # both steps done: nothing is done twice


def test_migrate_back_to_per_group_subscribes_every_group_then_deletes_the_governors_policy(
        account: LocalAccount, shipper_arn: str, cli_run: Any, tmp_path: Path) -> None:
    account.create_log_group("/aws/lambda/orders")
    cli_run("migrate", "--to", "account-policy", "--checkpoint", str(tmp_path / "there.json"))

    code, _, err = cli_run("migrate", "--to", "per-group", "--checkpoint", str(tmp_path / "back.json"))

    assert code == 0, err
    assert _filters(account, "/aws/lambda/orders") == {"log-group-governor": shipper_arn}
    assert account.logs.describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY")["accountPolicies"] == []

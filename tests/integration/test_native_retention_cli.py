"""`python -m cli retention-policies`: what the configuration compiles to, and with --dry-run what the
account says each policy would do (localaws' model of PutAccountPolicy's dry run)."""

from __future__ import annotations

import io
import json
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
    assert "    shorter: /aws/lambda/orders 365 -> 30 days" in lines
    assert "    shorter: /ecs/api NEVER_EXPIRE -> 30 days" in lines
    assert any(line.startswith("log-group-governor-") and "365 days, groups starting with '/aws/lambda/prod-'" in line for line in lines)
    assert account.logs.describe_account_policies(policyType="RETENTION_POLICY")["accountPolicies"] == []  # a dry run writes nothing
    assert account.calls["logs.PutRetentionPolicy"] == writes_before

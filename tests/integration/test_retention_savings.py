"""#29 item 3, what retention saves: `plan`, `status` and the finished run's metrics show the stored bytes under governance,
those of groups that never expire, and each retention change's estimate of the bytes it expires and the storage it saves,
the largest groups first. Through the real entry points (the CLI's main(), the backfill handler) against a local account,
whose groups store the bytes of the messages put in them (moto's rule: storedBytes is the sum of the messages' lengths),
aged by an injected wall clock."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli.__main__ import main
from governor import savings, storage_cost
from localaws.account import LocalAccount
from tests.conftest import REPORTS_BUCKET, reconcile_runner

DAY_S = 86_400
OPT_OUT = {"log-group-governor:opt-out": "true"}
#: name -> (stored bytes, retention before the run, tags)
GROUPS = {
    "/app/small": (1_000, None, None),          # never expires: set 30 days
    "/app/big": (4_000, None, None),            # never expires: set 30 days
    "/app/year": (2_000, 365, None),            # longer than the minimum: left alone
    "/app/week": (500, 7, None),                # raised to 30 days: expires nothing
    "/app/opted-out": (9_000, None, OPT_OUT),   # excluded: not under governance
}


def _store(account: LocalAccount) -> float:
    """The groups with their bytes; answers a wall clock 100 days after the last was created."""
    for name, (stored, retention, tags) in GROUPS.items():
        account.create_log_group(name, retention_days=retention, tags=tags)
        account.logs.create_log_stream(logGroupName=name, logStreamName="s")
        account.logs.put_log_events(logGroupName=name, logStreamName="s", logEvents=[{"timestamp": int(time.time() * 1000), "message": "x" * stored}])
    created = [g["creationTime"] for g in account.logs.describe_log_groups(logGroupNamePrefix="/app/")["logGroups"]]
    assert sorted(g["storedBytes"] for g in account.logs.describe_log_groups(logGroupNamePrefix="/app/")["logGroups"]) == sorted(
        s for s, _, _ in GROUPS.values())
    return max(created) / 1000 + 100 * DAY_S


# Under the assumption, a group 100 days old that never expired holds 70 of its 100 days past 30 days.
EXPECTED = {"storedBytes": 7_500, "neverExpireStoredBytes": 5_000, "estimatedExpiringBytes": 2_800 + 700}


@pytest.fixture
def cli(account: LocalAccount, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": account.region}.items():
        monkeypatch.setenv(key, value)
    import cli.__main__ as cli_main

    monkeypatch.setattr(cli_main.boto3, "Session", lambda profile_name=None, region_name=None: boto3.DEFAULT_SESSION)
    shipper = account.create_function("log-shipper")

    def run(*argv: str, now: float = 0.0) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, "--no-progress", "-c", f"destinationArn={shipper}"] if argv[0] == "plan" else list(argv),
                    stdout=out, stderr=err, now=lambda: now)
        return code, out.getvalue(), err.getvalue()
    return run


def test_plan_json_carries_the_stored_bytes_and_each_retention_changes_estimate_largest_first(account: LocalAccount, cli: Any) -> None:
    now = _store(account)

    code, out, err = cli("plan", "--json", now=now)

    assert code == 0, err
    *decisions, summary = [json.loads(line) for line in out.splitlines()]
    storage = summary["storage"]
    assert {k: storage[k] for k in EXPECTED} == EXPECTED
    assert storage["estimatedMonthlySavingsUsd"] == pytest.approx(3_500 / 2**30 * 0.03, abs=1e-6)
    assert storage["estimateAssumption"] == savings.ESTIMATE_ASSUMPTION
    assert [(c["logGroup"], c["storedBytes"], c["retentionDays"], c["estimatedExpiringBytes"]) for c in storage["largestChanges"]] == [
        ("/app/big", 4_000, 30, 2_800), ("/app/small", 1_000, 30, 700), ("/app/week", 500, 30, 0)]
    big = [d for d in decisions if d["logGroup"] == "/app/big" and d["aspect"] == "retention"]
    assert big == [{**big[0], "action": "set-retention", "storedBytes": 4_000, "estimatedExpiringBytes": 2_800}]
    assert "storedBytes" not in next(d for d in decisions if d["logGroup"] == "/app/year" and d["aspect"] == "retention")


def test_plan_for_people_says_what_the_retention_changes_would_expire_and_lists_the_largest_groups_first(
        account: LocalAccount, cli: Any) -> None:
    now = _store(account)

    code, out, err = cli("plan", now=now)

    assert code == 0, err
    assert (f"stored: 7.3 KB under governance, 4.9 KB of it in groups that never expire; the retention changes would expire an "
            f"estimated 3.4 KB, saving less than $0.01 a month (estimate: {savings.ESTIMATE_ASSUMPTION})") in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if "retention change, largest groups first" in line)
    rows = [line.split() for line in lines[header + 1:header + 4]]
    assert [(r[0], r[1], " ".join(r[2:4]), " ".join(r[4:6])) for r in rows] == [
        ("/app/big", "30", "3.9 KB", "2.7 KB"), ("/app/small", "30", "1,000 bytes", "700 bytes"), ("/app/week", "30", "500 bytes", "0 bytes")]


def test_a_younger_group_expires_less_and_a_shorter_old_retention_bounds_what_is_held() -> None:
    day_ms = savings.DAY_MS
    assert savings.expiring_bytes(1_000, created_ms=0, old_days=None, new_days=30, now_ms=40 * day_ms) == 250
    assert savings.expiring_bytes(1_000, created_ms=0, old_days=None, new_days=30, now_ms=20 * day_ms) == 0
    assert savings.expiring_bytes(1_000, created_ms=0, old_days=90, new_days=30, now_ms=400 * day_ms) == 666  # (90-30)/90
    assert savings.expiring_bytes(1_000, created_ms=0, old_days=365, new_days=30, now_ms=60 * day_ms) == 500  # holds 60 days
    assert savings.expiring_bytes(1_000, created_ms=None, old_days=None, new_days=30, now_ms=60 * day_ms) == 0  # age unknown
    assert storage_cost.monthly_storage_usd(2**30) == storage_cost.USD_PER_GB_MONTH


def test_a_finished_run_over_every_group_publishes_the_stored_bytes_and_status_shows_them(
        account: LocalAccount, configure: Any, cli: Any) -> None:
    now = _store(account)

    run = reconcile_runner(wall=now)("nightly-1")

    assert run.result["done"] is True
    latest = json.loads(account.client("s3").get_object(Bucket=REPORTS_BUCKET, Key="coverage/latest.json")["Body"].read())
    assert {k: latest[k] for k in EXPECTED} == EXPECTED and latest["estimateAssumption"] == savings.ESTIMATE_ASSUMPTION
    assert run.metrics()[("CoverageStoredBytes", None)] == 7_500
    assert run.metrics()[("CoverageNeverExpireStoredBytes", None)] == 5_000
    code, out, err = cli("status", "--bucket", REPORTS_BUCKET)
    assert code == 0, err
    assert "stored, governed                 7.3 KB" in out and "stored, never expiring           4.9 KB   before that run" in out
    assert f"expired by its changes           3.4 KB   an estimate, less than $0.01 a month (assumed: {savings.ESTIMATE_ASSUMPTION})" in out


def test_review_a_group_shipping_excludes_still_counts_when_its_retention_is_governed(account: LocalAccount, cli: Any) -> None:
    """A rule that turns shipping off (an exclusion for coverage) still sets retention: the totals count the group its table lists."""
    account.create_log_group("/batch/a")
    account.logs.create_log_stream(logGroupName="/batch/a", logStreamName="s")
    account.logs.put_log_events(logGroupName="/batch/a", logStreamName="s", logEvents=[{"timestamp": int(time.time() * 1000), "message": "x" * 1_000}])
    [created] = [g["creationTime"] for g in account.logs.describe_log_groups(logGroupNamePrefix="/batch/")["logGroups"]]
    rules = [{"name": "no shipping", "match": {"namePrefixes": ["/batch/"]}, "retention": {"days": 7}, "shipping": {"enabled": False}}]

    code, out, err = cli("plan", "--json", "-c", f"rules={json.dumps(rules)}", now=created / 1000 + 100 * DAY_S)

    storage = json.loads(out.splitlines()[-1])["storage"]
    assert code == 0, err
    assert [c["logGroup"] for c in storage["largestChanges"]] == ["/batch/a"]
    assert storage["storedBytes"] == 1_000 and storage["estimatedExpiringBytes"] == storage["largestChanges"][0]["estimatedExpiringBytes"] == 930

"""The scheduled reconcile: the backfill run with {"reconcile": true}, through its entry point."""

from __future__ import annotations

import io
import json
import os
import time
from typing import Any

import pytest

from governor.aws import Conflict, StateTable
from governor.backfill import BadRequest
from governor.handlers.backfill import build_parts, handle_backfill
from governor.handlers.create_log_group import set_retention, subscribe_log_group
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, log_group_call_event
from localaws.lambda_runtime import LocalLambdaContext
from tests.conftest import REPORTS_BUCKET, STATE_TABLE, call, reconcile_runner

FILTER = "log-group-governor"
OTHER_TOOL = "arn:aws:iam::123456789012:role/terraform-apply"
#: Two days after the groups are created (moto stamps them with the real time): old enough to be judged orphans.
NOW = time.time() + 2 * 86400


@pytest.fixture
def reconcile(account: LocalAccount, configure: Any) -> Any:
    """Run a reconcile slice as the scheduled state machine does; answers (result, what it printed)."""
    return reconcile_runner(wall=NOW)


def _latest(account: LocalAccount) -> dict[str, Any]:
    return json.loads(account.client("s3").get_object(Bucket=REPORTS_BUCKET, Key="coverage/latest.json")["Body"].read())


def test_a_reconcile_repairs_what_events_missed_and_publishes_coverage(account: LocalAccount, shipper_arn: str, reconcile: Any) -> None:
    account.create_function("orders-api")
    account.create_log_group("/aws/lambda/orders-api")                      # its create event was lost
    account.create_log_group("/aws/lambda/deleted-fn", retention_days=30,   # its function is gone
                             filters=[(FILTER, shipper_arn)])
    account.create_log_group("/aws/lambda/noisy", tags={"log-group-governor:opt-out": "true"})
    account.create_log_group("/archive/audit", log_group_class="INFREQUENT_ACCESS", retention_days=30)

    run = reconcile("nightly-1")

    assert run.result["done"] is True
    assert account.snapshot("/aws/lambda/orders-api") == {"class": "STANDARD", "retention": 30, "filters": {FILTER: shipper_arn}}
    coverage = run.result["summary"]["coverage"]
    assert coverage == {
        "logGroups": 4, "governed": 3, "compliant": 3, "compliantPercent": 100.0, "repairedByThisRun": 1,
        "excluded": {"excluded-tag": 1}, "conflicts": {}, "unsupportedClass": 1, "orphans": 2, "errors": 0,
        "driftRepairedSinceLastRun": 0,
        # No events stored (#29 item 3: what retention saves, of a finished run over every group).
        "storedBytes": 0, "neverExpireStoredBytes": 0, "estimatedExpiringBytes": 0, "estimatedMonthlySavingsUsd": 0.0,
        "estimateAssumption": "events spread evenly over each group's age (or over its retention, when that is shorter)",
        # Per control: audit (Infrequent Access) takes no subscription, which counts as compliant for that control.
        "byControl": {"retention": {"governed": 3, "compliant": 3, "compliantPercent": 100.0},
                      "subscription": {"governed": 3, "compliant": 3, "compliantPercent": 100.0}},
    }
    # orders-api: repaired (both aspects); deleted-fn: compliant, orphaned; noisy: opted out (and orphaned); audit: retention only
    latest = _latest(account)
    assert latest["runId"] == "nightly-1" and latest["reconcile"] is True and latest["governed"] == 3
    summary = json.loads(account.client("s3").get_object(Bucket=REPORTS_BUCKET, Key="runs/nightly-1/summary.json")["Body"].read())
    assert summary["coverage"] == coverage
    assert run.metrics()[("CoverageGoverned", None)] == 3
    assert run.metrics()[("CoverageOrphans", None)] == 2
    assert run.metrics()[("CoverageExcluded", "excluded-tag")] == 1
    assert account.calls["lambda.ListFunctions"] == 1  # one listing for the run, not a call per group


def test_orphans_get_the_short_retention_when_configured_and_are_never_deleted(account: LocalAccount, configure: Any, reconcile: Any) -> None:
    configure(orphanRetentionDays=7)
    account.create_log_group("/aws/lambda/deleted-fn", retention_days=365)
    account.create_log_group("/aws/lambda/us-east-1.edge-fn", retention_days=365)  # a Lambda@Edge replica: its function is elsewhere

    run = reconcile("nightly-orphans")

    assert account.snapshot("/aws/lambda/deleted-fn")["retention"] == 7
    assert account.snapshot("/aws/lambda/us-east-1.edge-fn")["retention"] == 365
    assert run.result["summary"]["byReason"]["retention set-retention"] == {"orphaned-function": 1}
    assert run.result["summary"]["coverage"]["orphans"] == 1  # the edge replica is not counted: its function lives elsewhere


def test_two_reconcile_runs_never_overlap(account: LocalAccount, reconcile: Any) -> None:
    account.create_log_group("/aws/lambda/orders-api")
    state = StateTable(STATE_TABLE, account.client("dynamodb"))
    assert state.acquire_lock("nightly-1", NOW, lease_s=1800) is None  # a run that is still going

    skipped = reconcile("nightly-2", wall=NOW + 60)

    assert skipped.result == {"runId": "nightly-2", "done": True, "skipped": "reconcile run nightly-1 is still going"}
    assert account.calls["logs.DescribeLogGroups"] == 0
    # The first run died without releasing its lock: once its lease lapses, the next run goes ahead.
    resumed = reconcile("nightly-3", wall=NOW + 1801)
    assert resumed.result["done"] is True and "skipped" not in resumed.result
    assert state.acquire_lock("nightly-4", NOW + 1802, lease_s=1800) is None  # released when it finished


def test_a_reconcile_leaves_a_contested_group_alone_and_counts_the_conflict(account: LocalAccount, reconcile: Any) -> None:
    account.create_log_group("/aws/lambda/orders-api", retention_days=7)
    StateTable(STATE_TABLE, account.client("dynamodb")).declare_conflict(
        Conflict("/aws/lambda/orders-api", "retention", OTHER_TOOL, NOW - 60, NOW + 3600, 4))

    run = reconcile("nightly-1")

    assert account.snapshot("/aws/lambda/orders-api")["retention"] == 7
    assert run.result["summary"]["coverage"]["conflicts"] == {"drift-fight": 1}
    assert run.result["summary"]["byReason"]["retention conflict"] == {"drift-fight": 1}


def test_drift_repaired_by_events_is_reported_once_by_the_next_run(account: LocalAccount, configure: Any, reconcile: Any) -> None:
    account.create_log_group("/aws/lambda/orders-api")
    call(subscribe_log_group, create_log_group_event("/aws/lambda/orders-api"))
    call(set_retention, create_log_group_event("/aws/lambda/orders-api"))
    account.logs.delete_retention_policy(logGroupName="/aws/lambda/orders-api")
    call(set_retention, log_group_call_event("DeleteRetentionPolicy", "/aws/lambda/orders-api", role_arn=OTHER_TOOL))

    first, second = reconcile("nightly-1"), reconcile("nightly-2")

    assert first.result["summary"]["coverage"]["driftRepairedSinceLastRun"] == 1
    assert second.result["summary"]["coverage"]["driftRepairedSinceLastRun"] == 0


@pytest.mark.parametrize("extra", [{"dryRun": True}, {"prefix": "/aws/"}, {"reconcile": "yes"}])
def test_a_reconcile_covers_everything_in_apply_mode(account: LocalAccount, configure: Any, extra: dict) -> None:
    parts = build_parts(os.environ)
    with pytest.raises(BadRequest, match="reconcile"):
        handle_backfill({"execution": "x", "input": {"reconcile": True, **extra}}, LocalLambdaContext("backfill"), parts)


def test_cli_status_prints_the_latest_coverage_as_a_table(account: LocalAccount, reconcile: Any) -> None:
    from cli.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    assert main(["status", "--bucket", REPORTS_BUCKET, "--region", account.region], stdout=out, stderr=err) == 4
    assert "no coverage in s3://governor-reports/coverage/latest.json yet" in err.getvalue()

    account.create_log_group("/aws/lambda/orders-api")
    account.create_log_group("/aws/lambda/noisy", tags={"log-group-governor:opt-out": "true"})
    reconcile("nightly-7")
    assert main(["status", "--bucket", REPORTS_BUCKET, "--region", account.region], stdout=out, stderr=err) == 0

    table = out.getvalue().splitlines()
    assert table[0] == f"Coverage in {account.region}: reconcile run nightly-7, finished " + _latest(account)["finishedAt"]
    rows = {line[2:30].strip(): line[30:].split() for line in table[2:]}
    assert rows["log groups seen"] == ["2"] and rows["governed"] == ["1"]
    assert rows["compliant"][:2] == ["1", "100.0%"]
    assert rows["excluded"] == ["1", "excluded-tag", "1"]
    assert rows["orphaned /aws/lambda groups"] == ["2"]


def test_a_group_under_an_account_level_retention_policy_is_never_written_again_and_again(account: LocalAccount, configure: Any,
                                                                                        reconcile: Any) -> None:
    """The defect of #9: reading the policy's retention and "fixing" it with PutRetentionPolicy, which
    changes nothing while the policy applies, on every reconcile, forever."""
    configure(retentionMode="exact")
    account.create_log_group("/aws/lambda/orders-api", retention_days=30)
    account.create_log_group("/legacy/app", retention_days=30)
    account.logs.put_account_policy(policyName="org-baseline", policyType="RETENTION_POLICY",
                                    policyDocument=json.dumps({"retentionInDays": 90, "enforcementMode": "RETROACTIVE"}),
                                    selectionCriteria='LogGroupNamePrefix IN ["/aws/"]')
    account.gaps.account_policies.clock = lambda: time.time() + 86_400  # a day later: in effect
    assert account.snapshot("/aws/lambda/orders-api")["retention"] == 90
    writes = account.calls["logs.PutRetentionPolicy"]

    runs = [reconcile("nightly-1"), reconcile("nightly-2")]

    assert account.calls["logs.PutRetentionPolicy"] == writes
    for run in runs:
        assert run.result["summary"]["byReason"]["retention conflict"] == {"account-retention-policy-differs": 1}
        assert run.result["summary"]["coverage"]["conflicts"] == {"account-retention-policy-differs": 1}
        assert run.result["summary"]["byReason"]["retention leave"] == {"retention-compliant": 1}


def test_issue27_a_group_aws_keeps_refusing_with_a_free_slot_is_reported_and_the_run_goes_on(account: LocalAccount, reconcile: Any) -> None:
    """#27 item 7 on the run's path: PutSubscriptionFilter answering LimitExceededException on a group with a free slot is asked
    again by the next run; one group that keeps answering so is an error of the run, never a page done again and again."""
    import boto3

    account.create_log_group("/aws/lambda/busy")
    account.create_log_group("/aws/lambda/orders-api")

    def under_load(params: dict[str, Any], **_: Any) -> Any:  # a test instrument (as localaws G8): this group, every time
        if json.loads(params.get("body") or b"{}").get("logGroupName") == "/aws/lambda/busy":
            return (type("Http", (), {"status_code": 400, "headers": {}})(),
                    {"Error": {"Code": "LimitExceededException", "Message": "Resource limit exceeded."}, "ResponseMetadata": {"HTTPStatusCode": 400}})
        return None

    boto3.DEFAULT_SESSION.events.register("before-call.cloudwatch-logs.PutSubscriptionFilter", under_load)
    run = reconcile("nightly-busy")

    assert run.result["done"] is True and run.result["summary"]["coverage"]["errors"] == 1
    assert account.snapshot("/aws/lambda/orders-api")["filters"]  # the rest of the page was governed
    assert account.snapshot("/aws/lambda/busy")["filters"] == {}

"""`make demo` runs and shows each outcome the README promises."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout

import pytest

from demo.__main__ import main


@pytest.fixture(scope="module")
def printed() -> str:
    """What `make demo` prints (run once for the module: it takes tens of seconds)."""
    out = io.StringIO()
    with redirect_stdout(out):
        main()
    return out.getvalue()


def test_demo_shows_every_outcome(printed: str) -> None:
    rows = {line.split()[0]: line for line in printed.splitlines() if line.startswith(("/aws/", "/archive/", "/ecs/"))}

    assert "subscribe (not-subscribed)" in rows["/aws/lambda/orders-api"] and rows["/aws/lambda/orders-api"].endswith("30d log-group-governor")
    assert "skip (shipping-path)" in rows["/aws/lambda/log-shipper"]
    assert "skip (excluded-prefix)" in rows["/aws/lambda/sandbox-experiment"]
    assert "skip (excluded-tag)" in rows["/aws/lambda/noisy-batch"]
    assert "skip (unsupported-class)" in rows["/archive/audit-trail"]
    assert "conflict (no-free-slot)" in rows["/aws/lambda/checkout"] and rows["/aws/lambda/checkout"].endswith("siem,vendor-apm")
    assert "leave (keeps-longer-retention)" in rows["/aws/lambda/reporting"]
    assert rows["/aws/lambda/prod-ledger"].endswith("365d log-group-governor")
    assert "leave (filter-compliant)" in printed
    assert re.search(r"'logs.PutSubscriptionFilter': 5\b", printed)
    backfill = printed[printed.index("2. The backfill"):]
    assert re.search(r"dry-run: 129 log groups in 3 pages, writes none", backfill)
    assert re.search(r"apply: 129 log groups in 3 pages, writes \{'logs.PutRetentionPolicy': \d+, 'logs.PutSubscriptionFilter': \d+\}", backfill)
    assert "apply-again: 129 log groups in 3 pages, writes none" in backfill
    assert '"applied":false' in backfill


def test_demo_shows_drift_repaired_a_fight_stopped_and_coverage_before_and_after(printed: str) -> None:
    section = printed[printed.index("3. Drift"):printed.index("4. Native")]

    assert re.search(r"DeleteSubscriptionFilter\s+on /aws/lambda/orders-api\s+by platform-admin\s+-> subscribe \(not-subscribed\); now\s+30d log-group-governor", section)
    assert re.search(r"TagResource\s+on /aws/lambda/payments-worker\s+by platform-admin\s+-> remove-filter \(opted-out\); now\s+30d -", section)
    assert re.search(r"UntagResource\s+on /aws/lambda/payments-worker .*-> subscribe \(not-subscribed\); now\s+30d log-group-governor", section)
    assert len(re.findall(r"PutRetentionPolicy\s+on /ecs/search-indexer\s+by terraform-apply\s+-> set-retention", section)) == 3
    assert re.search(r"-> conflict \(drift-fight\); now\s+7d", section)
    assert "by arn:aws:iam::123456789012:role/terraform-apply; the governor stops touching it until" in section
    assert "-> ignored (own-call)" in section
    assert re.search(r"/aws/lambda/inventory-sync: now\s+30d log-group-governor", section)
    before, after = section.split("after (python -m cli status):")
    assert "backfill plan run drift-plan" in before and "reconcile run nightly-reconcile" in after
    assert re.search(r"drift repaired by events\s+5\b", after)  # the four of this act, and act 1's filter put back after the re-point
    assert re.search(r"conflicts\s+12\s+drift-fight 1, no-free-slot 11", after)
    assert re.search(r"excluded\s+14\s+.*opted-out 1", before)


def test_demo_cuts_the_loop_of_a_destination_re_pointed_at_a_subscribed_group(printed: str) -> None:
    assert ("The destination re-pointed at /aws/lambda/orders-api (UpdateFunctionConfiguration20150331v2): remove-filter (shipping-path); "
            "after:    30d -") in printed


def test_demo_restores_the_account_policy_deleted_by_hand_within_one_event(printed: str) -> None:
    section = printed[printed.index("someone deletes the governor's policy by hand"):printed.index("5. ship-logs")]

    assert "after the deletion: /aws/lambda/orders-api not shipped" in section
    assert "its DeleteAccountPolicy event -> update-account-policy: restored: it was deleted; written back from the state table" in section
    assert "after the event: /aws/lambda/orders-api shipped 1x (ACCOUNT_LEVEL_POLICY); /aws/lambda/sandbox-new-experiment: not shipped" in section
    assert section.count("-> update-account-policy (log-group-gone); in the list: False") == 3


def test_demo_runs_the_native_modes_end_to_end(printed: str) -> None:
    section = printed[printed.index("4. Native"):printed.index("5. ship-logs")]

    assert "is 60 days under retentionOverrides['/aws/lambda/prod-'] of 365" in section        # refused, with the reason
    assert "apply without --allow-shortening: exit 2, 0 policies written" in section
    assert "shorter (among the 20 largest in scope): /aws/lambda/prod-ledger 365 -> 30 days" in section                          # the dry run's impact
    assert "wrote 2 native retention policies" in section
    assert "retentionPolicyName=log-group-governor-" in section and "retentionInDays=365" in section
    assert "the guard's names are in its NOT IN list: ['/aws/lambda/log-shipper']" in section
    assert "while it still has its own filter: shipped 2x (group filter, ACCOUNT_LEVEL_POLICY)" in section
    assert "after: shipped 1x (ACCOUNT_LEVEL_POLICY)" in section
    assert "before the event: shipped 1x (ACCOUNT_LEVEL_POLICY); the handler: update-account-policy (excluded-prefix); after: not shipped" in section
    assert "TagResource    -> update-account-policy (excluded-tag); in the list: True; not shipped" in section
    assert "UntagResource  -> update-account-policy (shipped-by-account-policy); in the list: False; shipped 1x" in section
    migrate = next(line for line in section.splitlines() if "migrate-1-account-policy" in line)
    assert "DescribeSubscriptionFilters" not in migrate and "PutSubscriptionFilter" not in migrate


def test_demo_shows_ship_logs_at_work(printed: str) -> None:
    section = printed[printed.index("5. ship-logs"):]

    assert "CONTROL_MESSAGE: control-message" in section
    assert re.search(r"/aws/lambda/orders-api: \d+ log events shipped: \d+ records to http://127\.0\.0\.1:\d+/_bulk in 1 request\(s\), 0 refused", section)
    assert re.search(r"/aws/lambda/checkout: \d+ log events shipped", section)
    assert "correlation_id=" in section and "user_agent='Mozilla" in section
    assert re.search(r"LogGroupGovernor/Lambda/ColdStarts\s+FunctionName=orders-api\s+samples\s+\d+\s+sum\s+1\.00", section)
    assert re.search(r"shop/orders_placed\s+FunctionName=(orders-api|checkout)", section)


def test_demo_runs_an_organization_end_to_end(printed: str) -> None:
    section = printed[printed.index("6. An organization"):printed.index("7. After every deploy")]

    assert ("a member filter without the sender role: AccessDeniedException: arn:aws:logs:eu-west-1:111111111111:destination:"
            "log-group-governor-archive admits an organization: the sender must pass a role") in section
    members = [line for line in section.splitlines() if "groups subscribed to destination:log-group-governor-archive" in line]
    assert len(members) == 6  # 3 members in 2 regions, each governed by the real handlers
    assert "999999999999 (not in the organization): AccessDeniedException" in section
    assert "0 failures" in section and "eu-west-1: 9 Kinesis records" in section and "us-east-1: 9 Kinesis records" in section
    sources = next(line for line in section.splitlines() if "records by source account and region" in line)
    assert sources.count("/eu-west-1") == 3 and sources.count("/us-east-1") == 3
    table = section[section.index("python -m cli fleet-status"):].splitlines()
    assert any(line.strip().startswith("456789012345  us-east-1") and line.endswith("SILENT") for line in table)
    assert any("ALARM: LogGroupGovernor-DeadLetters" in line for line in table)
    assert any(line.strip() == "6 members, 1 silent" for line in table)


def test_demo_ends_with_the_selftest_passing_and_one_failure_with_its_fix(printed: str) -> None:
    section = printed[printed.index("7. After every deploy"):]
    passing, failing = section.split("someone stopped the trail")

    assert "the deployment as cdk deploy leaves it: exit 0" in passing and "all steps passed" in passing
    for step in ("stack", "trail", "alarm-topic", "canary", "subscribed", "retention", "delivery", "cleanup"):
        assert re.search(rf"PASS  {step}\b", passing), step
    assert "(aws cloudtrail stop-logging): exit 1" in failing
    assert "FAIL  trail           LogGroupGovernor-management-events is not logging" in failing
    assert "fix: deploy with governor:createTrail true, or start a trail" in failing
    assert "PASS  cleanup" in failing  # the canary goes, even on failure

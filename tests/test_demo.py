"""`make demo` runs and shows each outcome the README promises."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout

import pytest

from demo.__main__ import GOVERNANCE, main


@pytest.fixture(scope="module")
def printed() -> str:
    """What `make demo` prints of acts 1-4 (run once for the module: it takes tens of seconds; acts 5-7,
    which need nothing of these, run in tests/test_demo_around.py, so the two halves run side by side)."""
    out = io.StringIO()
    with redirect_stdout(out):
        main((GOVERNANCE,))
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
    section = printed[printed.index("someone deletes the governor's policy by hand"):]

    assert "after the deletion: /aws/lambda/orders-api not shipped" in section
    assert "its DeleteAccountPolicy event -> update-account-policy: restored: it was deleted; written back from the state table" in section
    assert "after the event: /aws/lambda/orders-api shipped 1x (ACCOUNT_LEVEL_POLICY); /aws/lambda/sandbox-new-experiment: not shipped" in section
    assert section.count("-> update-account-policy (log-group-gone); in the list: False") == 3


def test_demo_runs_the_native_modes_end_to_end(printed: str) -> None:
    section = printed[printed.index("4. Native"):]

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


def test_demo_shows_the_first_invocations_lost_without_replay_and_arriving_once_with_it(printed: str) -> None:
    without = re.search(r"replayWindowMinutes null\s+/aws/lambda/checkout-without-replay: of the first ten invocations' (\d+) lines, "
                        r"(\d+) arrived; after the filter 1 of 1; twice: 0", printed)
    replayed = re.search(r"replay \((\d+) events in \d+ record\)\s+/aws/lambda/checkout-new: of the first ten invocations' (\d+) lines, "
                         r"(\d+) arrived; after the filter 1 of 1; twice: 0", printed)

    assert without and int(without[1]) >= 30 and without[2] == "0"  # the subscription alone loses every one of them
    assert replayed and replayed[1] == replayed[2] == replayed[3]  # each arrives, once


def test_demo_governs_by_rules_explains_them_repairs_a_key_and_refuses_a_protected_deletion(printed: str) -> None:
    section = printed[printed.index("4b. Governance rules"):]

    assert "kmsKeyArn: rules[0] 'production' (name starts with '/aws/lambda/prod-')" in section
    assert "passed over rules[0] 'production': no name prefix matches" in section
    assert re.search(r"/aws/lambda/prod-payments\s+retention 365d, log-group-governor\[every line\], deletion protection on, key \w{8}\.\.\., "
                     r"masks CreditCardNumber/EmailAddress, indexes orderId/requestId", section)
    assert re.search(r"/ecs/nightly-etl\s+retention 7d, log-group-governor\[ERROR\], deletion protection off, key none, masks nothing, indexes nothing", section)
    assert re.search(r"/aws/lambda/catalog\s+retention 30d, log-group-governor\[every line\], deletion protection off, key none, masks nothing", section)
    assert "wakes EncryptLogGroup: associate-kms-key (kms-key-missing)" in section
    assert "DeleteLogGroup /aws/lambda/prod-payments: refused, ValidationException" in section

"""`make demo` runs and shows each outcome the README promises."""

from __future__ import annotations

import re

import pytest

from demo.__main__ import main


def test_demo_shows_every_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    main()
    printed = capsys.readouterr().out
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


def test_demo_shows_ship_logs_at_work(capsys: pytest.CaptureFixture[str]) -> None:
    main()
    printed = capsys.readouterr().out
    section = printed[printed.index("3. ship-logs"):]

    assert "CONTROL_MESSAGE: control-message" in section
    assert re.search(r"/aws/lambda/orders-api: \d+ log events shipped: \d+ records to http://127\.0\.0\.1:\d+/_bulk in 1 request\(s\), 0 refused", section)
    assert re.search(r"/aws/lambda/checkout: \d+ log events shipped", section)
    assert "correlation_id=" in section and "user_agent='Mozilla" in section
    assert re.search(r"LogGroupGovernor/Lambda/ColdStarts\s+FunctionName=orders-api\s+samples\s+\d+\s+sum\s+1\.00", section)
    assert re.search(r"shop/orders_placed\s+FunctionName=(orders-api|checkout)", section)

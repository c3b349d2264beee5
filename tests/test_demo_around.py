"""`make demo`'s acts 5-7 (ship-logs, an organization, the self-test after a deploy): they need nothing
of acts 1-4 (tests/test_demo.py), so each half runs in a worker of its own."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout

import pytest

from demo.__main__ import AROUND, main


@pytest.fixture(scope="module")
def printed() -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        main((AROUND,))
    return out.getvalue()


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

    assert ("a member filter without the sender role: InvalidParameterException: Role ARN is required when creating subscription "
            "filter against destination with Organization access policy") in section  # AWS's answer (FIDELITY.md O4)
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

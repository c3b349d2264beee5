"""The backfill Lambda, through its entry point: plans, applies, pages, resumes, refuses bad input."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import boto3
import pytest

from governor.backfill import BadRequest
from governor.handlers.backfill import build_parts, handle_backfill, handler
from localaws.account import LocalAccount
from localaws.lambda_runtime import LocalLambdaContext, SimulatedClock
from localaws.mix import EXCLUDED_PREFIX, FILTER_NAME, create_mix
from localaws.stepfunctions import run_execution
from tests.conftest import REPORTS_BUCKET, call

WRITES = ("logs.PutSubscriptionFilter", "logs.PutRetentionPolicy")


def _writes(account: LocalAccount) -> int:
    return sum(account.calls[w] for w in WRITES)


def _decisions(account: LocalAccount, run_id: str) -> list[dict[str, Any]]:
    s3 = account.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=REPORTS_BUCKET, Prefix=f"runs/{run_id}/decisions/").get("Contents", [])]
    lines = []
    for key in sorted(keys):
        lines += [json.loads(line) for line in s3.get_object(Bucket=REPORTS_BUCKET, Key=key)["Body"].read().decode().splitlines()]
    return lines


@pytest.fixture
def mix(account: LocalAccount, shipper_arn: str, configure: Any):
    configure(excludePrefixes=[EXCLUDED_PREFIX])
    return create_mix(account, shipper_arn, 130)  # three pages of 50


def test_dry_run_returns_the_plan_and_changes_nothing(account: LocalAccount, mix: Any) -> None:
    before = {name: account.snapshot(name) for name in mix.kinds}
    writes_before = _writes(account)

    result = call(handler, {"dryRun": True, "runId": "plan-1"}, function_name="backfill").result

    assert result["done"] is True and result["summary"]["dryRun"] is True
    assert _writes(account) == writes_before
    assert {name: account.snapshot(name) for name in mix.kinds} == before
    decisions = _decisions(account, "plan-1")
    assert Counter(d["logGroup"] for d in decisions) == {name: 2 for name in mix.kinds}
    assert all(d["applied"] is False for d in decisions)
    by_reason = result["summary"]["byReason"]
    assert by_reason["subscription subscribe"]["not-subscribed"] == len(mix.names("plain"))
    assert by_reason["subscription skip"] == {
        "excluded-prefix": len(mix.names("excluded")),
        "unsupported-class": len(mix.names("infrequent-access")),
        "shipping-path": 1,
    }
    assert by_reason["subscription conflict"] == {"no-free-slot": len(mix.names("full"))}
    assert result["summaryLocation"] == f"s3://{REPORTS_BUCKET}/runs/plan-1/summary.json"


def test_apply_brings_every_group_into_line_and_a_second_apply_writes_nothing(account: LocalAccount, shipper_arn: str, mix: Any) -> None:
    first = call(handler, {"runId": "apply-1"}, function_name="backfill").result

    assert first["done"] is True and first["summary"]["pages"] == 3 and first["summary"]["logGroups"] == 130
    for name in mix.names("plain"):
        assert account.snapshot(name) == {"class": "STANDARD", "retention": 30, "filters": {FILTER_NAME: shipper_arn}}
    for name in mix.names("full"):
        assert FILTER_NAME not in account.snapshot(name)["filters"]
    writes_before = _writes(account)

    second = call(handler, {"runId": "apply-2"}, function_name="backfill").result

    assert _writes(account) == writes_before
    assert "subscription subscribe" not in second["summary"]["byAction"]
    assert "retention set-retention" not in second["summary"]["byAction"]
    assert second["summary"]["apiCalls"].get("PutSubscriptionFilter", 0) == 0


def test_writes_go_only_where_something_changes(account: LocalAccount, mix: Any) -> None:
    before = Counter(account.calls)

    result = call(handler, {"runId": "apply-1"}, function_name="backfill").result

    made = account.calls - before
    assert made["logs.PutSubscriptionFilter"] == result["summary"]["apiCalls"]["PutSubscriptionFilter"] == len(mix.names("plain"))
    # Compliant groups and the shipper's own group already keep 30 days; excluded ones are left alone.
    needing_retention = len(mix.names("plain")) + len(mix.names("infrequent-access")) + len(mix.names("full"))
    assert made["logs.PutRetentionPolicy"] == result["summary"]["apiCalls"]["PutRetentionPolicy"] == needing_retention


def test_a_finished_run_invoked_again_does_nothing_more(account: LocalAccount, mix: Any) -> None:
    call(handler, {"runId": "once"}, function_name="backfill")
    calls_before = sum(account.calls.values())

    again = call(handler, {"runId": "once"}, function_name="backfill").result

    assert again["done"] is True and again["summary"]["logGroups"] == 130
    assert sum(account.calls.values()) - calls_before <= 3  # reading the checkpoint and writing the summary


def test_a_run_keeps_its_mode(account: LocalAccount, mix: Any) -> None:
    call(handler, {"dryRun": True, "runId": "r"}, function_name="backfill")

    with pytest.raises(BadRequest, match="run 'r' was started with dryRun=true"):
        call(handler, {"runId": "r"}, function_name="backfill")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"dryRun": "yes"}, "dryRun: expected true or false; got 'yes'"),
        ({"dryrun": True}, "unknown backfill input key.*dryrun; valid keys: dryRun, runId, prefix"),
        ({"runId": "../other"}, "runId: expected 1 to 80 letters"),
        ({"runId": 7}, "runId: expected"),
        ({"prefix": 3}, "prefix: expected a log group name prefix"),
        ([], "backfill input must be a JSON object"),
        ("go", "backfill input must be a JSON object"),
        ({"execution": "exec-1", "input": {"dryRun": 1}}, "dryRun: expected true or false"),
        ({"execution": "exec-1", "input": ["dryRun"]}, "backfill input must be a JSON object"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(account: LocalAccount, configure: Any, event: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        call(handler, event, function_name="backfill")
    assert account.calls["logs.DescribeLogGroups"] == 0


def test_state_machine_input_without_options_is_an_apply_named_after_the_execution(account: LocalAccount, mix: Any) -> None:
    result = call(handler, {"execution": "exec-42", "input": {}}, function_name="backfill").result

    assert result["runId"] == "exec-42" and result["summary"]["dryRun"] is False


def test_prefix_limits_the_run(account: LocalAccount, mix: Any) -> None:
    result = call(handler, {"runId": "ecs", "prefix": "/ecs/", "dryRun": True}, function_name="backfill").result

    assert result["summary"]["logGroups"] == len(mix.names("full"))


def test_a_group_error_that_retrying_cannot_fix_is_reported_with_its_name(account: LocalAccount, mix: Any) -> None:
    victim = mix.names("plain")[0]
    _fail(account, "PutRetentionPolicy", "AccessDeniedException", when=lambda params: params.get("logGroupName") == victim)

    result = call(handler, {"runId": "denied"}, function_name="backfill").result

    assert result["done"] is True
    assert result["summary"]["errorCount"] == 1
    [error] = result["summary"]["errors"]
    assert error["logGroup"] == victim and error["aspect"] == "retention" and "AccessDenied" in error["error"]


# --- long runs: simulated time, simulated crashes -----------------------------------------------

def test_a_run_longer_than_an_invocation_covers_every_group_exactly_once_through_crashes(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    """400 groups at the published quotas need ~55 s of API time; each simulated invocation (140 s,
    of which the last 120 s start no new page) gets through two or three pages before handing over. On the way, an invocation crashes, one is throttled past botocore's
    retries, and one finds its page token expired."""
    configure(excludePrefixes=[EXCLUDED_PREFIX], apiQuotasTps={})  # the published quotas
    mix = create_mix(account, shipper_arn, 400)
    clock = SimulatedClock()
    boto3.DEFAULT_SESSION.events.register("before-call.logs", lambda **_: clock.sleep(0.02))  # API latency
    put_filter_groups: Counter[str] = Counter()
    boto3.DEFAULT_SESSION.events.register(
        "before-call.logs.PutSubscriptionFilter", lambda params, **_: put_filter_groups.update([_api_params(params)["logGroupName"]])
    )
    put_retention_calls: Counter[str] = Counter()
    boto3.DEFAULT_SESSION.events.register("before-call.logs.PutRetentionPolicy", lambda **_: put_retention_calls.update(["made"]))
    crash = _fail(account, "PutSubscriptionFilter", "crash", times=1, after=60)
    throttle = _fail(account, "PutRetentionPolicy", "ThrottlingException", times=1, after=100)
    expired = _fail(account, "DescribeLogGroups", "InvalidParameterException", times=1, after=5, when=lambda params: "nextToken" in params)
    parts = build_parts(os.environ, clock=clock.monotonic, sleep=clock.sleep)

    execution = run_execution(
        "long-run", {},
        lambda payload: handle_backfill(payload, LocalLambdaContext("backfill", timeout_ms=140_000, clock=clock.monotonic), parts),
    )

    summary = execution.output["summary"]
    assert execution.invocations - len(execution.failures) >= 3, "expected continuations"
    assert crash["failed"] == throttle["failed"] == expired["failed"] == 1
    assert len(execution.failures) == 2  # the expired token is handled inside the slice
    assert "simulated crash" in execution.failures[0] and "(ThrottlingException)" in execution.failures[1]
    decisions = _decisions(account, "long-run")
    assert Counter((d["logGroup"], d["aspect"]) for d in decisions) == {(n, a): 1 for n in mix.kinds for a in ("subscription", "retention")}
    assert summary["logGroups"] == 400 and summary["errorCount"] == 0 and summary["sessions"] == execution.invocations
    # Nothing applied twice (the crash struck before its call left), nothing skipped.
    assert put_filter_groups == {name: 1 for name in mix.names("plain")}
    # The summary counts the work of the sessions that failed too: the crashed and the throttled call.
    assert summary["apiCalls"]["PutSubscriptionFilter"] == len(mix.names("plain")) + 1
    assert summary["apiCalls"]["PutRetentionPolicy"] == put_retention_calls["made"] + 1
    for name in mix.names("plain"):
        assert account.snapshot(name)["filters"] == {FILTER_NAME: shipper_arn}
        assert account.snapshot(name)["retention"] == 30
    assert clock.now > 267 / 5  # 267 DescribeSubscriptionFilters at 5 per simulated second, at least


def _fail(account: LocalAccount, operation: str, code: str, *, times: int | None = None, after: int = 0, when: Any = None) -> dict[str, int]:
    """Make ``operation`` fail with ``code`` (a ClientError, or a crash for "crash") for the calls that
    match ``when``, after ``after`` matching calls have gone through, ``times`` times (None: always)."""
    state = {"seen": 0, "failed": 0}

    def maybe_fail(params: dict[str, Any], **_: Any) -> Any:
        if when is not None and not when(_api_params(params)):
            return None
        state["seen"] += 1
        if state["seen"] <= after or (times is not None and state["failed"] >= times):
            return None
        state["failed"] += 1
        if code == "crash":
            raise RuntimeError("simulated crash: the invocation dies here")
        return _Http(), {"Error": {"Code": code, "Message": "simulated"}, "ResponseMetadata": {"HTTPStatusCode": 400}}

    boto3.DEFAULT_SESSION.events.register_first(f"before-call.logs.{operation}", maybe_fail)
    return state


def _api_params(request: dict[str, Any]) -> dict[str, Any]:
    """The API parameters of a CloudWatch Logs request (JSON protocol) as botocore is about to send it."""
    return json.loads(request.get("body") or b"{}")


class _Http:
    status_code = 400
    headers: dict = {}
    raw = None
    content = b""
    text = ""


# --- bulk tag look-ups --------------------------------------------------------------------------

def test_tags_are_read_in_bulk_and_only_groups_about_to_be_written_are_looked_up_one_by_one(account: LocalAccount, mix: Any) -> None:
    opted_out = [account.create_log_group(f"/aws/lambda/opted-{i:02d}", tags={"log-group-governor:opt-out": "true"}) for i in range(5)]
    bulk: Counter[str] = Counter()  # (clients copy the session's hooks when made: register before the handler makes its own)
    boto3.DEFAULT_SESSION.events.register_first("before-call.resource-groups-tagging-api.GetResources", lambda **_: bulk.update(["call"]))
    call(handler, {"runId": "apply-1"}, function_name="backfill")
    before, bulk_before = Counter(account.calls), bulk["call"]

    again = call(handler, {"runId": "apply-2"}, function_name="backfill").result

    made = account.calls - before
    assert again["summary"]["logGroups"] == 135
    assert bulk["call"] - bulk_before == 1  # the slice's one look-up of the opted-out groups
    assert made["logs.ListTagsForResource"] == 0                   # nothing to write, so nothing to confirm
    assert again["summary"]["coverage"]["excluded"]["excluded-tag"] == len(opted_out)
    assert all(account.snapshot(name)["filters"] == {} for name in opted_out)


def test_a_group_tagged_after_the_bulk_look_up_is_not_subscribed(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    """The slice's tag look-up can be minutes old: a group about to be written is looked up again."""
    from governor.backfill import Backfill, Progress
    from governor.handlers.backfill import build_parts

    configure()
    name = account.create_log_group("/aws/lambda/just-opted-out")
    parts = build_parts(os.environ)
    stale_index = parts.tagging.log_groups_tagged(["log-group-governor:opt-out"])  # before the tag
    account.logs.tag_resource(resourceArn=f"arn:aws:logs:{account.region}:{account.account_id}:log-group:{name}",
                              tags={"log-group-governor:opt-out": "true"})
    progress = Progress(run_id="race", dry_run=False)

    Backfill(parts.governor, parts.store, save=lambda p: None, tag_index=stale_index).run(progress, time_left=lambda: True)

    assert account.snapshot(name)["filters"] == {}
    assert progress.outcomes["subscription skip excluded-tag"] == 1 and progress.outcomes["retention skip excluded-tag"] == 1

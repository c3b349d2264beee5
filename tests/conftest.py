"""Shared fixtures: a moto account, the functions' configuration, and calling handlers as Lambda does."""

from __future__ import annotations

import os

# Node 20 prints an end-of-life banner on every jsii start; it is noise here, not a failure.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from governor.handlers import backfill as backfill_handler
from governor.handlers import create_log_group as handlers
from governor.handlers import delivery_gaps as replays
from governor.gap_settings import ENV_GAP_QUEUE_URL
from governor.config import ENV_CONFIG, ENV_OWN_PRINCIPALS, ENV_REPORTS_BUCKET, ENV_STATE_TABLE
from governor.pacing import EVENT_HANDLER_TIMEOUT_S
from localaws.account import LocalAccount, local_account
from localaws.lambda_runtime import invoke

SHIPPER = "log-shipper"
REPORTS_BUCKET = "governor-reports"
STATE_TABLE = "governor-state"
#: The replay function's queue (stacks/delivery_gaps.py): new groups' first lines and delivery gaps.
REPLAY_QUEUE = "governor-replay"
#: The roles the stack gives the governor's functions, as their CloudTrail records name them.
OWN_ROLES = ["arn:aws:iam::123456789012:role/governor-SubscribeLogGroupRole", "arn:aws:iam::123456789012:role/governor-SetRetentionRole",
             "arn:aws:iam::123456789012:role/governor-BackfillFunctionRole"]
TIMEOUTS_MS = {"backfill": 900_000}
#: Every other function: the event handlers' timeout in the stack (a batch of 50 fits in it on a busy machine too).
DEFAULT_TIMEOUT_MS = EVENT_HANDLER_TIMEOUT_S * 1000
#: Quotas high enough that pacing costs nothing in tests that are not about pacing.
FAST_QUOTAS = {"DescribeLogGroups": 1e4, "DescribeSubscriptionFilters": 1e4, "PutSubscriptionFilter": 1e4,
               "PutRetentionPolicy": 1e4, "ListTagsForResource": 1e4, "DeleteSubscriptionFilter": 1e4, "FilterLogEvents": 1e4}


@pytest.fixture
def account() -> Iterator[LocalAccount]:
    with local_account() as local:
        yield local


@pytest.fixture
def shipper_arn(account: LocalAccount) -> str:
    """The destination: a Lambda function in the account, as a team's log shipper would be."""
    return account.create_function(SHIPPER)


@pytest.fixture
def configure(account: LocalAccount, shipper_arn: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """Set the functions' GOVERNOR_CONFIG as the stack would (keys as in cdk.json) and start cold."""

    account.client("s3").create_bucket(Bucket=REPORTS_BUCKET, CreateBucketConfiguration={"LocationConstraint": account.region})
    monkeypatch.setenv(ENV_REPORTS_BUCKET, REPORTS_BUCKET)
    monkeypatch.setenv(ENV_STATE_TABLE, account.create_state_table(STATE_TABLE))
    monkeypatch.setenv(ENV_OWN_PRINCIPALS, json.dumps(OWN_ROLES))
    monkeypatch.setenv(ENV_GAP_QUEUE_URL, account.client("sqs").create_queue(QueueName=REPLAY_QUEUE)["QueueUrl"])

    def _configure(**overrides: Any) -> dict[str, Any]:
        raw = {"destinationArn": shipper_arn, "excludeTags": {"log-group-governor:opt-out": "true"}, "apiQuotasTps": FAST_QUOTAS, **overrides}
        monkeypatch.setenv(ENV_CONFIG, json.dumps(raw))
        _cold_start()
        return raw

    _configure()
    yield _configure
    _cold_start()


def _cold_start() -> None:
    handlers.subscription_parts.cache_clear()
    handlers.retention_parts.cache_clear()
    handlers.control_parts.cache_clear()
    backfill_handler.backfill_parts.cache_clear()
    replays.parts.cache_clear()


class Invocation:
    """One handler call: its result and what it printed (Powertools JSON logs and EMF metrics)."""

    def __init__(self, result: Any, stdout: str) -> None:
        self.result = result
        self.lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "_aws" not in line]

    def metrics(self) -> dict[tuple[str, str | None], float]:
        """EMF metrics by (name, Reason dimension or None)."""
        found: dict[tuple[str, str | None], float] = {}
        for line in self.lines:
            if "_aws" not in line:
                continue
            for directive in line["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = line[metric["Name"]]
                    found[(metric["Name"], line.get("Reason"))] = sum(value) if isinstance(value, list) else value
        return found


def call(handler: Callable[[Any, Any], Any], event: Any, function_name: str = "governor") -> Invocation:
    """Call a handler as Lambda would (with the timeout the stack gives it), capturing what it prints."""
    out = io.StringIO()
    result = invoke(handler, event, function_name=function_name, out=out, timeout_ms=TIMEOUTS_MS.get(function_name, DEFAULT_TIMEOUT_MS))
    return Invocation(result, out.getvalue())


def call_failing(handler: Callable[[Any, Any], Any], event: Any, function_name: str = "governor",
                 timeout_ms: int | None = None) -> tuple[BaseException, Invocation]:
    out = io.StringIO()
    with pytest.raises(Exception) as raised:
        invoke(handler, event, function_name=function_name, out=out, timeout_ms=timeout_ms or TIMEOUTS_MS.get(function_name, DEFAULT_TIMEOUT_MS))
    return raised.value, Invocation(None, out.getvalue())


def run_replays(account: LocalAccount, *, batches: int | None = None) -> list[Invocation]:
    """The replay queue drained by the replay function (governor.handlers.delivery_gaps), as Lambda's event source mapping
    runs it: a batch at a time, each message it finishes deleted, a continuation it queues taken in a later batch. Stops
    at a batch with a failure (the failed messages stay on the queue, visible again at once here) or when the queue is
    empty, or after ``batches`` batches when given. A BaseException (Lambda stopping the function) leaves the batch's
    messages on the queue."""
    sqs = account.client("sqs")
    url = sqs.get_queue_url(QueueName=REPLAY_QUEUE)["QueueUrl"]
    invocations = []
    for _ in range(batches or 40):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]).get("Messages", [])
        if not messages:
            return invocations
        batch = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                              "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{account.region}:123456789012:{REPLAY_QUEUE}",
                              "awsRegion": account.region} for m in messages]}
        invocation = call(replays.handler, batch, function_name="replay")
        invocations.append(invocation)
        failed = {f["itemIdentifier"] for f in invocation.result["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if failed:
            return invocations
    if batches:
        return invocations
    raise AssertionError(f"the replay queue never emptied: {[i.logs for i in invocations[:3]]}")


def reconcile_runner(*, wall: float | None = None) -> Callable[..., Invocation]:
    """Run reconcile slices as the scheduled state machine does, in simulated time (``wall``: the wall
    clock the run judges orphans and conflicts by; default the real one). Answers (result, what it printed)."""
    from governor.handlers.backfill import build_parts, handle_backfill
    from localaws.lambda_runtime import LocalLambdaContext, SimulatedClock, handler_output_to

    clock = SimulatedClock()

    def run(run_id: str, *, wall: float | None = wall, **extra: Any) -> Invocation:
        parts = build_parts(os.environ, clock=clock.monotonic, sleep=clock.sleep)
        if wall is not None:
            object.__setattr__(parts, "wall_clock", lambda: wall)
        out = io.StringIO()
        with handler_output_to(out):
            result = handle_backfill({"execution": run_id, "input": {"reconcile": True, **extra}},
                                     LocalLambdaContext("backfill", timeout_ms=900_000, clock=clock.monotonic), parts)
        return Invocation(result, out.getvalue())

    return run

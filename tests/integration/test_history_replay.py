"""`plan|apply --replay-hours N` (#20): the last N hours of groups that existed before the governor, sent once to a
same-account destination after a plan that says how much, through the real CLI against a deployed-stack model."""

from __future__ import annotations

import gzip
import io
import json
import time
from typing import Any

import boto3
import pytest

from cli.__main__ import main
from governor import replay
from governor.aws import ReplayWriter
from localaws.account import LocalAccount
from localaws.deployment import deploy_governor
from localaws.lambda_runtime import SimulatedClock

STACK = "LogGroupGovernor"
ROLE = "arn:aws:iam::123456789012:role/CWLtoKinesisRole"
HOUR_MS = 3_600_000


@pytest.fixture
def stream(account: LocalAccount, monkeypatch: pytest.MonkeyPatch) -> str:
    """A deployed governor shipping to a Kinesis stream; the CLI's sessions talk to the local account."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": account.region}.items():
        monkeypatch.setenv(key, value)
    import cli.__main__ as cli_main

    monkeypatch.setattr(cli_main.boto3, "Session", lambda profile_name=None, region_name=None: boto3.DEFAULT_SESSION)
    kinesis = account.client("kinesis")
    kinesis.create_stream(StreamName="team-logs", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="team-logs")["StreamDescriptionSummary"]["StreamARN"]
    assert account.logs_delivery_role(ROLE.rsplit("/", 1)[-1]) == ROLE  # CloudWatch Logs may assume it (localaws G19)
    deploy_governor(account, stack_name=STACK, config={"destinationArn": arn, "destinationRoleArn": ROLE}, create_trail=False)
    return arn


def _group_with_history(account: LocalAccount, name: str, hours_ago: list[float]) -> list[str]:
    """A group that existed before the governor, with an event written at each of ``hours_ago``."""
    account.logs.create_log_group(logGroupName=name)
    account.logs.create_log_stream(logGroupName=name, logStreamName="s")
    now_ms = int(time.time() * 1000)
    messages = [f"{name} event {i} written {h} h ago" for i, h in enumerate(hours_ago)]
    account.logs.put_log_events(logGroupName=name, logStreamName="s",
                                logEvents=[{"timestamp": now_ms - int(h * HOUR_MS), "message": m} for h, m in zip(hours_ago, messages)])
    return messages


def _cli(*argv: str) -> tuple[int, dict[str, Any], str]:
    clock = SimulatedClock()  # the run paces itself at the account's quotas: on simulated time here
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--json", "--progress", "never", "--out-file", "/dev/null"], stdout=out, stderr=err, clock=clock.monotonic, sleep=clock.sleep)
    return code, (json.loads(out.getvalue().splitlines()[-1]) if out.getvalue().strip() else {}), err.getvalue()


def _delivered(account: LocalAccount) -> list[str]:
    kinesis = account.client("kinesis")
    shard = kinesis.list_shards(StreamName="team-logs")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="team-logs", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    documents = [json.loads(gzip.decompress(r["Data"])) for r in kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]]
    return [e["message"] for d in documents if d["messageType"] == "DATA_MESSAGE" for e in d["logEvents"]]


def test_plan_says_what_apply_then_sends_once_and_only_the_hours_asked_for(account: LocalAccount, stream: str) -> None:
    orders = _group_with_history(account, "/aws/lambda/orders-api", [5, 3, 1])
    payments = _group_with_history(account, "/aws/lambda/payments", [30, 26, 2])  # two of them older than the 24 hours asked for
    wanted = [*orders, payments[2]]

    code, plan, _ = _cli("plan", "--replay-hours", "24", "--stack-name", STACK, "--detailed-exitcode")

    assert code == 6  # apply would send something
    assert plan["replay"] == {"hours": 24.0, "wouldSend": {"groups": 2, "events": 4, "bytes": sum(len(m.encode()) for m in wanted),
                                                              "truncated": 0}}
    assert _delivered(account) == []  # a plan sends nothing

    code, applied, _ = _cli("apply", "--replay-hours", "24", "--stack-name", STACK)

    assert code == 0 and applied["replay"]["sent"] == {"groups": 2, "events": 4, "truncated": 0}
    assert sorted(_delivered(account)) == sorted(wanted)
    account.logs.put_log_events(logGroupName="/aws/lambda/orders-api", logStreamName="s",
                                logEvents=[{"timestamp": int(time.time() * 1000), "message": "after the filter"}])

    code, again, _ = _cli("apply", "--replay-hours", "24", "--stack-name", STACK)

    assert code == 0 and again["replay"]["sent"] == {"groups": 0, "events": 0, "truncated": 0}  # recorded: nothing twice
    assert sorted(_delivered(account)) == sorted([*wanted, "after the filter"])  # the subscription's own, once


@pytest.mark.parametrize("argv, config, says", [
    (["apply", "--replay-hours", "24"], {}, "apply --replay-hours needs --stack-name"),
    (["plan", "--replay-hours", "0"], {}, "expected more than 0 and at most 144"),
    (["plan", "--replay-hours", "200"], {}, "expected more than 0 and at most 144"),
    (["plan", "--replay-hours", "24"], {"subscriptionMode": "account-policy"}, "needs per-group filters"),
    (["plan", "--replay-hours", "24"], {"destinationArn": "arn:aws:logs:eu-west-1:111111111111:destination:central",
                                        "destinationRoleArn": ""}, "another account's CloudWatch Logs destination"),
])
def test_what_a_history_replay_cannot_do_is_refused_before_any_call(account: LocalAccount, stream: str, argv: list[str],
                                                                     config: dict[str, str], says: str) -> None:
    overrides = [arg for key, value in config.items() for arg in ("-c", f"{key}={value}")]
    before = {k: v for k, v in account.calls.items() if k.startswith("logs.")}

    code, answer, _ = _cli(*argv, "-c", f"destinationArn={stream}", "-c", f"destinationRoleArn={ROLE}", *overrides)

    assert code == 2 and says in answer["error"]
    assert {k: v for k, v in account.calls.items() if k.startswith("logs.")} == before  # not one CloudWatch Logs call


def test_issue26_a_longer_history_after_a_shorter_one_sends_the_hours_between_once(account: LocalAccount, stream: str) -> None:
    """#26 item 5: `apply --replay-hours 24` after `--replay-hours 2` sends the older hours, not nothing; a third run
    sends nothing; plan counts what is left at each step."""
    messages = _group_with_history(account, "/aws/lambda/orders-api", [20, 10, 1.5, 1])

    code, _, _ = _cli("apply", "--replay-hours", "2", "--stack-name", STACK)
    assert code == 0 and _delivered(account) == messages[2:]

    code, plan, _ = _cli("plan", "--replay-hours", "24", "--stack-name", STACK)
    assert code == 0 and plan["replay"]["wouldSend"]["events"] == 2  # the two older events, not the four

    code, applied, _ = _cli("apply", "--replay-hours", "24", "--stack-name", STACK)
    assert code == 0 and applied["replay"]["sent"] == {"groups": 1, "events": 2, "truncated": 0}
    assert sorted(_delivered(account)) == sorted(messages)  # every event of the 24 hours, each once

    code, again, _ = _cli("apply", "--replay-hours", "24", "--stack-name", STACK)
    code_plan, plan_again, _ = _cli("plan", "--replay-hours", "24", "--stack-name", STACK)
    assert code == 0 and again["replay"]["sent"]["events"] == 0 and plan_again["replay"]["wouldSend"]["events"] == 0
    assert sorted(_delivered(account)) == sorted(messages)


def test_issue26_a_group_created_again_under_its_name_gets_its_own_history(account: LocalAccount, stream: str) -> None:
    """#26 item 1 (the CLI's path): the record of a deleted group's replay says nothing of the group created again
    under its name."""
    first = _group_with_history(account, "/aws/lambda/orders-api", [3])
    assert _cli("apply", "--replay-hours", "6", "--stack-name", STACK)[0] == 0 and _delivered(account) == first

    account.logs.delete_log_group(logGroupName="/aws/lambda/orders-api")
    time.sleep(0.002)  # the new group's creationTime is a later millisecond, on any machine
    second = _group_with_history(account, "/aws/lambda/orders-api", [2])
    code, applied, _ = _cli("apply", "--replay-hours", "6", "--stack-name", STACK)

    assert code == 0 and applied["replay"]["sent"]["events"] == 1
    assert _delivered(account) == [*first, *second]


def test_issue26_a_longer_history_after_an_interrupted_shorter_one_sends_the_rest_and_the_hours_between(
        account: LocalAccount, stream: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of #26: `--replay-hours 2` stops after one record (the stream went away); `plan --replay-hours 24` then counts
    what `apply --replay-hours 24` sends: the rest of the two hours and the older hours, each event once."""
    monkeypatch.setitem(replay.MAX_DOCUMENT_BYTES, replay.DestinationKind.KINESIS, 1_100)  # one event a record
    messages = _group_with_history(account, "/aws/lambda/orders-api", [20, 10, 1.5, 1.0, 0.5])
    deliver, sent = ReplayWriter.deliver, []

    def fail_on_the_second(self: ReplayWriter, *args: Any, **kwargs: Any) -> None:
        sent.append(1)
        if len(sent) == 2:
            raise ConnectionError("the stream's endpoint went away")
        deliver(self, *args, **kwargs)

    monkeypatch.setattr(ReplayWriter, "deliver", fail_on_the_second)
    _cli("apply", "--replay-hours", "2", "--stack-name", STACK)
    assert _delivered(account) == messages[2:3]
    monkeypatch.setattr(ReplayWriter, "deliver", deliver)

    code_plan, plan, _ = _cli("plan", "--replay-hours", "24", "--stack-name", STACK)
    code, applied, _ = _cli("apply", "--replay-hours", "24", "--stack-name", STACK)

    assert code_plan == 0 and plan["replay"]["wouldSend"]["events"] == 4
    assert code == 0 and applied["replay"]["sent"]["events"] == 4
    assert sorted(_delivered(account)) == sorted(messages)

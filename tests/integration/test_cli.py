"""`python -m cli plan|apply` against a moto server over HTTP, as a laptop would run it."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cli.__main__ import main
from governor.aws import LogsGateway
from localaws.lambda_runtime import SimulatedClock
from localaws.mix import EXCLUDED_PREFIX, FILTER_NAME, Mix, create_mix
from localaws.server import RunningServer, aws_like_server, scaled_quotas

GROUPS = 180


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with aws_like_server(quota_scale=20) as running:
        yield running


@pytest.fixture
def account(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RunningServer, Mix, str]]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": server.region}.items():
        monkeypatch.setenv(key, value)
    server.reset()
    server.middleware.quotas_enabled = False
    local = server.account()
    shipper = local.create_function("log-shipper")
    mix = create_mix(local, shipper, GROUPS)
    server.middleware.quotas_enabled = True
    server.middleware.set_quotas(scaled_quotas(20))
    server.middleware.served.clear()
    yield server, mix, shipper


def _run(server: RunningServer, shipper: str, *args: str, quota_scale: float = 40, **clock: Any) -> tuple[int, str]:
    """Standard error, then (--json) standard output: the decisions go to --out-file, the summary is the last line."""
    err, out = io.StringIO(), io.StringIO()
    code = main([*args, "--json", "--endpoint-url", server.endpoint_url, "--region", server.region, "--quota-scale", str(quota_scale),
                 "-c", f"destinationArn={shipper}", "-c", f'excludePrefixes=["{EXCLUDED_PREFIX}"]'], stderr=err, stdout=out, **clock)
    return code, err.getvalue() + out.getvalue()


def _summary(printed: str) -> dict:
    return json.loads(next(line for line in reversed(printed.splitlines()) if line.startswith('{"runId"')))


def test_plan_writes_every_decision_and_changes_nothing(account: tuple, tmp_path: Path) -> None:
    server, mix, shipper = account
    output = tmp_path / "plan.jsonl"

    code, stderr = _run(server, shipper, "plan", "--out-file", str(output), "--progress", "always")

    assert code == 0
    decisions = [json.loads(line) for line in output.read_text().splitlines()]
    assert Counter(d["logGroup"] for d in decisions) == {name: 2 for name in mix.kinds}
    assert server.middleware.served["PutSubscriptionFilter"] == server.middleware.served["PutRetentionPolicy"] == 0
    summary = _summary(stderr)
    assert summary["dryRun"] is True and summary["logGroups"] == GROUPS
    assert summary["byReason"]["subscription conflict"] == {"no-free-slot": len(mix.names("full"))}
    assert f"{GROUPS}/{GROUPS} groups" in stderr and "ETA" in stderr
    assert "counting log groups: 50 so far" in stderr  # the first pass says how far it got (a page is 50 groups)


def test_the_progress_line_is_drawn_only_on_a_terminal(account: tuple, tmp_path: Path) -> None:
    server, _, shipper = account

    code, stderr = _run(server, shipper, "plan", "--out-file", str(tmp_path / "plan.jsonl"))

    assert code == 0 and "groups ·" not in stderr and "counting" not in stderr and _summary(stderr)["logGroups"] == GROUPS


def test_apply_as_csv_then_a_second_apply_writes_nothing(account: tuple, tmp_path: Path) -> None:
    server, mix, shipper = account

    code, stderr = _run(server, shipper, "apply", "--format", "csv", "--out-file", str(tmp_path / "apply.csv"))

    assert code == 0
    rows = list(csv.DictReader((tmp_path / "apply.csv").open()))
    assert {r["action"] for r in rows if r["logGroup"] in mix.names("plain")} == {"subscribe", "set-retention"}
    assert all(r["applied"] == "true" for r in rows if r["action"] in ("subscribe", "set-retention"))
    assert server.middleware.served["PutSubscriptionFilter"] == len(mix.names("plain"))
    server.middleware.served.clear()

    code, stderr = _run(server, shipper, "apply", "--no-count", "--no-progress", "--out-file", str(tmp_path / "again.jsonl"))

    assert code == 0
    assert server.middleware.served["PutSubscriptionFilter"] == server.middleware.served["PutRetentionPolicy"] == 0


def test_remove_filters_takes_off_only_the_governors_filters(account: tuple, tmp_path: Path) -> None:
    server, mix, shipper = account
    logs = server.account().logs

    code, stderr = _run(server, shipper, "remove-filters", "--no-progress", "--out-file", str(tmp_path / "removed.jsonl"))

    assert code == 0
    removed = [json.loads(line) for line in (tmp_path / "removed.jsonl").read_text().splitlines()]
    assert {r["logGroup"] for r in removed if r["action"] == "remove-filter"} == set(mix.names("compliant"))
    assert server.middleware.served["DeleteSubscriptionFilter"] == len(mix.names("compliant"))
    assert server.middleware.served["PutSubscriptionFilter"] == server.middleware.served["PutRetentionPolicy"] == 0
    for name in mix.names("compliant") + mix.names("full"):
        names = {f["filterName"] for f in logs.describe_subscription_filters(logGroupName=name)["subscriptionFilters"]}
        assert FILTER_NAME not in names and (names == {"vendor-a", "vendor-b"} if name in mix.names("full") else names == set())


def test_throttling_is_absorbed_and_nothing_is_lost(account: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another tool takes part of a quota: the server throttles every fourth PutSubscriptionFilter,
    whatever the machine's speed. botocore retries, the pacer gives way, nothing is lost."""
    server, mix, shipper = account
    server.middleware.throttle_every = {"PutSubscriptionFilter": 4}
    clock = SimulatedClock()  # the pacer's waits and botocore's backoff pass on it, not in real time
    monkeypatch.setattr("botocore.endpoint.time", SimpleNamespace(sleep=clock.sleep))

    code, stderr = _run(server, shipper, "apply", "--no-progress", "--out-file", str(tmp_path / "d.jsonl"), clock=clock.monotonic, sleep=clock.sleep)

    assert code == 0
    throttled, served = server.middleware.throttled["PutSubscriptionFilter"], server.middleware.served["PutSubscriptionFilter"]
    assert throttled == (throttled + served) // 4 and throttled > 0
    assert served == len(mix.names("plain"))  # every filter put once: retries are not new writes
    assert _summary(stderr)["errorCount"] == 0
    assert clock.now > 0  # the pacer gave way (on the simulated clock)
    local = server.account()
    for name in mix.names("plain"):
        assert local.snapshot(name)["filters"] == {FILTER_NAME: shipper}


def test_an_interrupted_apply_resumes_from_its_checkpoint(account: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server, mix, shipper = account
    output, checkpoint = tmp_path / "apply.jsonl", tmp_path / "checkpoint.json"
    pages_asked = Counter()
    read_page = LogsGateway.page_log_groups

    def ctrl_c_on_the_third_page(self: LogsGateway, *args: Any, **kwargs: Any) -> Any:
        # Ctrl-C while the third page is read, raised where Python raises it (in the main thread, in the call):
        # two pages are checkpointed. A real SIGINT from the server's thread could land in a finalizer, which
        # Python reports and swallows (it did once in CI).
        pages_asked["n"] += 1
        if pages_asked["n"] == 3:
            raise KeyboardInterrupt
        return read_page(self, *args, **kwargs)

    monkeypatch.setattr(LogsGateway, "page_log_groups", ctrl_c_on_the_third_page)
    code, stderr = _run(server, shipper, "apply", "--no-progress", "--no-count", "--out-file", str(output), "--checkpoint", str(checkpoint))
    monkeypatch.setattr(LogsGateway, "page_log_groups", read_page)

    assert code == 130 and "resume with the same command" in stderr
    assert json.loads(checkpoint.read_text())["pages"] == 2

    code, stderr = _run(server, shipper, "apply", "--no-progress", "--out-file", str(output), "--checkpoint", str(checkpoint))

    assert code == 0
    decisions = [json.loads(line) for line in output.read_text().splitlines()]
    assert Counter((d["logGroup"], d["aspect"]) for d in decisions) == {(n, a): 1 for n in mix.kinds for a in ("subscription", "retention")}
    assert _summary(stderr)["sessions"] == 2


def test_bad_configuration_exits_2_with_a_message(account: tuple) -> None:
    server, _, shipper = account
    err = io.StringIO()

    code = main(["plan", "--endpoint-url", server.endpoint_url, "-c", "defaultRetentionDays=45", "-c", f"destinationArn={shipper}"], stderr=err)

    assert code == 2 and "defaultRetentionDays: 45 is not a retention" in err.getvalue()


def test_the_cli_needs_a_destination(account: tuple) -> None:
    server, _, _ = account
    err = io.StringIO()

    code = main(["plan", "--endpoint-url", server.endpoint_url], stderr=err)

    assert code == 2 and "DestinationArn" in err.getvalue()


def test_redrive_leaves_what_it_could_not_replay_in_the_queue(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the wire to the real Invoke API. moto cannot run a function without Docker, so the invoke
    fails here: the message must stay in the queue and the command must say so."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    server.reset()
    local = server.account()
    local.create_function("ship-logs")
    sqs = local.client("sqs")
    queue = sqs.create_queue(QueueName="ship-logs-dlq", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"awslogs": {"data": "H4sI"}}))
    err = io.StringIO()

    code = main(["redrive", "--endpoint-url", server.endpoint_url, "--region", server.region, "--queue-url", queue,
                 "--function-name", "ship-logs"], stderr=err)

    report = json.loads(err.getvalue())
    assert code == 1 and report["replayed"] == 0 and report["failed"]
    assert int(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"]) == 1


def test_a_missing_destination_stops_the_run_with_a_message(account: tuple, tmp_path: Path) -> None:
    server, _, _ = account
    err = io.StringIO()
    gone = "arn:aws:logs:eu-west-1:123456789012:destination:deleted-central"

    code = main(["apply", "--no-progress", "--no-count", "--endpoint-url", server.endpoint_url, "--region", server.region,
                 "--quota-scale", "40", "-c", f"destinationArn={gone}", "--out-file", str(tmp_path / "d.jsonl")], stderr=err)

    assert code == 1 and "the destination refused a subscription" in err.getvalue() and "deleted-central" in err.getvalue()


def test_remove_filters_as_the_readme_writes_it_reads_the_destination_from_the_stack(account: tuple, tmp_path: Path) -> None:
    """The shipped cdk.json names no destination (the built-in one's ARN exists only once deployed):
    --stack-name reads the DestinationArn output, as the uninstall in the README runs it (#19)."""
    server, mix, shipper = account
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"DestinationArn": {"Value": shipper}, "DestinationRoleArn": {"Value": "-"}}}
    server.account().client("cloudformation").create_stack(StackName="LogGroupGovernor", TemplateBody=json.dumps(template))
    err = io.StringIO()

    code = main(["remove-filters", "--stack-name", "LogGroupGovernor", "--region", server.region, "--endpoint-url", server.endpoint_url,
                 "--checkpoint", str(tmp_path / "uninstall.json"), "--quota-scale", "40", "--no-progress"], stdout=io.StringIO(), stderr=err)

    assert code == 0, err.getvalue()
    assert server.middleware.served["DeleteSubscriptionFilter"] == len(mix.names("compliant"))

"""The CLI as an operator meets it: every failure one line with its fix and its own exit code, as
docs/troubleshooting.md's table says (each row provoked here, against a moto server over HTTP);
--json, --debug, --version, plan --detailed-exitcode, and checkpoints that know whom they belong to."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli import __version__
from cli.__main__ import main
from cli.errors import Exit
from localaws.server import RunningServer, aws_like_server

REPO = Path(__file__).resolve().parents[2]
TROUBLESHOOTING = REPO / "docs" / "troubleshooting.md"
SHIPPER = "arn:aws:lambda:eu-west-1:123456789012:function:log-shipper"


def documented_errors() -> dict[str, tuple[int, str, str]]:
    """docs/troubleshooting.md's CLI error table: failure -> (exit code, what it prints, the fix)."""
    text = TROUBLESHOOTING.read_text()
    table = text[text.index("| failure | code | prints | fix |"):].split("\n\n")[0].splitlines()[2:]
    rows = {}
    for row in table:
        failure, code, prints, fix = (cell.strip() for cell in row.strip().strip("|").split(" | "))
        rows[failure] = (int(code), _code_span(prints), _code_span(fix))
    return rows


def _code_span(cell: str) -> str:
    match = re.fullmatch(r"``\s(.*)\s``", cell.strip())
    assert match, f"expected a ``code span`` cell, got {cell!r}"
    return match[1]


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with aws_like_server() as running:
        yield running


@pytest.fixture
def aws(server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunningServer:
    """Test credentials and nothing else: no profile files, no instance metadata."""
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": server.region,
                       "AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty), "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    server.reset()
    server.account().create_function("log-shipper")
    return server


def cli(server: RunningServer, *args: str, endpoint: bool = True) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*args, *(["--endpoint-url", server.endpoint_url] if endpoint else [])], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _stack(server: RunningServer, outputs: dict[str, str]) -> None:
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
    server.account().client("cloudformation").create_stack(StackName="LogGroupGovernor", TemplateBody=json.dumps(template))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _refused(code: str, message: str) -> Callable[[RunningServer, pytest.MonkeyPatch, Path], tuple[int, str, str]]:
    def provoke(server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, str, str]:
        server.middleware.refuse["DescribeLogGroups"] = (code, message)
        return cli(server, "plan", "-c", f"destinationArn={SHIPPER}", "--no-progress")
    return provoke


def _no_credentials(server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, str, str]:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    return cli(server, "status", "--bucket", "reports")


def _no_region(server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, str, str]:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    return cli(server, "status", "--bucket", "reports")


def _checkpoint_of_another_run(server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, str, str]:
    checkpoint = tmp_path / "run.json"
    first = cli(server, "plan", "-c", f"destinationArn={SHIPPER}", "--checkpoint", str(checkpoint), "--no-progress")
    assert first[0] == Exit.OK, first
    other = SHIPPER.replace("log-shipper", "other-shipper")
    return cli(server, "plan", "-c", f"destinationArn={other}", "--checkpoint", str(checkpoint), "--no-progress")


def _output_missing(server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, str, str]:
    _stack(server, {"DestinationArn": SHIPPER})
    return cli(server, "status", "--stack-name", "LogGroupGovernor")


def _no_coverage_yet(server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, str, str]:
    server.account().client("s3").create_bucket(Bucket="reports", CreateBucketConfiguration={"LocationConstraint": server.region})
    return cli(server, "status", "--bucket", "reports")


def _destination_refused(server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, str, str]:
    server.account().create_log_group("/aws/lambda/orders-api")
    gone = "arn:aws:logs:eu-west-1:123456789012:destination:deleted-central"
    return cli(server, "apply", "--no-progress", "--no-count", "-c", f"destinationArn={gone}", "--out-file", str(tmp_path / "d.jsonl"))


PROVOKE: dict[str, Callable[[RunningServer, pytest.MonkeyPatch, Path], tuple[int, str, str]]] = {
    "no-credentials": _no_credentials,
    "unknown-profile": lambda server, mp, tmp: cli(server, "status", "--bucket", "reports", "--profile", "nope"),
    "credentials-refused": _refused("UnrecognizedClientException", "The security token included in the request is invalid."),
    "credentials-expired": _refused("ExpiredTokenException", "The security token included in the request is expired"),
    "access-denied": _refused("AccessDeniedException", "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: logs:DescribeLogGroups"),
    "no-region": _no_region,
    "unknown-region": lambda server, mp, tmp: cli(server, "plan", "--region", "eu-wset-1", "-c", f"destinationArn={SHIPPER}"),
    "bad-configuration": lambda server, mp, tmp: cli(server, "plan", "-c", "defaultRetentionDays=45", "-c", f"destinationArn={SHIPPER}"),
    "no-destination": lambda server, mp, tmp: cli(server, "plan"),
    "checkpoint-of-another-run": _checkpoint_of_another_run,
    "stack-not-found": lambda server, mp, tmp: cli(server, "remove-filters", "--stack-name", "Missing", "--checkpoint", str(tmp / "u.json")),
    "stack-output-missing": _output_missing,
    "bucket-not-found": lambda server, mp, tmp: cli(server, "status", "--bucket", "no-such-reports-bucket"),
    "no-coverage-yet": _no_coverage_yet,
    "endpoint-unreachable": lambda server, mp, tmp: cli(server, "status", "--bucket", "reports", "--endpoint-url",
                                                        f"http://127.0.0.1:{_closed_port()}", endpoint=False),
    "destination-refused": _destination_refused,
}


def test_every_documented_failure_is_provoked_here() -> None:
    assert set(documented_errors()) == set(PROVOKE)


@pytest.mark.parametrize("failure", sorted(PROVOKE))
def test_each_failure_prints_what_the_troubleshooting_table_says(failure: str, aws: RunningServer, monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    code, prints, fix = documented_errors()[failure]

    rc, _, stderr = PROVOKE[failure](aws, monkeypatch, tmp_path)

    assert rc == code, stderr
    line = next(line for line in stderr.splitlines() if line.startswith("log-group-governor: "))
    assert prints in line and line.endswith(f"; fix: {fix}"), line
    assert "Traceback" not in stderr  # one line; --debug shows the traceback


def test_json_prints_the_error_on_standard_output_and_debug_the_traceback(aws: RunningServer) -> None:
    rc, stdout, stderr = cli(aws, "status", "--bucket", "no-such-reports-bucket", "--json", "--debug")

    assert rc == Exit.NOT_FOUND
    assert json.loads(stdout) == {"error": "not found: GetObject answered NoSuchBucket (The specified bucket does not exist)",
                                  "fix": "check the name and --region (the stack's outputs name it: pass --stack-name)", "exitCode": 4}
    assert "Traceback (most recent call last)" in stderr and "NoSuchBucket" in stderr


def test_plan_detailed_exitcode_says_whether_apply_would_change_anything(aws: RunningServer) -> None:
    local = aws.account()
    local.create_log_group("/aws/lambda/orders-api")
    args = ("-c", f"destinationArn={SHIPPER}", "--no-progress", "--quota-scale", "40")

    pending, stdout, _ = cli(aws, "plan", "--detailed-exitcode", "--json", *args)
    assert pending == Exit.CHANGES_PENDING
    summary = json.loads(stdout.splitlines()[-1])  # after the decisions, as JSON lines
    assert summary["changesPending"] is True and summary["exitCode"] == 6 and summary["byAction"]["subscription subscribe"] == 1

    assert cli(aws, "apply", *args, "--out-file", "/dev/null")[0] == Exit.OK
    settled, stdout, _ = cli(aws, "plan", "--detailed-exitcode", "--json", *args)
    assert settled == Exit.OK and json.loads(stdout.splitlines()[-1])["changesPending"] is False
    assert cli(aws, "plan", *args)[0] == Exit.OK  # without the flag, changes pending is still success


def test_a_checkpoint_records_the_account_region_and_destination_it_belongs_to(aws: RunningServer, tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.json"

    assert cli(aws, "plan", "-c", f"destinationArn={SHIPPER}", "--checkpoint", str(checkpoint), "--no-progress")[0] == Exit.OK

    assert json.loads(checkpoint.read_text())["identity"] == {"account": "123456789012", "region": aws.region, "destination": SHIPPER}
    again, _, stderr = cli(aws, "plan", "-c", f"destinationArn={SHIPPER}", "--checkpoint", str(checkpoint), "--no-progress")
    assert again == Exit.OK and "is finished; remove the checkpoint to start again" in stderr


def test_redrive_reads_the_queue_and_the_function_from_the_stack(aws: RunningServer) -> None:
    local = aws.account()
    local.create_function("ship-logs")
    queue = local.client("sqs").create_queue(QueueName="ship-logs-dlq")["QueueUrl"]
    _stack(aws, {"ShipLogsDeadLetterQueueUrl": queue, "ShipLogsFunctionName": "ship-logs"})

    rc, stdout, _ = cli(aws, "redrive", "--stack-name", "LogGroupGovernor", "--json")

    assert rc == Exit.OK and json.loads(stdout) == {"replayed": 0, "failed": [], "leftCorrupt": 0, "leftForNextRedrive": 0, "exitCode": 0}


def test_version_and_the_console_entry_point() -> None:
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        sys.stdout, saved = out, sys.stdout
        try:
            main(["--version"])
        finally:
            sys.stdout = saved
    assert exited.value.code == 0 and out.getvalue().strip() == f"log-group-governor {__version__}"
    script = Path(sys.executable).parent / "log-group-governor"
    if not script.exists():
        pytest.skip("the console script is installed by `make test` / `make demo` (pip install -e .)")
    answer = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert answer.stdout.strip() == f"log-group-governor {__version__}"

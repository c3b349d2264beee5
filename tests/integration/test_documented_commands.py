"""Every command in README.md and docs/*.md, as written (#19): extracted from the Markdown's ``sh`` and
``bash`` blocks, each run the way it can be run here.

- ``log-group-governor ...`` / ``python -m cli ...``: the CLI's real entry point, in order, against a
  local account where the stack is deployed (localaws.deployment), with the docs' region and profile;
  each must exit 0.
- ``cdk deploy|synth`` (the per-account app or the organization app, -a): the app's configuration
  check on cdk.json plus the command's -c keys (no error, no look-alike key), and every stack selector
  names stacks that app builds (`make synth` synthesizes both apps in full).
- ``cdk bootstrap``: its environment is ``aws://<12 digits>/<region>``.
- ``make <target>``: ``make -n`` of the target succeeds (the targets themselves run in CI).
- ``aws <service> <operation>``: botocore's model has that service and operation.
- ``curl``: run, against a local server standing in for the endpoint, with the file it sends.

A command of any other kind fails the test: documenting a new kind means teaching this test to run it.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest

import app
import org_app
from cli.__main__ import main
from localaws.account import LocalAccount
from localaws.deployment import LocalDeployment, deploy_governor
from localaws.lambda_runtime import SimulatedClock
from shared.config import every_error, suspicious_keys
from stacks.archive import ARCHIVE
from stacks.rollout import ROLLOUT
from stacks.settings import GOVERNOR, DeploymentSettings

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
STACK = "LogGroupGovernor"
ARCHIVE_STACK = "LogGroupGovernorArchive-eu-west-1"
FLEET_TABLE = "log-group-governor-fleet"
#: Lines that set up a shell, not commands of the product.
SETUP = (". .venv/bin/activate", "cd ", "git clone ")


def documented_commands() -> list[tuple[str, str]]:
    """(file, command) for every command line of every sh/bash block, continuation lines joined, comments dropped."""
    found = []
    for path in DOCS:
        for block in re.finditer(r"^[ \t]*```(?:sh|bash)\n(.*?)^[ \t]*```", path.read_text(), re.S | re.M):
            text = re.sub(r"\\\n\s*", " ", block.group(1))
            for line in text.splitlines():
                command = _strip_comment(line.strip())
                if command and not command.startswith(SETUP):
                    found.append((path.relative_to(REPO).as_posix(), command))
    return found


def _strip_comment(line: str) -> str:
    """The line without its trailing ``# comment`` (a # inside quotes stays)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


COMMANDS = documented_commands()
CLI = [(f, c) for f, c in COMMANDS if c.startswith(("log-group-governor ", "python -m cli "))]
OTHERS = [(f, c) for f, c in COMMANDS if (f, c) not in CLI]


def test_the_docs_document_commands_and_every_kind_is_known() -> None:
    assert len(CLI) >= 10 and len(OTHERS) >= 8
    kinds = {_kind(c) for _, c in OTHERS}
    assert kinds <= {"cdk", "make", "aws", "curl"}, kinds


def _kind(command: str) -> str:
    first = shlex.split(command)[0]
    if first.endswith("/cdk") or first in ("cdk", "npx"):
        return "cdk"
    if command.startswith(("SM=$(aws ", "aws ")):
        return "aws"
    return first


# --- the CLI, in order, against a deployed stack ------------------------------------------------------

@pytest.fixture
def deployed(account: LocalAccount, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalDeployment]:
    """The stack as `cdk deploy` leaves it, its outputs for every command the docs run, a profile `prod`,
    and the archive's stack with a member that reported."""
    config_file = tmp_path / "aws-config"
    config_file.write_text("[profile prod]\nregion = eu-west-1\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    monkeypatch.chdir(tmp_path)  # the commands' relative files (checkpoints, outputs) land here
    import cli.__main__ as cli_main

    def session(profile_name: str | None = None, region_name: str | None = None) -> boto3.Session:
        if profile_name:  # the profile must exist as the docs name it; the calls then go to the local account
            botocore.session.Session(profile=profile_name).get_scoped_config()
        assert region_name in (None, account.region), region_name
        return boto3.DEFAULT_SESSION  # the local account's session, with localaws's fillers

    monkeypatch.setattr(cli_main.boto3, "Session", session)
    shipper = account.create_function("log-shipper")
    for name in ("/aws/lambda/orders-api", "/aws/lambda/payments", "/ecs/checkout"):
        account.create_log_group(name)
    s3 = account.client("s3")
    s3.create_bucket(Bucket="governor-reports", CreateBucketConfiguration={"LocationConstraint": account.region})
    account.create_function("ship-logs")
    queue = account.client("sqs").create_queue(QueueName="ship-logs-dlq")["QueueUrl"]
    deployment = deploy_governor(account, stack_name=STACK, config={"destinationArn": shipper, "defaultRetentionDays": 30},
                                 extra_outputs={"ReportsBucket": "governor-reports", "ShipLogsDeadLetterQueueUrl": queue,
                                                "ShipLogsFunctionName": "ship-logs"})
    deployment.confirm_alarm_email()
    _archive_with_a_reporting_member(account)
    with deployment.running():
        yield deployment


def _archive_with_a_reporting_member(account: LocalAccount) -> None:
    from fleet.handler import handle_fleet_event
    from fleet.store import FleetTable

    dynamodb = account.client("dynamodb")
    dynamodb.create_table(TableName=FLEET_TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"FleetTableName": {"Value": FLEET_TABLE}}}
    account.client("cloudformation").create_stack(StackName=ARCHIVE_STACK, TemplateBody=json.dumps(template))
    report = {"runId": "nightly", "dryRun": False, "reconcile": True, "finishedAt": "2026-12-04T03:00:00Z", "logGroups": 3, "governed": 3,
              "compliant": 3, "compliantPercent": 100.0, "repairedByThisRun": 0, "excluded": {}, "conflicts": {}, "unsupportedClass": 0,
              "orphans": 0, "errors": 0}
    event = {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "log-group-governor coverage",
             "source": "log-group-governor", "account": "222222222222", "time": "2026-12-04T03:00:00Z", "region": "eu-west-1",
             "resources": [], "detail": report}
    import time

    handle_fleet_event(event, FleetTable(FLEET_TABLE, dynamodb), now=time.time())


def _argv(command: str) -> list[str]:
    words = shlex.split(command)
    return words[1:] if words[0] == "log-group-governor" else words[3:]


def test_every_documented_cli_command_runs_as_written(deployed: LocalDeployment, account: LocalAccount) -> None:
    clock = SimulatedClock()  # the runs pace themselves at the account's quotas: on simulated time here
    ran = []
    for path, command in CLI:
        argv = _argv(command)
        if argv[0] == "status":  # what a finished reconcile leaves: the coverage of the last full run
            _publish_coverage(account)
        out, err = io.StringIO(), io.StringIO()
        code = main(argv, stdout=out, stderr=err, clock=clock.monotonic, sleep=clock.sleep)
        assert code == 0, f"{path}: `{command}` exited {code}:\n{err.getvalue()[-2000:]}\n{out.getvalue()[-2000:]}"
        ran.append(argv[0])
    assert {"selftest", "plan", "apply", "status", "remove-filters", "migrate", "fleet-status", "redrive"} <= set(ran)


def _publish_coverage(account: LocalAccount) -> None:
    out = io.StringIO()
    clock = SimulatedClock()
    assert main(["apply", "--stack-name", STACK, "--region", account.region, "--json", "--no-count"], stdout=out, stderr=io.StringIO(),
                clock=clock.monotonic, sleep=clock.sleep) == 0
    summary = json.loads(out.getvalue().splitlines()[-1])  # --json: the decisions, then the summary, as JSON lines
    latest = {"runId": summary["runId"], "dryRun": False, "reconcile": True, "finishedAt": "2026-12-04T03:00:00Z", **summary["coverage"]}
    account.client("s3").put_object(Bucket="governor-reports", Key="coverage/latest.json", Body=json.dumps(latest).encode())


# --- everything else ----------------------------------------------------------------------------------

APPS = {"app.py": (DeploymentSettings.from_context, (GOVERNOR,), [app.STACK_NAME]),
        "org_app.py": (org_app.check, (ARCHIVE, ROLLOUT, GOVERNOR),
                       [f"{org_app.ARCHIVE_STACK_NAME}-{{region}}", f"{org_app.ASSETS_STACK_NAME}-{{region}}", org_app.ROLLOUT_STACK_NAME])}


def _run_cdk(command: str) -> None:
    words = shlex.split(command)
    words = words[1:] if words[0] == "npx" else words
    app_file = "org_app.py" if any("org_app.py" in w for w in words) else "app.py"
    action = next(w for w in words[1:] if not w.startswith("-") and "python" not in w)
    if action == "bootstrap":
        environment = words[words.index("bootstrap") + 1]
        assert re.fullmatch(r"aws://\d{12}/[a-z]{2}(-[a-z]+)+-\d", environment), environment
        return
    assert action in ("deploy", "synth", "diff", "destroy"), action
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    selectors = []
    rest = words[words.index(action) + 1:]
    for i, word in enumerate(rest):
        if word in ("-c", "--context"):
            key, _, value = rest[i + 1].partition("=")
            context[key] = value
        elif not word.startswith("-") and (i == 0 or rest[i - 1] not in ("-c", "--context")):
            selectors.append(word)
    check, apps, stack_patterns = APPS[app_file]
    assert every_error(check, context) == [], f"`{command}`: the configuration is refused"
    assert suspicious_keys(context, apps) == [], f"`{command}`: a key looks wrong"
    regions = json.loads(context.get("archive:regions", "[]")) if isinstance(context.get("archive:regions"), str) else ["eu-west-1"]
    stacks = [p.format(region=r) for p in stack_patterns for r in (regions or ["eu-west-1"])]
    for selector in selectors:
        assert fnmatch.filter(stacks, selector), f"`{command}`: {selector!r} names no stack of {app_file} ({stacks})"


def _run_make(command: str) -> None:
    for target in shlex.split(command)[1:]:
        dry = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0, f"`{command}`: {dry.stderr}"


def _run_aws(command: str) -> None:
    models = botocore.session.get_session()
    for service, operation in re.findall(r"\baws ([a-z0-9-]+) ([a-z0-9-]+)", command):
        model = models.get_service_model(service)
        assert "".join(part.capitalize() for part in operation.split("-")) in model.operation_names, f"`{command}`: {operation}"


class _Endpoint(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_PUT(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"acknowledged": true}')

    def log_message(self, *args: Any) -> None:
        pass


def _run_curl(command: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "ENDPOINT": f"http://127.0.0.1:{server.server_port}"}
        answer = subprocess.run(["bash", "-c", command + " --fail --silent --show-error"], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=30)
        assert answer.returncode == 0, answer.stderr
        path, content_type, body = _Endpoint.received[-1]
        sent = re.search(r"--data @(\S+)", command)[1]
        assert content_type == "application/json" and json.loads(body) == json.loads((REPO / sent).read_text()), path
    finally:
        server.shutdown()


@pytest.mark.parametrize(("path", "command"), OTHERS, ids=[f"{p}: {c[:60]}" for p, c in OTHERS])
def test_every_other_documented_command_runs_or_checks_as_written(path: str, command: str) -> None:
    {"cdk": _run_cdk, "make": _run_make, "aws": _run_aws, "curl": _run_curl}[_kind(command)](command)

"""#30, items 3, 5 and 6 as a user meets them, through the real entry point: `plan` for people by default (and
--json for machines, --out-file for the decisions, --output deprecated), quiet when piped into `head`, a mistyped
region or flag named with the nearest valid one, help without ledger ids, the README's deploy steps as written,
and a demo without Docker noise."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli.__main__ import main
from cli.errors import Exit
from localaws.account import LocalAccount
from localaws.deployment import deploy_governor
from localaws.mix import create_mix
from localaws.server import RunningServer, aws_like_server

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "log-group-governor"
GROUPS = 120


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with aws_like_server(quota_scale=20) as running:
        yield running


@pytest.fixture
def aws(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> tuple[RunningServer, str]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": server.region}.items():
        monkeypatch.setenv(key, value)
    server.reset()
    server.middleware.quotas_enabled = False
    local = server.account()
    shipper = local.create_function("log-shipper")
    create_mix(local, shipper, GROUPS)
    return server, shipper


def _argv(server: RunningServer, shipper: str, *args: str) -> list[str]:
    return [*args, "--endpoint-url", server.endpoint_url, "--region", server.region, "--quota-scale", "40", "--no-progress",
            "-c", f"destinationArn={shipper}"]


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# --- item 5: plan for people, --json for machines ---------------------------------------------------------

def test_plan_prints_a_human_summary_and_a_table_of_the_changes_largest_first(aws: tuple[RunningServer, str]) -> None:
    code, out, err = _cli(_argv(*aws, "plan"))

    assert code == 0, err
    head, *rest = out.splitlines()
    counts = re.fullmatch(rf"plan: {GROUPS} log groups: (\d+) to change, (\d+) unchanged.*nothing was written", head)
    assert counts and int(counts[1]) + int(counts[2]) == GROUPS and int(counts[1]) > 0, head
    table = [line for line in rest if re.search(r"\)\s+[\d,]+$", line)]
    assert table and [int(line.split()[-1].replace(",", "")) for line in table] == sorted(
        (int(line.split()[-1].replace(",", "")) for line in table), reverse=True)
    assert any("subscribe (not-subscribed)" in line for line in table)
    assert "{" not in out and len(out.splitlines()) < 20  # no JSON, no 68-line summary


def test_json_prints_every_decision_then_the_summary_as_json_lines(aws: tuple[RunningServer, str]) -> None:
    code, out, _ = _cli(_argv(*aws, "plan", "--json"))

    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and {d["logGroup"] for d in lines[:-1]} and all("action" in d for d in lines[:-1])
    assert lines[-1]["logGroups"] == GROUPS and lines[-1]["changesPending"] is True and lines[-1]["exitCode"] == 0


def test_out_file_takes_the_decisions_and_output_still_works_with_a_warning(aws: tuple[RunningServer, str], tmp_path: Path) -> None:
    code, out, err = _cli(_argv(*aws, "plan", "--out-file", str(tmp_path / "new.jsonl")))
    assert code == 0 and "warning" not in err and f"every decision: {tmp_path / 'new.jsonl'}" in out
    assert len((tmp_path / "new.jsonl").read_text().splitlines()) == 2 * GROUPS

    code, out, err = _cli(_argv(*aws, "plan", "--output", str(tmp_path / "old.jsonl")))
    assert code == 0 and "--output FILE is deprecated" in err and "pass --out-file FILE" in err
    assert (tmp_path / "old.jsonl").read_text() == (tmp_path / "new.jsonl").read_text()


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is installed by `make test` / `make demo` (pip install -e .)")
def test_piping_into_head_is_quiet_and_exits_0(aws: tuple[RunningServer, str]) -> None:
    server, shipper = aws
    command = " ".join(shlex.quote(word) for word in [str(SCRIPT), *_argv(server, shipper, "plan", "--json")])
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,20"}

    answer = subprocess.run(["bash", "-c", f"set -o pipefail; {command} | head -1"], capture_output=True, text=True, timeout=300, env=env)

    assert answer.returncode == 0, answer.stderr
    assert "Traceback" not in answer.stderr and "BrokenPipe" not in answer.stderr, answer.stderr
    assert json.loads(answer.stdout)["logGroup"]


# --- item 6: messages -------------------------------------------------------------------------------------

def test_a_mistyped_region_is_an_unknown_region_naming_the_nearest(aws: tuple[RunningServer, str]) -> None:
    server, shipper = aws
    code, _, err = _cli(["plan", "--endpoint-url", server.endpoint_url, "--region", "eu-wset-1", "-c", f"destinationArn={shipper}"])

    assert code == Exit.BAD_INPUT, err
    assert "unknown region eu-wset-1 (the nearest is eu-west-1)" in err and "cannot reach" not in err and "<html" not in err.lower()


def test_a_mistyped_flag_names_the_nearest_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--regoin", "eu-west-1"])

    assert exited.value.code == 2
    assert "unrecognized arguments: --regoin eu-west-1 (--regoin: did you mean --region?)" in capsys.readouterr().err


def test_a_mistyped_command_names_the_nearest_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plna"])

    assert exited.value.code == 2 and "(did you mean plan?)" in capsys.readouterr().err


def test_help_lists_rules_and_selftest_help_cites_no_ledger_ids(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "|rules|" in top.split("\n\n")[1]  # the description's list of commands, not only the usage line

    with pytest.raises(SystemExit):
        main(["selftest", "--help"])
    selftest_help = capsys.readouterr().out
    assert not re.search(r"\b[DOP]\d+\b", selftest_help), re.findall(r"\b[DOP]\d+\b", selftest_help)
    assert "a trail is what" in selftest_help


def test_the_demo_stores_a_groups_data_without_running_docker(account: LocalAccount, capfd: pytest.CaptureFixture[str],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """The demo's native-retention part fills a subscribed group: moto would deliver it to the Lambda in Docker."""
    from demo.native import _holds_data

    shipper = account.create_function("log-shipper")
    account.create_log_group("/aws/lambda/prod-ledger", filters=[("log-group-governor", shipper)])

    _holds_data(account, "/aws/lambda/prod-ledger")

    printed = capfd.readouterr()
    assert "docker" not in (printed.out + printed.err + caplog.text).lower()
    assert account.logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/prod-ledger")["logGroups"][0]["storedBytes"] >= 0


# --- item 3: the README's five deploy steps, as written -------------------------------------------------

def _deploy_steps() -> list[str]:
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("## Deploy to an account in five steps"):]
    block = block[block.index("```sh\n") + 6:]
    return [line.split(" #")[0].strip() for line in block[:block.index("```")].splitlines() if line.strip()]


def test_the_readme_puts_the_cli_on_path_before_its_first_use_in_a_new_shell() -> None:
    steps = _deploy_steps()
    first_cli = next(i for i, step in enumerate(steps) if step.startswith("log-group-governor "))
    assert ". .venv/bin/activate" in steps[:first_cli]
    if not SCRIPT.exists() or Path(sys.executable).parent.parent != REPO / ".venv":
        pytest.skip("the repository's .venv is installed by make")
    env = {"HOME": os.environ.get("HOME", "/tmp"), "PATH": "/usr/bin:/bin"}  # a new shell: no venv on PATH
    answer = subprocess.run(["bash", "-c", " && ".join([". .venv/bin/activate", "log-group-governor --version"])], cwd=REPO,
                            capture_output=True, text=True, timeout=120, env=env)
    assert answer.returncode == 0 and answer.stdout.startswith("log-group-governor "), answer.stderr[-2000:]


def test_step_3s_keys_give_step_4s_selftest_a_confirmed_alarm_subscription(account: LocalAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _deploy_steps()
    deploy = next(step for step in steps if " deploy " in step)
    words = shlex.split(deploy)
    context = dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "-c")
    selftest = shlex.split(next(step for step in steps if step.startswith("log-group-governor selftest")))
    import cli.__main__ as cli_main

    monkeypatch.setattr(cli_main.boto3, "Session", lambda profile_name=None, region_name=None: boto3.session.Session(
        botocore_session=boto3.DEFAULT_SESSION._session, region_name=region_name))
    config = {"destinationArn": account.create_function("ship-logs"), "defaultRetentionDays": int(context["governor:defaultRetentionDays"])}
    deployment = deploy_governor(account, stack_name=selftest[selftest.index("--stack-name") + 1], config=config,
                                 alarm_email=context.get("governor:alarmEmail"))
    deployment.confirm_alarm_email()  # the on-call clicks the link in the mail step 3's address receives
    out = io.StringIO()
    with deployment.running():
        main([*selftest[1:], "--json", "--timeout", "0"], stdout=out, stderr=io.StringIO())

    steps_by_name: dict[str, Any] = {s["name"]: s for s in json.loads(out.getvalue())["steps"]}
    assert steps_by_name["alarm-topic"]["passed"], steps_by_name["alarm-topic"]


def test_step_3_in_a_new_shell_runs_the_cdk_on_its_supported_node_without_an_end_of_life_banner(tmp_path: Path) -> None:
    """Step 3 as printed, with synth for deploy (no account here): the app runs jsii on the Node `npm ci` brings, not on the
    machine's Node 20, whose 11-line end-of-life banner came out as Python byte strings on every command."""
    steps = _deploy_steps()
    deploy = shlex.split(next(step for step in steps if " deploy " in step))
    if not (REPO / deploy[0]).exists() or not SCRIPT.exists():
        pytest.skip("node_modules and .venv are installed by make")
    synth = [deploy[0], "synth", *deploy[2:], "--quiet", "--no-notices", "-o", str(tmp_path / "cdk.out")]
    env = {"HOME": os.environ.get("HOME", "/tmp"), "PATH": "/usr/bin:/bin"}  # a new shell: neither the venv nor make's PATH
    answer = subprocess.run(["bash", "-c", " && ".join([". .venv/bin/activate", shlex.join(synth)])], cwd=REPO,
                            capture_output=True, text=True, timeout=600, env=env)
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert "end-of-life" not in answer.stdout + answer.stderr and "b'!!" not in answer.stderr
    assert (tmp_path / "cdk.out" / "LogGroupGovernor.template.json").exists()

"""`make local-account` (python -m localaws.server / localaws.sandbox): a local account with a governor deployed, and
the five-minute tour of docs/tour.md run as written against it, in a fresh process on a free loopback port (#30, item 4)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOUR = REPO / "docs" / "tour.md"
DOCUMENTED_ENDPOINT = "http://127.0.0.1:4599"


def tour_commands() -> list[str]:
    """Every command line of the tour's console blocks, in order."""
    commands = [line.strip() for block in re.findall(r"^[ \t]*```console\n(.*?)^[ \t]*```", TOUR.read_text(), re.S | re.M)
            for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [re.sub(r"\s+# .*$", "", c) for c in commands]


@pytest.fixture(scope="module")
def local_account() -> Iterator[str]:
    """`python -m localaws.server --port 0` as a user starts it (make local-account runs the same module's main): its endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen([sys.executable, "-m", "localaws.server", "--port", "0"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()  # the banner: the endpoint, once the governor is deployed
        found = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert found, f"no endpoint in {first!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        yield found[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_make_local_account_runs_the_module_the_tour_starts() -> None:
    dry = subprocess.run(["make", "-n", "local-account", "PORT=0"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "-m localaws.sandbox --port 0" in dry.stdout, dry.stdout + dry.stderr


def test_the_tour_runs_as_written_against_the_local_account(local_account: str, tmp_path: Path) -> None:
    commands = tour_commands()
    assert commands[0] == "make local-account" and sum(c.startswith("log-group-governor ") for c in commands) >= 4
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    outputs = []
    for command in commands[1:]:
        command = command.replace(DOCUMENTED_ENDPOINT, local_account)
        if command.startswith("export "):  # the shell's set-up line, as a user pastes it
            for assignment in shlex.split(command)[1:]:
                key, _, value = assignment.partition("=")
                env[key] = value.replace("$PWD", str(REPO)).replace("$PATH", env["PATH"])
            continue
        words = shlex.split(command)
        assert words[0] in ("log-group-governor", "python"), command
        done = subprocess.run(words, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stderr[-2000:]}\n{done.stdout[-2000:]}"
        outputs.append((command, done.stdout + done.stderr))
    plans = [out for command, out in outputs if command.startswith("log-group-governor plan")]
    assert '"logGroup":"/aws/lambda/orders-api","aspect":"subscription","action":"subscribe"' in plans[0]
    assert "all steps passed" in next(out for command, out in outputs if " selftest " in command)
    changed = {re.search(r'"logGroup":"([^"]+)"', line)[1] for line in plans[1].splitlines()
               if line.startswith('{"logGroup"') and '"action":"leave"' not in line and '"action":"skip"' not in line}
    assert "/aws/lambda/orders-api" not in changed, changed
    assert '"logGroup":"/aws/lambda/brand-new","aspect":"subscription","action":"leave"' in plans[2]  # the deployed functions took it

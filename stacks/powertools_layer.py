"""The Powertools for AWS Lambda layer the functions run: built from the release the tests run.

The version and its dependencies' versions and hashes are read from requirements-dev.lock (the lock
``make test`` installs), so the deployed Powertools is the tested one by construction: no public
layer version whose content this repository cannot check. Built by CDK *local* bundling (``pip
install --require-hashes --only-binary=:all: --target python/``, no Docker), kept under ``.cache/``
by what it is made of, like ship-logs' asset. ``powertoolsLayerArn`` names a layer instead (the
China and GovCloud partitions, or a company's own build).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import tempfile
from pathlib import Path

from aws_cdk import AssetHashType, BundlingOptions, DockerImage, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .functions import ARCHITECTURE, LAMBDAS_DIR, RUNTIME
from .ship_logs_asset import PLATFORMS, PYTHON_VERSION, LocalBundling, run_build_step

REPO = LAMBDAS_DIR.parent
LOCK = REPO / "requirements-dev.lock"
#: Powertools and what it imports beyond the Lambda runtime's boto3 (jmespath comes with boto3 there too,
#: but the lock's version is the tested one).
PACKAGES = ("aws-lambda-powertools", "jmespath", "typing-extensions")
CACHE_DIR = REPO / ".cache" / "powertools-layer"
_UNUSED_IMAGE = "public.ecr.aws/sam/build-python3.13"


def locked_requirements(lock: Path = LOCK) -> str:
    """The lock's entries (version and hashes) for PACKAGES, as a requirements file pip checks hashes of."""
    entries = {}
    for block in re.split(r"\n(?=\S)", lock.read_text()):
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", block)
        if match and match[1].lower() in PACKAGES:
            entries[match[1].lower()] = re.sub(r"\n\s+#.*", "", block).strip()
    missing = sorted(set(PACKAGES) - set(entries))
    if missing:
        raise RuntimeError(f"{lock.name} pins none of {missing}: run `make lock`")
    return "\n".join(entries[name] for name in PACKAGES) + "\n"


def powertools_version(lock: Path = LOCK) -> str:
    return re.search(r"^aws-lambda-powertools==(\S+)", locked_requirements(lock), re.M)[1]


class LayerBuild:
    """One build of the layer: ``python/`` with the locked wheels, named by the lock's entries."""

    def __init__(self, *, architecture: str = "arm64", cache_dir: Path = CACHE_DIR) -> None:
        self.requirements = locked_requirements()
        self.platform = PLATFORMS[architecture]
        self.cache_dir = cache_dir

    def key(self) -> str:
        return hashlib.sha256(f"{self.requirements}{self.platform} {PYTHON_VERSION}".encode()).hexdigest()

    def build_into(self, output_dir: Path) -> None:
        built = self.cache_dir / self.key()
        if not built.is_dir():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix="building-", dir=self.cache_dir))
            try:
                (staging / "requirements.txt").write_text(self.requirements)
                run_build_step([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                                "--require-hashes", "--only-binary=:all:", "--platform", self.platform, "--implementation", "cp",
                                "--python-version", PYTHON_VERSION, "--target", str(staging / "layer" / "python"),
                                "-r", str(staging / "requirements.txt")],
                               f"fetching Powertools {powertools_version()} for the layer (requirements-dev.lock)")
                try:
                    (staging / "layer").rename(built)
                except OSError:
                    if not built.is_dir():
                        raise
                    # Another process (a parallel test worker) built the same layer first: theirs is as good.
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(built, output_dir, dirs_exist_ok=True)


def powertools_layer(scope: Construct, construct_id: str, *, override_arn: str | None) -> lambda_.ILayerVersion:
    """``override_arn``'s layer, or the layer built from the tested release."""
    if override_arn:
        return lambda_.LayerVersion.from_layer_version_arn(scope, construct_id, override_arn)
    build = LayerBuild()
    return lambda_.LayerVersion(
        scope, construct_id,
        code=lambda_.Code.from_asset(str(REPO / "lambdas"), asset_hash_type=AssetHashType.CUSTOM, asset_hash=build.key(),
                                     bundling=BundlingOptions(image=DockerImage.from_registry(_UNUSED_IMAGE), local=LocalBundling(build))),
        compatible_runtimes=[RUNTIME], compatible_architectures=[ARCHITECTURE],
        description=f"Powertools for AWS Lambda (Python) {powertools_version()}, as log-group-governor's tests run it",
        removal_policy=RemovalPolicy.RETAIN,  # a function being replaced may still run on the previous version
    )

"""ship-logs' code asset: its own packages, the compiled libraries it runs faster with (msgspec for
JSON, isal for gzip) as wheels for the function's architecture and Python, and bytecode.

Built by CDK *local* bundling, never Docker: ``pip install --platform ... --only-binary=:all:
--target`` takes the wheels from the package index (or pip's own cache), and the interpreter of the
function's Python version, when this machine has one, compiles the bytecode (``unchecked-hash``:
the sources ship beside it, and Lambda can write no ``__pycache__`` of its own, so without it every
cold start compiles ship-logs again). What was built is kept under ``.cache/`` keyed by everything
it is made of, so a synth after the first copies it: ``cdk synth`` and the tests stay offline.

``LOG_GROUP_GOVERNOR_STDLIB_CODECS=1`` at synth builds the asset without the compiled libraries:
ship-logs then runs on the standard library alone (the same records, more slowly).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from ship_logs.codec import ENV_STDLIB_CODECS

from .functions import LAMBDAS_DIR

#: The compiled libraries, pinned (the tests run with the same pins, from requirements-dev.txt).
REQUIREMENTS = LAMBDAS_DIR / "ship_logs" / "requirements.txt"
#: The packages the function imports from the asset: no governor code in ship-logs' asset.
PACKAGES = ("ship_logs", "shared")
PYTHON_VERSION = "3.13"
#: Lambda's architectures -> the manylinux platform tag of their wheels.
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
CACHE_DIR = LAMBDAS_DIR.parent / ".cache" / "ship-logs-asset"
#: Builds kept in CACHE_DIR (one per architecture and Python in use, and a few before them).
KEPT_BUILDS = 6
#: Never pulled: CDK wants an image for a bundling that local bundling always does instead.
_UNUSED_IMAGE = "public.ecr.aws/sam/build-python3.13"


class AssetBuildError(RuntimeError):
    """The asset could not be built; the message says what to do."""


def ship_logs_code(*, architecture: str = "arm64") -> lambda_.Code:
    """The asset for a function of ``architecture`` (``arm64`` or ``x86_64``) on Python 3.13."""
    build = AssetBuild(architecture=architecture, compiled_libraries=os.environ.get(ENV_STDLIB_CODECS) != "1")
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=build.key(),
        bundling=BundlingOptions(image=DockerImage.from_registry(_UNUSED_IMAGE), local=LocalBundling(build)),
    )


class AssetBuild:
    """One build of the asset, named by what it is made of (sources, pins, platform, Python)."""

    def __init__(self, *, architecture: str, python_version: str = PYTHON_VERSION, compiled_libraries: bool = True,
                 cache_dir: Path = CACHE_DIR) -> None:
        """``python_version``: the function's (the benchmark builds one for the Python it runs on)."""
        if architecture not in PLATFORMS:
            raise AssetBuildError(f"architecture {architecture!r}: ship-logs is built for {sorted(PLATFORMS)}")
        self.platform = PLATFORMS[architecture]
        self.python_version = python_version
        self.compiled_libraries = compiled_libraries
        self.cache_dir = cache_dir
        #: The interpreter that compiles the bytecode: one of the function's Python version, or none (no bytecode).
        self.python = _interpreter(python_version)

    def key(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self._sources()):
            digest.update(str(path.relative_to(LAMBDAS_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
        digest.update(f"{self.platform} {self.python_version} {self.compiled_libraries} {bool(self.python)}".encode())
        if self.compiled_libraries:
            digest.update(REQUIREMENTS.read_bytes())
        return digest.hexdigest()

    def build_into(self, output_dir: Path) -> None:
        """Copies the kept build of this key into ``output_dir``, building it first if there is none."""
        shutil.copytree(self.built(), output_dir, dirs_exist_ok=True)

    def built(self) -> Path:
        """The kept build of this key, built first if there is none."""
        built = self.cache_dir / self.key()
        if not built.is_dir():
            self._build(built)
        return built

    def _sources(self) -> list[Path]:
        return [path for package in PACKAGES for path in (LAMBDAS_DIR / package).rglob("*")
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"]

    def _build(self, target: Path) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="building-", dir=self.cache_dir))
        try:
            for path in self._sources():
                destination = staging / path.relative_to(LAMBDAS_DIR)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
            if self.compiled_libraries:
                self._install_wheels(staging)
            if self.python:
                run_build_step([self.python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(staging)],
                     "compiling the asset's bytecode")
            try:
                staging.rename(target)  # whole or not at all: a build cut short is never taken for a good one
            except OSError:
                if not target.is_dir():  # another process built the same key meanwhile: theirs is as good
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._prune(keep=target)

    def _prune(self, *, keep: Path) -> None:
        """Builds of earlier sources are of no more use than a few: the newest KEPT_BUILDS stay."""
        builds = sorted((p for p in self.cache_dir.iterdir() if p.is_dir() and not p.name.startswith("building-") and p != keep),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        for old in builds[KEPT_BUILDS - 1:]:
            shutil.rmtree(old, ignore_errors=True)

    def _install_wheels(self, staging: Path) -> None:
        run_build_step([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
              "--only-binary=:all:", "--platform", self.platform, "--implementation", "cp",
              "--python-version", self.python_version, "--target", str(staging), "-r", str(REQUIREMENTS)],
             f"fetching {REQUIREMENTS.name}'s wheels for {self.platform}, Python {self.python_version} "
             f"(or set {ENV_STDLIB_CODECS}=1 to build ship-logs without them)")


@jsii.implements(ILocalBundling)
class LocalBundling:
    """CDK's local bundling of anything with ``build_into(output_dir)`` (no Docker)."""

    def __init__(self, build: Any) -> None:
        self.build = build

    @jsii.member(jsii_name="tryBundle")
    def try_bundle(self, output_dir: str, options: Any = None, **_: Any) -> bool:
        self.build.build_into(Path(output_dir))
        return True


def _interpreter(version: str) -> str | None:
    """This interpreter if it is of ``version``; else ``python<version>`` on the PATH, or one pyenv
    installed; None if none of them runs."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [shutil.which(f"python{version}"), *sorted(str(p) for p in pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "import sys"], capture_output=True).returncode == 0:
            return candidate
    return None


def run_build_step(command: list[str], what: str) -> None:
    answer = subprocess.run(command, capture_output=True, text=True)
    if answer.returncode != 0:
        raise AssetBuildError(f"{what} failed ({answer.returncode}): {(answer.stderr or answer.stdout).strip()[-800:]}")

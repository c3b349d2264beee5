"""ship-logs' asset: its packages, msgspec and isal for the function's architecture and Python, and
bytecode; built by local bundling (no Docker), kept, and reused (#11)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from stacks import ship_logs_asset
from stacks.ship_logs_asset import AssetBuild, AssetBuildError

from .conftest import Synthesized, synthesize

OPENSEARCH = {"sink": "opensearch", "endpoint": "https://search-logs-abc.eu-west-1.es.amazonaws.com"}


@pytest.fixture(scope="module")
def shipping_stack() -> Synthesized:
    return synthesize(shipLogs=OPENSEARCH)


def _asset_dir(synthesized: Synthesized, function: dict) -> Path:
    key = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    return synthesized.outdir / f"asset.{key}"


def test_ship_logs_runs_from_an_asset_of_its_own_with_wheels_for_arm64_python_3_13(shipping_stack: Synthesized) -> None:
    asset = _asset_dir(shipping_stack, shipping_stack.function("ship_logs.handler.handler"))
    governor_asset = _asset_dir(shipping_stack, shipping_stack.function("create_log_group.subscribe_log_group"))

    assert (asset / "ship_logs" / "handler.py").is_file() and (asset / "shared" / "config.py").is_file()
    assert not (asset / "governor").exists()  # ship-logs' asset carries no governor code
    assert [p.name for p in (asset / "msgspec").glob("_core.*.so")] == ["_core.cpython-313-aarch64-linux-gnu.so"]
    assert [p.name for p in (asset / "isal").glob("isal_zlib.*.so")] == ["isal_zlib.cpython-313-aarch64-linux-gnu.so"]
    assert (governor_asset / "governor").is_dir() and not (governor_asset / "msgspec").exists()  # lambdas/ as it is


def test_the_asset_carries_bytecode_that_lambda_loads_without_checking_the_sources(shipping_stack: Synthesized) -> None:
    if ship_logs_asset._interpreter("3.13") is None:
        pytest.skip("no Python 3.13 on this machine: the asset is built without bytecode")
    asset = _asset_dir(shipping_stack, shipping_stack.function("ship_logs.handler.handler"))

    pyc = asset / "ship_logs" / "__pycache__" / "parse.cpython-313.pyc"
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # PEP 552: hash-based, unchecked (Lambda's clock and the zip's times never matter)


def test_a_build_is_kept_and_a_later_synth_copies_it_without_fetching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = AssetBuild(architecture="arm64", cache_dir=tmp_path / "cache")
    first = tmp_path / "first"
    build.build_into(first)

    def offline(command: list[str], what: str) -> None:
        raise AssertionError(f"fetched or built again: {what}")

    monkeypatch.setattr(ship_logs_asset, "run_build_step", offline)
    second = tmp_path / "second"
    build.build_into(second)

    assert sorted(p.relative_to(first) for p in first.rglob("*")) == sorted(p.relative_to(second) for p in second.rglob("*"))
    assert (second / "msgspec").is_dir()


def test_a_changed_source_makes_a_new_build(tmp_path: Path) -> None:
    arm, x86 = AssetBuild(architecture="arm64", cache_dir=tmp_path), AssetBuild(architecture="x86_64", cache_dir=tmp_path)
    without = AssetBuild(architecture="arm64", compiled_libraries=False, cache_dir=tmp_path)

    assert len({arm.key(), x86.key(), without.key()}) == 3


def test_without_the_compiled_libraries_the_asset_holds_only_the_sources(tmp_path: Path) -> None:
    out = tmp_path / "out"
    AssetBuild(architecture="arm64", compiled_libraries=False, cache_dir=tmp_path / "cache").build_into(out)

    assert (out / "ship_logs" / "codec.py").is_file() and not (out / "msgspec").exists() and not (out / "isal").exists()


def test_an_unknown_architecture_is_refused_with_the_ones_it_takes() -> None:
    with pytest.raises(AssetBuildError, match=r"\['arm64', 'x86_64'\]"):
        AssetBuild(architecture="riscv64")


def test_the_asset_built_for_this_machine_imports_its_own_wheels(tmp_path: Path) -> None:
    """The same build for the Python and architecture running the tests: the codecs load from the
    asset alone (no site-packages), as they do in Lambda."""
    architecture = "x86_64" if platform.machine() in ("x86_64", "AMD64") else "arm64"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    asset = AssetBuild(architecture=architecture, python_version=version, cache_dir=tmp_path).built()

    answer = subprocess.run([sys.executable, "-S", "-c", "import ship_logs.codec as c; print(c.JSON_LIBRARY, c.GZIP_LIBRARY, c.__file__)"],
                            env={**os.environ, "PYTHONPATH": str(asset)}, capture_output=True, text=True, check=True)

    json_library, gzip_library, where = answer.stdout.split()
    assert (json_library, gzip_library) == ("msgspec", "isal") and where.startswith(str(asset))


def test_only_the_newest_builds_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    for age in range(10):  # builds of earlier sources, the oldest first
        old = cache / f"{age:064d}"
        old.mkdir()
        os.utime(old, (1_000_000 + age, 1_000_000 + age))

    AssetBuild(architecture="arm64", compiled_libraries=False, cache_dir=cache).built()

    kept = sorted(p.name for p in cache.iterdir())
    assert len(kept) == ship_logs_asset.KEPT_BUILDS
    assert f"{9:064d}" in kept and f"{0:064d}" not in kept

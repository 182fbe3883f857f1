"""Shared fixtures: the corpus, real repositories in tmp folders, and the real CLI in a subprocess."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CORPUS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus").resolve()
BIN = Path(sys.executable).parent

GOOD_ROOTS = [
    "pystac/catalogs/test-case-1/catalog.json",
    "pystac/catalogs/test-case-2/catalog.json",
    "pystac/catalogs/test-case-4/catalog.json",
    "pystac/catalogs/test-case-5/catalog.json",
    "pystac/catalogs/test-case-6/catalog.json",
    "pystac/catalogs/label_catalog-v0.8.1/catalog.json",
    "pystac/catalogs/planet-example-v1.0.0-beta.2/collection.json",
    "stactools/data-files/training/catalog.json",
    "stactools/data-files/basic/catalog.json",
    "stactools/data-files/planet-disaster/collection.json",
    "stac-spec/v1.0.0/examples/catalog.json",
    "stac-spec/v1.0.0/examples/collection.json",
    "rustac/spec-examples/v1.1.0/catalog.json",
    "stac-validator/test_data/v100/catalog.json",
    "stac-validator/test_data/v090/catalog.json",
    "stac-validator/test_data/local_cat/open-science-catalog-testing/catalog.json",
    "pystac/windows_hrefs/catalog.json",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the long crash and load suites")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="long suite: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def corpus() -> Path:
    assert CORPUS.is_dir(), f"corpus not found at {CORPUS}"
    return CORPUS


def run_cli(
    *args: str | os.PathLike[str],
    command: str = "stac-repository",
    check: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("STAC_REPOSITORY", None) if env is None or "STAC_REPOSITORY" not in env else None
    proc = subprocess.run(
        [str(BIN / command), *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{command} {args} failed ({proc.returncode}): {proc.stderr}")
    return proc


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


@pytest.fixture
def repo(tmp_path: Path) -> Any:
    from stac_repository import Repository

    return Repository.init(tmp_path / "repo", id="root", description="test repository")


def tree_digest(root: Path, *, skip_local: bool = True) -> dict[str, str]:
    """Every file under ``root`` with its sha256 (backend-private lock/journal state left out)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if skip_local and rel.startswith(".stac-repository/local"):
            continue
        if path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _walk_check() -> Any:
    spec = importlib.util.spec_from_file_location("walk_check", CORPUS / "walk_check.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def walk_list(path: Path) -> list[tuple[str, str, int]]:
    """(type, id, number of assets) of every object reachable from ``path``, via pystac."""
    result = _walk_check().walk(str(path))
    assert result["unresolved_links"] == 0, result["errors"]
    return sorted((kind, ident, n) for kind, ident, n, _ in result["objects"])


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst

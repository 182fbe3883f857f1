"""Helpers for the git backend tests: the real git binary, a stand-in LFS clean filter, file digests."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus").resolve()
TEST_CASE_1 = CORPUS / "pystac/catalogs/test-case-1/catalog.json"
TEST_CASE_6 = CORPUS / "pystac/catalogs/test-case-6/catalog.json"
PLANET = CORPUS / "stactools/data-files/planet-disaster/collection.json"

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="the git binary is not installed")

_LFS_CLEAN = """\
import hashlib, sys
data = sys.stdin.buffer.read()
oid = hashlib.sha256(data).hexdigest()
spec = "https://git-lfs.github.com/spec/v1"
sys.stdout.buffer.write(f"version {spec}\\noid sha256:{oid}\\nsize {len(data)}\\n".encode())
"""


def git_env() -> dict[str, str]:
    """Isolated from the user's and the system's git configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    return env


def run_git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real git binary: an argument list, never a shell."""
    assert GIT is not None
    return subprocess.run(
        [GIT, *args], cwd=cwd, capture_output=True, text=True, env=git_env(), timeout=60, check=False
    )


def git_bytes(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run git on binary input or output (blobs, fast-import streams)."""
    assert GIT is not None
    proc = subprocess.run(
        [GIT, *args], cwd=cwd, input=stdin, capture_output=True, env=git_env(), timeout=60, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr!r}")
    return proc.stdout


def git(cwd: Path, *args: str) -> str:
    proc = run_git(cwd, *args)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def fsck(path: Path) -> None:
    proc = run_git(path, "fsck", "--strict", "--no-dangling", "--full")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (proc.stdout + proc.stderr).strip(), proc.stdout + proc.stderr


def lfs_clean_filter(tmp: Path) -> list[str]:
    """``-c`` options that make git compute LFS pointers as git-lfs would, without git-lfs."""
    script = tmp / "lfs_clean.py"
    script.write_text(_LFS_CLEAN)
    return ["-c", f"filter.lfs.clean={sys.executable} {script}", "-c", "filter.lfs.required=true"]


def digest(root: Path, *, skip: tuple[str, ...] = (".git",)) -> dict[str, str]:
    """sha256 of every file under ``root``; paths starting with a name in ``skip`` and
    .gitattributes files are left out."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/", 1)[0] in skip or path.name == ".gitattributes" or not path.is_file():
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def catalog_digest(root: Path) -> dict[str, str]:
    """What an export holds: the catalog without .git and .stac-repository."""
    return digest(root, skip=(".git", ".stac-repository"))


def log_ids(path: Path) -> list[str]:
    return git(path, "log", "--format=%H").split()

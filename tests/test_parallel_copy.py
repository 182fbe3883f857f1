"""Exports and backups of many files are copied by forked workers: the copy is the same file for
file, a failure in a worker fails the copy as the sequential one fails, nothing partial lands, and
no worker outlives it."""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stac_repository import Repository
from stac_repository.errors import BackendError, NotFound
from stac_repository.repository import filecopy

from .test_fault_injection import tmpfs
from .test_lfs_ahead import _bulk_product


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Copies start workers from 100 files on; records how many each started."""
    monkeypatch.setattr(filecopy, "PARALLEL_FROM", 100)
    monkeypatch.setattr(filecopy, "BATCH", 16)
    started: list[int] = []
    init = filecopy._Copiers.__init__

    def counting(self: filecopy._Copiers, snapshot: Any, base: str, workers: int) -> None:
        started.append(workers)
        init(self, snapshot, base, workers)

    monkeypatch.setattr(filecopy._Copiers, "__init__", counting)
    yield started


@pytest.fixture(scope="module")
def bulk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bulk_product(tmp_path_factory.mktemp("bulk") / "src", 120)


def _repo(tmp_path: Path, backend: str, source: Path) -> Repository:
    repo = Repository.init(tmp_path / f"repo-{backend}", backend=backend)
    assert [r.status for r in repo.ingest([source]).results] == ["added"]
    return repo


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _children() -> list[int]:
    me = str(os.getpid())
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, NotADirectoryError, IndexError):
            continue
        if stat[1] == me and stat[0] != "Z":
            found.append(int(pid))
    return found


@pytest.mark.parametrize(
    ("backend", "verb"),
    [("git", "export"), ("file", "export"), ("file", "backup")],  # git's backup is git's own mirror
)
def test_workers_copy_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int], bulk: Path, backend: str, verb: str
) -> None:
    repo = _repo(tmp_path, backend, bulk)
    copies = []
    for workers in ("0", "2"):
        monkeypatch.setenv("STAC_REPOSITORY_WORKERS", workers)
        target = tmp_path / f"{verb}-{workers}"
        count = getattr(repo, verb)(target)
        copies.append((count, _files(target)))
    assert forks == [2]
    assert copies[0] == copies[1]
    assert len(copies[0][1]) > 4 * 120
    assert _children() == []
    if verb == "backup":  # and it is still a repository holding the same catalog
        restored = Repository.open(tmp_path / "backup-2")
        restored.export(tmp_path / "from-backup")
        repo.export(tmp_path / "from-repo")
        assert _files(tmp_path / "from-backup") == _files(tmp_path / "from-repo")


def _lfs_object_of(repo: Repository, name: str) -> Path:
    with repo.backend.snapshot() as snap:
        path = next(p for p in snap.walk() if p.endswith(name))
        pointer = snap._pointer(path, snap._blob(path))  # type: ignore[attr-defined]
    assert pointer is not None
    return Path(repo.backend.lfs.path(pointer.oid))  # type: ignore[attr-defined]


@pytest.mark.parametrize("fault", ["is missing", "is corrupt"])
def test_a_missing_or_corrupt_lfs_object_fails_the_copy_as_without_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int], bulk: Path, fault: str
) -> None:
    repo = _repo(tmp_path, "git", bulk)
    stored = _lfs_object_of(repo, "0100-data.tif")  # late in the walk: a worker meets it
    if fault == "is missing":
        stored.unlink()
    else:
        stored.write_bytes(stored.read_bytes()[:-1])  # truncated
    errors = []
    for workers in ("0", "2"):
        monkeypatch.setenv("STAC_REPOSITORY_WORKERS", workers)
        with pytest.raises(BackendError) as failed:
            repo.export(tmp_path / f"export-{workers}")
        errors.append(str(failed.value))
        assert not (tmp_path / f"export-{workers}").exists()
    assert forks == [2]
    assert errors[0] == errors[1] and fault in errors[0] and "0100-data.tif" in errors[0]
    assert _children() == []


def test_a_killed_worker_fails_the_copy_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int], bulk: Path
) -> None:
    repo = _repo(tmp_path, "git", bulk)
    parent = os.getpid()
    copy = filecopy.FileWriter.copy

    def dying(self: filecopy.FileWriter, snapshot: Any, path: str, target: Any) -> None:
        if os.getpid() != parent and path.endswith("0090-meta.xml"):
            os.kill(os.getpid(), signal.SIGKILL)  # out of memory, say
        copy(self, snapshot, path, target)

    monkeypatch.setattr(filecopy.FileWriter, "copy", dying)
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", "2")
    with pytest.raises(BackendError, match="ended unexpectedly"):
        repo.export(tmp_path / "export")
    assert not (tmp_path / "export").exists()
    assert _children() == []
    monkeypatch.setattr(filecopy.FileWriter, "copy", copy)
    repo.export(tmp_path / "export")
    assert len(_files(tmp_path / "export")) > 4 * 120


def test_an_interrupted_copy_leaves_no_worker(tmp_path: Path, forks: list[int], bulk: Path) -> None:
    repo = _repo(tmp_path, "git", bulk)

    def interrupted(paths: Iterator[str]) -> Iterator[str]:
        for n, path in enumerate(paths):
            if n == 300:
                raise KeyboardInterrupt
            yield path

    with repo.backend.snapshot() as snap, pytest.raises(KeyboardInterrupt):
        filecopy.copy_files(snap, interrupted(snap.walk()), str(tmp_path / "out"))
    assert forks and _children() == []


@pytest.mark.parametrize("backend", ["git", "file"])
def test_a_full_disk_fails_the_copy_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int], bulk: Path, backend: str
) -> None:
    repo = _repo(tmp_path, backend, bulk)
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", "2")
    with tmpfs(tmp_path / "small", 1 << 20) as mounted:  # full after a few hundred files
        target = tmp_path / "small" / "export"
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)
        if not mounted:  # no mount here: a file size limit, inherited by the workers
            resource.setrlimit(resource.RLIMIT_FSIZE, (1_000, limit[1]))
        try:
            with pytest.raises(BackendError, match=r"No space left on device|File too large") as failed:
                repo.export(target)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        assert "\n" not in str(failed.value)
        assert not target.exists() and not list((tmp_path / "small").iterdir())
    assert forks == [2] or not mounted
    assert _children() == []


@pytest.mark.parametrize("backend", ["git", "file"])
def test_copy_to_writes_what_read_returns_and_refuses_a_missing_path(
    tmp_path: Path, bulk: Path, backend: str
) -> None:
    repo = _repo(tmp_path, backend, bulk)
    with repo.backend.snapshot() as snap:
        paths = list(snap.walk())
        for n, path in enumerate(paths[:: max(1, len(paths) // 40)]):  # documents and assets
            target = tmp_path / f"copy-{n}"
            target.write_bytes(b"older and longer content, to be truncated")
            snap.copy_to(path, str(target))
            with snap.open(path) as stream:
                assert target.read_bytes() == stream.read()
        with pytest.raises(NotFound):
            snap.copy_to("bench/no-such-item/no-such-item.json", str(tmp_path / "missing"))
        assert not (tmp_path / "missing").exists()

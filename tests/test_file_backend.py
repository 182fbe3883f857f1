"""The file backend under kill -9, concurrent writers and readers, on real folders."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from stac_repository import Repository
from stac_repository.backends.base import ChangeSet
from stac_repository.errors import BackendError, Locked

from .conftest import BIN, run_cli, tree_digest, walk_list

BIG = "stac-validator/test_data/local_cat/open-science-catalog-testing/catalog.json"  # 1,338 objects


def _init(path: Path) -> Path:
    run_cli("-r", path, "init", "--yes", "--description", "crash test", check=True)
    return path


@pytest.mark.parametrize("point", ["staged", "committed", "applying"])
def test_kill_at_each_crash_point(point: str, tmp_path: Path, corpus: Path) -> None:
    repo = _init(tmp_path / "repo")
    run_cli("-r", repo, "ingest", corpus / "pystac/catalogs/test-case-1/catalog.json", check=True)
    before = tree_digest(repo)
    proc = run_cli(
        "-r",
        repo,
        "ingest",
        corpus / "pystac/catalogs/test-case-4/catalog.json",
        env={"STAC_REPOSITORY_CRASH_AT": point},
    )
    assert proc.returncode == -signal.SIGKILL
    # The next command (even a reader) finds exactly one committed state and no leftovers.
    assert run_cli("-r", repo, "export", tmp_path / "export").returncode == 0
    after = tree_digest(repo)
    if point == "staged":
        assert after == before
    else:
        assert len(after) > len(before)
        assert len(walk_list(repo / "catalog.json")) == 1 + 15 + 70
    assert not (repo / ".stac-repository/local/journal").exists()
    assert run_cli("-r", repo, "ingest", corpus / "pystac/catalogs/test-case-2/catalog.json").returncode == 0


def test_random_kills_during_a_large_ingest(tmp_path: Path, corpus: Path) -> None:
    repo = _init(tmp_path / "repo")
    empty = tree_digest(repo)
    rng = random.Random(7)
    for _ in range(6):
        proc = subprocess.Popen(
            [str(BIN / "stac-repository"), "-r", str(repo), "ingest", str(corpus / BIG)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run_cli("-r", repo, "config", check=True)  # the next command recovers
        # Before or after, never a mix: either the empty repository or the whole catalog.
        listing = walk_list(repo / "catalog.json")
        assert len(listing) in (1, 1 + 1338), len(listing)
        if len(listing) == 1:
            assert tree_digest(repo) == empty
        else:
            run_cli("-r", repo, "prune", "osc", check=True)  # the id of the BIG catalog
            assert tree_digest(repo) == empty


def test_second_writer_waits_then_fails_naming_the_holder(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo", description="lock")
    with repo.backend.transaction(timeout=1):
        started = time.monotonic()
        proc = run_cli(
            "-r", repo.root, "config", "lock.timeout", "3", env={"STAC_REPOSITORY_LOCK_TIMEOUT": "0.5"}
        )
        waited = time.monotonic() - started
        assert proc.returncode == 1
        assert f"locked by PID {os.getpid()} since" in proc.stderr
        assert waited >= 0.5
        with pytest.raises(Locked), Repository.open(repo.root).backend.transaction(timeout=0.1):
            pass


def test_lock_of_a_dead_process_is_not_stale(tmp_path: Path, corpus: Path) -> None:
    repo = _init(tmp_path / "repo")
    # A writer killed while holding the lock: the kernel drops its flock.
    proc = subprocess.Popen(
        [str(BIN / "stac-repository"), "-r", str(repo), "ingest", str(corpus / BIG)],
        env={**os.environ, "STAC_REPOSITORY_CRASH_AT": "committed"},
    )
    proc.wait(timeout=120)
    assert (
        (repo / ".stac-repository/local/lock").read_text().strip()
    )  # the dead holder's PID is still written
    assert (
        run_cli(
            "-r", repo, "config", "lock.timeout", "1", env={"STAC_REPOSITORY_LOCK_TIMEOUT": "0"}
        ).returncode
        == 0
    )


def test_readers_never_see_a_partial_state(tmp_path: Path, corpus: Path) -> None:
    repo = _init(tmp_path / "repo")
    writer = subprocess.Popen(
        [
            str(BIN / "stac-repository"),
            "-r",
            str(repo),
            "ingest",
            str(corpus / "pystac/catalogs/test-case-4/catalog.json"),
            str(corpus / "stactools/data-files/training/catalog.json"),
            str(corpus / BIG),
        ],
        stdout=subprocess.DEVNULL,
    )
    sizes = set()
    n = 0
    while writer.poll() is None or n < 2:
        out = tmp_path / f"export-{n}"
        proc = run_cli("-r", repo, "export", out)
        assert proc.returncode == 0, proc.stderr  # retried internally, never a partial copy
        sizes.add(len(walk_list(out / "catalog.json")))
        n += 1
    assert writer.wait() == 0
    # test-case-4 and training share their id: the second is an update of the first.
    assert sizes <= {1, 1 + 70, 1 + 70 + 1338}


def test_changeset_paths_are_checked(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo", description="paths")
    for bad in ("../x.json", "/abs.json", "a/../../x", ".git/config", "a\\b", ".stac-repository/local/lock"):
        with repo.backend.transaction(timeout=1) as tx, pytest.raises(BackendError):
            tx.commit(ChangeSet(message="bad", writes={bad: b"{}"}))
    assert not (tmp_path / "x.json").exists()

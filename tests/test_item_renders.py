"""Forked workers render a large product's items while it is planned: the ordered map they run
on, and a plan that stores, warns and fails exactly as the sequential one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stac_repository import Repository
from stac_repository.backends import gitfolders, gitpack
from stac_repository.backends.locking import WriterLock
from stac_repository.forking import OrderedForkMap, worker_count
from stac_repository.stac import planner

from .git_helpers import fsck
from .test_lfs_ahead import _gone, _wait_for, assert_kill_9_ends_the_child, assert_no_process_naming
from .test_repository import collection, item, write

N = planner._Renders.MIN_ITEMS + 200


def _answer(n: int) -> Any:
    if n % 97 == 5:
        raise ValueError(f"task {n} fails")
    if n == 500:
        return object()  # marshal cannot hold it
    return (n, f"n{n}".encode(), [("a", str(n))])


def test_answers_come_in_order_and_failures_are_left_to_the_caller() -> None:
    with OrderedForkMap(_answer, 1000, 2, chunk=64) as fork_map:
        answers = [fork_map.get(n) for n in range(1000)]
    expected = [None if n % 97 == 5 or n == 500 else _answer(n) for n in range(1000)]
    assert answers == expected


def test_tasks_are_asked_in_order() -> None:
    with OrderedForkMap(_answer, 100, 2, chunk=8) as fork_map:
        assert fork_map.get(0) == _answer(0)
        with pytest.raises(ValueError, match="out of order"):
            fork_map.get(20)


def test_a_dead_worker_leaves_the_rest_to_the_caller() -> None:
    def dying(n: int) -> int:
        if n == 300:  # in the fifth chunk of 64, the first worker's third
            os.kill(os.getpid(), signal.SIGKILL)
        return n

    with OrderedForkMap(dying, 1000, 2, chunk=64) as fork_map:
        answers = [fork_map.get(n) for n in range(1000)]
    assert answers[:256] == list(range(256))
    assert answers[256:] == [None] * (1000 - 256)


def test_the_workers_never_hold_the_writer_lock(tmp_path: Path) -> None:
    ready = tmp_path / "ready"

    def slow(n: int) -> int:
        ready.write_text(str(os.getpid()))
        time.sleep(30)
        return n

    lock = WriterLock(tmp_path / "lock", timeout=0)
    lock.acquire()
    fork_map = OrderedForkMap(slow, 10, 1)
    try:
        worker = _wait_for(ready)
        lock.release()
        assert not _gone(worker)
        with WriterLock(tmp_path / "lock", timeout=0):  # forked while it was held
            pass
    finally:
        fork_map.close()
    assert _gone(worker)


PARENT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from stac_repository.forking import OrderedForkMap

    ready = Path(sys.argv[1])

    def answer(n):
        ready.write_text(str(os.getpid()))
        return b"x" * 100_000  # the pipe fills: the worker waits on its parent

    fork_map = OrderedForkMap(answer, 10_000, 1, chunk=10)
    time.sleep(60)
    """
)


def test_the_workers_end_with_their_parent(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    assert_kill_9_ends_the_child(PARENT, ready, str(ready))


# -- the plan -------------------------------------------------------------------------------


def product(root: Path, fault: str | None = None) -> Path:
    """N items in folders of their own, with assets, a linked local file, and items that warn
    (a missing asset, a link to a missing file) spread over several workers' chunks."""
    docs = []
    for n in range(N):
        doc = item(f"it-{n:05d}", when=f"20{10 + n % 10}-01-01T00:00:00Z", collection="big")
        folder = root / doc["id"]
        folder.mkdir(parents=True)
        (folder / "data.tif").write_bytes(f"tif {n}".encode())
        doc["assets"] = {"data": {"href": "./data.tif", "roles": ["data"]}}
        if n % 250 == 3:
            doc["assets"]["gone"] = {"href": "./missing.tif"}
        if n % 300 == 7:
            (folder / "notes.txt").write_text(f"notes {n}")
            doc["links"].append({"rel": "describedby", "href": "./notes.txt"})
            doc["links"].append({"rel": "license", "href": "./no-such-licence.txt"})
        if fault == "outside" and n in (700, 900):
            doc["assets"]["data"]["href"] = "../../elsewhere.tif"
        if fault == "directory" and n == 800:
            doc["assets"]["data"]["href"] = "."
        write(folder, f"{doc['id']}.json", doc)
        docs.append(doc)
    (root.parent / "elsewhere.tif").write_bytes(b"outside")
    coll = collection("big")
    coll["links"] = [{"rel": "item", "href": f"./{d['id']}/{d['id']}.json"} for d in docs]
    return write(root, "collection.json", coll)


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Whether a worker answered, for each lazy item the plan reached (the real workers run)."""
    answered: list[bool] = []
    take = planner._Renders.take

    def counting(self: planner._Renders, node: Any) -> Any:
        answer = take(self, node)
        answered.append(answer is not None)
        return answer

    monkeypatch.setattr(planner._Renders, "take", counting)
    yield answered


def _ingest(tmp_path: Path, source: Path, workers: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", str(workers))
    repo = Repository.init(tmp_path / f"repo-{workers}", backend="git")
    return repo, repo.ingest([source]).results[0]


def test_workers_render_the_same_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rendered: list[bool]
) -> None:
    source = product(tmp_path / "src")
    stored = []
    for workers in (0, 2):
        repo, result = _ingest(tmp_path, source, workers, monkeypatch)
        assert result.status == "added", result.reason
        tree = repo.backend.repo.head.peel().tree.id
        stored.append((tree, result.warnings))
        if workers == 0:
            assert not rendered
        packs = sorted((repo.root / "objects" / "pack").glob("*.pack"))
        # the commit's own pack; with workers, each stored its items' folders in one of its own
        assert len(packs) == (1 if workers == 0 else 3)
    assert worker_count() >= 1, "this test means something only where workers start"
    assert rendered.count(True) == N
    assert stored[0] == stored[1]
    warnings = stored[0][1]
    assert sum("missing.tif" in w for w in warnings) == len(range(3, N, 250))
    assert sum("no-such-licence" in w for w in warnings) == len(range(7, N, 300))


@pytest.mark.parametrize("fault", ["outside", "directory"])
def test_a_fault_found_by_a_worker_fails_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rendered: list[bool], fault: str
) -> None:
    """The worker has no answer for the faulty item: the parent renders it and raises the
    sequential plan's error; nothing is committed."""
    source = product(tmp_path / "src", fault)
    reasons = []
    for workers in (0, 2):
        repo, result = _ingest(tmp_path, source, workers, monkeypatch)
        assert result.status == "failed"
        assert len(list(repo.history())) == 1  # only the init
        reasons.append(result.reason)
    assert reasons[0] == reasons[1]
    assert ("it-00700" if fault == "outside" else "it-00800") in reasons[0]
    assert rendered.count(True) >= 600, "the workers answered for the items before the fault"


def _temporaries(repo: Repository) -> list[Path]:
    return gitpack.temporaries(repo.root / "objects") + list((repo.root / "lfs" / "tmp").glob("*"))


def test_folders_of_a_worker_that_does_not_report_are_done_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that ends without its report (its pack unfinished) stored folders the commit
    cannot use: the parent does those items again, and the same tree is committed."""
    source = product(tmp_path / "src")
    sequential, done = _ingest(tmp_path, source, 0, monkeypatch)
    expected = sequential.backend.repo.head.peel().tree.id

    def no_report(self: gitfolders.FolderPack) -> list[str]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gitfolders.FolderPack, "finish", no_report)
    repo, result = _ingest(tmp_path, source, 2, monkeypatch)
    assert result.status == "added", result.reason
    assert repo.backend.repo.head.peel().tree.id == expected
    assert result.warnings == done.warnings and done.warnings  # each once
    assert len(list((repo.root / "objects" / "pack").glob("*.pack"))) == 1
    assert _temporaries(repo) == []
    fsck(repo.root)


def test_folders_stored_ahead_go_with_a_failed_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers stored the folders, then the plan fails: nothing of theirs stays."""
    source = product(tmp_path / "src")
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", "2")
    repo = Repository.init(tmp_path / "repo", backend="git")
    packs = sorted((repo.root / "objects" / "pack").glob("*"))

    def failing(self: planner.Planner, *args: Any, **kwargs: Any) -> Any:
        assert self.folders, "the workers stored folders ahead"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(planner.Planner, "changeset", failing)
    result = repo.ingest([source]).results[0]
    assert result.status == "failed" and "No space left" in (result.reason or "")
    assert len(list(repo.history())) == 1
    assert sorted((repo.root / "objects" / "pack").glob("*")) == packs
    assert _temporaries(repo) == []


def test_an_item_changed_while_planned_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker reads the item again, as the sequential plan does: a file changed since it was
    validated is refused, whoever reads it."""
    source = product(tmp_path / "src")
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", "2")
    repo = Repository.init(tmp_path / "repo", backend="git")
    start = planner._Renders.start

    def changing(*args: Any) -> Any:
        victim = source.parent / "it-01100" / "it-01100.json"
        victim.write_text(victim.read_text().replace('"it-01100"', '"it-01100" '))
        return start(*args)

    monkeypatch.setattr(planner._Renders, "start", changing)
    result = repo.ingest([source]).results[0]
    assert result.status == "failed"
    assert "changed while it was being ingested" in (result.reason or "")
    assert "it-01100" in (result.reason or "")


KILLED_WHILE_PLANNING = textwrap.dedent(
    """
    import os, signal, sys
    from stac_repository import Repository
    from stac_repository.stac import planner

    take, taken = planner._Renders.take, []

    def dying(self, node):
        taken.append(node)
        if len(taken) == 600:  # the workers are at work, well ahead
            os.kill(os.getpid(), signal.SIGKILL)
        return take(self, node)

    planner._Renders.take = dying
    Repository.open(sys.argv[1]).ingest([sys.argv[2]])
    """
)


def test_kill_9_while_the_workers_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer dies mid-plan: its workers end, the lock is free at once, the branch is
    untouched, and the next ingest commits."""
    source = product(tmp_path / "src")
    repo = Repository.init(tmp_path / "repo", backend="git")
    repo.set_config("lock.timeout", "0")
    head = repo.backend.resolve("HEAD")
    env = {**os.environ, "STAC_REPOSITORY_WORKERS": "2"}
    code = [sys.executable, "-c", KILLED_WHILE_PLANNING, str(repo.root), str(source)]
    proc = subprocess.run(code, env=env, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert_no_process_naming(str(repo.root))
    reopened = Repository.open(repo.root)
    assert reopened.backend.resolve("HEAD") == head
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", "2")
    assert [r.status for r in reopened.ingest([source]).results] == ["added"]
    assert _temporaries(reopened) == []  # the dead workers' packs and LFS temporaries
    fsck(reopened.root)

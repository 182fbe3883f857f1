"""LFS objects added ahead by a forked child (backends/lfsahead.py): the answers come in order,
a failure hands the rest back to the parent, the child never holds the writer lock nor outlives
its parent, and a bulk ingest stores exactly what it stores without the child."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from stac_repository import Repository
from stac_repository.backends import lfsahead
from stac_repository.backends.lfs import Pointer, Store
from stac_repository.backends.locking import WriterLock

from .git_helpers import GIT, fsck, git
from .test_fault_injection import (
    _fill,
    assert_clean_failure,
    assert_next_command_works,
    assert_unchanged,
    cli,
    state,
    tmpfs,
)
from .test_repository import collection, item, write

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")


def _store(tmp_path: Path) -> Store:
    pygit2.init_repository(str(tmp_path / "repo"), bare=True)
    return Store(tmp_path / "repo")


def _file(folder: Path, name: str, data: bytes) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return str(folder / name)


def _pointer(data: bytes) -> Pointer:
    return Pointer(hashlib.sha256(data).hexdigest(), len(data))


def test_answers_come_in_order_and_a_failure_hands_the_rest_back(tmp_path: Path) -> None:
    store = _store(tmp_path)
    src = tmp_path / "src"
    a, c, d = b"first asset", b"third asset, long enough", b"never reached"
    sources = [
        _file(src, "a.tif", a),
        None,  # a blob that cannot be an LFS object
        _file(src, "empty.tif", b""),
        _file(src, "small.tif", b"tiny"),  # under the threshold
        _file(src, "c.tif", c),
        str(src / "missing.tif"),  # the child fails here
        _file(src, "d.tif", d),
    ]
    ahead = lfsahead.AddAhead(store, sources, threshold=10)
    try:
        answers = [ahead.next() for _ in sources]
    finally:
        ahead.close()
    assert answers == [_pointer(a), None, None, None, _pointer(c), None, None]
    for data in (a, c):
        assert store.path(_pointer(data).oid).read_bytes() == data
    assert not store.path(_pointer(d).oid).exists()  # the child stopped at its failure
    assert not list((store.root / "tmp").iterdir())


def _slow_sources(first: str, ready: Path) -> Iterator[str]:
    """Runs in the child: one source, then a long pause (the child stays alive meanwhile)."""
    yield first
    ready.write_text(str(os.getpid()))
    time.sleep(30)
    yield first


def _wait_for(path: Path) -> int:
    """The pid a child wrote to ``path`` (read once: a child may write it again meanwhile)."""
    deadline = time.monotonic() + 20
    while not (text := path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.01)
    return int(text)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie of an init that does not reap is gone too


def test_the_child_never_holds_the_writer_lock(tmp_path: Path) -> None:
    store = _store(tmp_path)
    source = _file(tmp_path / "src", "a.tif", b"content")
    lock = WriterLock(tmp_path / "lock", timeout=0)
    lock.acquire()
    ahead = lfsahead.AddAhead(store, _slow_sources(source, tmp_path / "ready"), threshold=0)
    try:
        child = _wait_for(tmp_path / "ready")
        assert ahead.next() == _pointer(b"content")
        lock.release()
        # The child is alive and forked while the lock was held: it must not hold it.
        assert not _gone(child)
        with WriterLock(tmp_path / "lock", timeout=0):
            pass
    finally:
        ahead.close()
    assert _gone(child)


PARENT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from stac_repository.backends import lfsahead
    from stac_repository.backends.lfs import Store

    def sources(source, ready):
        yield source
        ready.write_text(str(os.getpid()))
        while True:  # one source every 50 ms, for ever: the child ends only with its parent
            time.sleep(0.05)
            yield source

    store, source, ready = Store(Path(sys.argv[1])), sys.argv[2], Path(sys.argv[3])
    ahead = lfsahead.AddAhead(store, sources(source, ready), threshold=0)
    time.sleep(60)
    """
)


def test_the_child_ends_with_its_parent(tmp_path: Path) -> None:
    store = _store(tmp_path)
    source = _file(tmp_path / "src", "a.tif", b"content")
    ready = tmp_path / "ready"
    assert_kill_9_ends_the_child(PARENT, ready, str(store.root.parent), source, str(ready))


def assert_kill_9_ends_the_child(code: str, ready: Path, *args: str) -> None:
    """Run ``code`` in a parent process that forks a child (which writes its pid to ``ready``);
    kill -9 the parent: the child must be gone within 10 s."""
    parent = subprocess.Popen([sys.executable, "-c", code, *args])
    try:
        child = _wait_for(ready)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=20)
        deadline = time.monotonic() + 10
        while not _gone(child):
            assert time.monotonic() < deadline, "the child outlived its parent"
            time.sleep(0.02)
    finally:
        parent.kill()
        parent.wait()


def _bulk_product(root: Path, items: int) -> Path:
    """A collection of ``items`` items with three small assets each (more than MIN_OBJECTS)."""
    root.mkdir(parents=True)
    docs = []
    for n in range(items):
        doc = item(f"scene-{n:04d}", when=f"2020-01-{1 + n % 28:02d}T00:00:00Z", collection="bulk")
        for name in ("data.tif", "meta.xml", "qa.txt"):
            (root / f"{n:04d}-{name}").write_bytes(f"{name} of scene {n}\n".encode() * (1 + n % 5))
            doc["assets"][name] = {"href": f"./{n:04d}-{name}", "roles": ["data"]}
        write(root, f"scene-{n:04d}.json", doc)
        docs.append(doc)
    return write(root, "collection.json", collection("bulk", docs))


def _ingest(
    tmp_path: Path, name: str, source: Path, workers: str, monkeypatch: pytest.MonkeyPatch
) -> Repository:
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", workers)
    repo = Repository.init(tmp_path / name, backend="git")
    report = repo.ingest([source])
    assert [r.status for r in report.results] == ["added"], report.results
    return repo


def test_a_bulk_ingest_stores_the_same_with_and_without_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _bulk_product(tmp_path / "src", 120)
    started: list[int] = []
    real_start = lfsahead.start

    def counting_start(*args: object, **kwargs: object) -> lfsahead.AddAhead | None:
        ahead = real_start(*args, **kwargs)  # type: ignore[arg-type]
        if args[2] >= lfsahead.MIN_OBJECTS:  # the ingest's commit (every commit asks)
            started.append(ahead is not None)
        return ahead

    monkeypatch.setattr(lfsahead, "start", counting_start)
    alone = _ingest(tmp_path, "alone", source, "0", monkeypatch)
    helped = _ingest(tmp_path, "helped", source, "2", monkeypatch)
    assert started == [False, True]
    trees = [repo.backend.repo.head.peel(pygit2.Tree).id for repo in (alone, helped)]  # type: ignore[attr-defined]
    assert trees[0] == trees[1]
    objects = [_lfs_objects(repo) for repo in (alone, helped)]
    assert len(objects[0]) == 360 and objects[0] == objects[1]
    fsck(helped.root)
    if GIT is not None and subprocess.run([GIT, "lfs", "version"], capture_output=True).returncode == 0:
        assert "Git LFS fsck OK" in git(helped.root, "lfs", "fsck")
    helped.export(tmp_path / "export")
    assert _asset_digests(tmp_path / "export") == _asset_digests(tmp_path / "src")


def _lfs_objects(repo: Repository) -> list[str]:
    store = Path(repo.backend.git_dir) / "lfs/objects"  # type: ignore[attr-defined]
    return sorted(p.name for p in store.rglob("*") if p.is_file())


def _asset_digests(root: Path) -> list[str]:
    return sorted(
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".json"
    )


KILLED_INGEST = textwrap.dedent(
    """
    import sys
    from stac_repository import Repository
    Repository.open(sys.argv[1]).ingest([sys.argv[2]])
    """
)


def _processes_naming(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and not _gone(int(proc.name)):
            try:
                if text.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def assert_no_process_naming(text: str) -> None:
    """Within 10 s, no process has ``text`` in its command line (a killed writer's children)."""
    deadline = time.monotonic() + 10
    while _processes_naming(text):
        assert time.monotonic() < deadline, "a child outlived the killed writer"
        time.sleep(0.02)


def test_kill_9_while_the_child_adds_objects(tmp_path: Path) -> None:
    """The writer dies with its child at work: the child ends, the lock is free at once, the
    branch is untouched, and the next ingest commits with nothing left behind."""
    source = _bulk_product(tmp_path / "src", 120)
    repo = Repository.init(tmp_path / "repo", backend="git")
    repo.set_config("lock.timeout", "0")
    head = repo.backend.resolve("HEAD")
    env = {**os.environ, "STAC_REPOSITORY_CRASH_AT": "git-lfs-ahead", "STAC_REPOSITORY_WORKERS": "2"}
    proc = subprocess.run([sys.executable, "-c", KILLED_INGEST, str(repo.root), str(source)], env=env)
    assert proc.returncode == -signal.SIGKILL
    assert_no_process_naming(str(repo.root))
    reopened = Repository.open(repo.root)
    assert reopened.backend.resolve("HEAD") == head
    report = reopened.ingest([source])
    assert [r.status for r in report.results] == ["added"], report.results
    fsck(reopened.root)
    git_dir = Path(reopened.backend.git_dir)  # type: ignore[attr-defined]
    assert not list((git_dir / "lfs/tmp").glob("*"))
    assert len(_lfs_objects(reopened)) == 360


@pytest.mark.parametrize("free", [64 << 10, 512 << 10, 1 << 20])
def test_disk_full_while_the_child_adds_objects(
    free: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC in the child or in the parent's pack: one clear line, the repository as before,
    no temporary left, and the next commands work."""
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", "2")
    source = _bulk_product(tmp_path / "src", 120)
    mount = tmp_path / "mnt"
    with tmpfs(mount, 8 << 20) as mounted:
        if not mounted:
            pytest.skip("needs a tmpfs mount (root): the disk cannot fill otherwise")
        repo = mount / "repo"
        assert cli("-r", repo, "--backend", "git", "init", "--yes").returncode == 0
        before = state(repo)
        _fill(mount, free)
        proc = cli("-r", repo, "ingest", source)
        assert_clean_failure(proc, "No space left on device")
        (mount / "filler").unlink()
        assert_unchanged(repo, before)
        assert not list((repo / "lfs/tmp").glob("*"))
        assert_next_command_works(repo, tmp_path)


def test_no_child_to_be_had_leaves_the_objects_to_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork refused by the system (process or memory limits) is no error: no child, no pipe
    left open, and the ingest adds every object itself."""
    opened = len(os.listdir("/proc/self/fd"))

    def no_fork(child: object) -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(lfsahead, "fork", no_fork)
    store = _store(tmp_path)
    sources = [_file(tmp_path / "src", f"{n}.tif", b"x" * n) for n in range(1, 300)]
    assert lfsahead.start(store, sources, len(sources), threshold=0) is None
    assert len(os.listdir("/proc/self/fd")) == opened
    source = _bulk_product(tmp_path / "product", 100)
    repo = _ingest(tmp_path, "ingested", source, "2", monkeypatch)
    assert len(_lfs_objects(repo)) == 300
    fsck(repo.root)

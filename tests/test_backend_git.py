"""The git backend on real repositories: history, LFS, rollback, backups, crashes and concurrent writers.

Every check that git itself can make is made with the real git binary (fsck, log, clone, status).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pygit2
import pytest

from stac_repository import Repository
from stac_repository.backends import detect
from stac_repository.backends.base import ChangeSet
from stac_repository.backends.git import GitBackend
from stac_repository.backends.gitobjects import compose_message, parse_message
from stac_repository.backends.lfs import parse_pointer
from stac_repository.errors import BackendError, Locked, NotFound, UsageError

from .conftest import walk_list
from .git_helpers import (
    PLANET,
    TEST_CASE_1,
    TEST_CASE_6,
    catalog_digest,
    fsck,
    git,
    git_bytes,
    lfs_clean_filter,
    log_ids,
    needs_git,
    run_git,
)
from .test_lfs_ahead import _bulk_product

pytestmark = needs_git

_INGEST_SCRIPT = """
import sys
from stac_repository import Repository
report = Repository.open(sys.argv[1]).ingest(sys.argv[2:])
sys.exit(1 if report.failed else 0)
"""


def _init(path: Path, **options: Any) -> Repository:
    """A git repository with a working tree (what most tests here check), unless told otherwise."""
    options.setdefault("worktree", True)
    return Repository.init(path, backend="git", id="root", description="d", options=options)


def _ingest(repo: Repository, *sources: Path) -> list[str]:
    report = repo.ingest([str(s) for s in sources])
    assert not report.failed, report.to_json()
    return [r.commit or "" for r in report.results]


def _backend(repo: Repository) -> GitBackend:
    assert isinstance(repo.backend, GitBackend)
    return repo.backend


def _head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def _spawn_ingest(root: Path, *sources: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _INGEST_SCRIPT, str(root), *map(str, sources)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _assert_status_clean(root: Path, tmp_path: Path) -> None:
    """The index and working tree agree with HEAD, LFS files included (as git-lfs would see them)."""
    status = git(root, *lfs_clean_filter(tmp_path), "status", "--porcelain", "--untracked-files=all")
    assert status == ""


def _assert_worktree_is_head(repo: Repository, tmp_path: Path, name: str) -> None:
    repo.export(tmp_path / name)
    assert catalog_digest(repo.root) == catalog_digest(tmp_path / name)


# -- creation and history ---------------------------------------------------------------------


def test_init_makes_a_plain_git_repository(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    root = repo.root
    assert (root / ".git").is_dir() and (root / "catalog.json").is_file()
    assert detect(root) is GitBackend
    assert Repository.open(root).backend.name == "git"
    assert git(root, "log", "--format=%s").splitlines() == ["init: root catalog 'root'"]
    assert git(root, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    fsck(root)
    _assert_status_clean(root, tmp_path)


def test_one_commit_per_product_with_its_summary(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    commits = _ingest(repo, TEST_CASE_1, PLANET)
    history = list(repo.history())
    assert [c.id for c in history] == [*reversed(commits), history[-1].id]
    assert [c.id for c in history] == log_ids(repo.root)
    assert history[0].parents == (history[1].id,) and history[-1].parents == ()
    assert history[0].message.startswith("ingest planet-disaster-data (stac")
    assert history[0].summary["added"][0] == "planet-disaster-data"
    assert history[0].summary["counts"] == {"added": 8, "updated": 0, "removed": 0}
    assert history[1].summary["added"][0] == "test"
    assert history[1].summary["counts"]["added"] == 15
    assert history[-1].summary == {"added": ["root"]}
    assert history[0].time.tzinfo is not None
    assert [c.id for c in repo.history("HEAD~1")] == [c.id for c in history[1:]]
    fsck(repo.root)


def test_export_at_each_commit_equals_the_catalog_as_it_was(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    states: dict[str, dict[str, str]] = {}
    for source in (TEST_CASE_1, PLANET, TEST_CASE_6):
        (commit,) = _ingest(repo, source)
        states[commit] = catalog_digest(repo.root)
        _assert_worktree_is_head(repo, tmp_path, f"head-{commit}")
    assert len({orjson.dumps(s) for s in states.values()}) == 3
    for commit, state in states.items():
        repo.export(tmp_path / commit, ref=commit)
        assert catalog_digest(tmp_path / commit) == state
    _assert_status_clean(repo.root, tmp_path)


def test_log_of_ten_thousand_commits_takes_under_a_second(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r", worktree=False)
    root = repo.root
    head = _head(root)
    stream = []
    for n in range(10_000):
        message = compose_message(f"ingest item-{n}", {"added": [f"item-{n}"], "updated": [], "removed": []})
        data = message.encode()
        stream.append(f"commit refs/heads/main\nmark :{n + 1}\ncommitter A <a@b> {1_700_000_000 + n} +0000\n")
        stream.append(f"data {len(data)}\n{message}\nfrom {head if n == 0 else f':{n}'}\n\n")
    git_bytes(root, "fast-import", "--quiet", stdin="".join(stream).encode())
    started = time.perf_counter()
    history = list(Repository.open(root).history())
    elapsed = time.perf_counter() - started
    assert len(history) == 10_001
    assert history[0].summary["added"] == ["item-9999"] and history[0].message == "ingest item-9999"
    assert elapsed < 1.0, f"log of 10k commits took {elapsed:.2f} s"


def test_commit_message_trailer_round_trips() -> None:
    summary = {"added": ["a\nb"], "updated": [], "removed": ["x"], "n": 3}
    raw = compose_message("ingest a\n\nbody line", summary)
    assert parse_message(raw) == ("ingest a", summary)
    assert parse_message("by hand\n\nno trailer\n") == ("by hand", {})
    assert parse_message("x\n\nStac-Repository-Summary: {broken\n") == ("x", {})


def test_author_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAC_REPOSITORY_AUTHOR", "Ada Lovelace <ada@example.org>")
    repo = _init(tmp_path / "r")
    assert git(repo.root, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip() == (
        "Ada Lovelace <ada@example.org>|Ada Lovelace <ada@example.org>"
    )
    monkeypatch.setenv("STAC_REPOSITORY_AUTHOR", "no email here")
    with repo.backend.transaction(timeout=1) as tx, pytest.raises(UsageError, match="Name <email>"):
        tx.commit(ChangeSet("x", writes={"x.json": b"1"}))


# -- refs -------------------------------------------------------------------------------------


def _commit_at(backend: GitBackend, when: int, message: str) -> str:
    """A commit with the head's tree and a chosen commit time, appended to the branch."""
    repo = backend.repo
    head = backend.head()
    signature = pygit2.Signature("t", "t@example.org", when, 0)
    oid = repo.create_commit(backend.branch, signature, signature, message, head.tree_id, [head.id])
    return str(oid)


def _iso(timestamp: int, *, local: bool = False) -> str:
    when = dt.datetime.fromtimestamp(timestamp, None if local else dt.UTC)
    return when.isoformat(timespec="seconds")


def test_resolve_refs(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    backend = _backend(repo)
    first = _head(repo.root)
    t0 = backend.head().commit_time
    day = 86_400
    old = _commit_at(backend, t0 + day, "a day later")
    new = _commit_at(backend, t0 + 2 * day, "two days later")
    git(repo.root, "tag", "v1", old)
    assert backend.resolve(new) == new
    assert backend.resolve(new[:7]) == new
    assert backend.resolve("HEAD") == new
    assert backend.resolve("HEAD~1") == old
    assert backend.resolve("HEAD^^") == first
    assert backend.resolve("main") == new
    assert backend.resolve("v1") == old
    assert backend.resolve(_iso(t0)) == first
    assert backend.resolve(_iso(t0 + day)) == old  # at: the commit itself
    assert backend.resolve(_iso(t0 + day, local=True)) == old  # a naive time is local time
    assert backend.resolve(_iso(t0 + 2 * day - 1).replace("+00:00", "Z")) == old
    assert backend.resolve(_iso(t0 + 3 * day)) == new
    assert backend.resolve("2999-01-01") == new
    with pytest.raises(NotFound, match="no commit at or before"):
        backend.resolve(_iso(t0 - 60))
    for unknown in ("nope", "HEAD~9", "deadbeef"):
        with pytest.raises(NotFound, match="unknown ref"):
            backend.resolve(unknown)
    for odd in ("-x", "--all", "HEAD:catalog.json", "a..b", "main@{1}", "x y", "", "../x", "2026-13-45"):
        with pytest.raises(UsageError):
            backend.resolve(odd)
    with pytest.raises(NotFound):
        repo.export(tmp_path / "e", ref="nope")


# -- snapshots --------------------------------------------------------------------------------


def test_snapshot_contract_and_deletes(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    backend = _backend(repo)
    asset = tmp_path / "asset.bin"
    asset.write_bytes(os.urandom(3000))
    (tmp_path / "empty").write_bytes(b"")
    with backend.transaction(timeout=1) as tx:
        commit = tx.commit(
            ChangeSet(
                "add",
                writes={"a/doc.json": b"{}", "a/b/c.json": b"[]", "a-z.json": b"1"},
                blobs={"a/b/data.bin": asset, "a/empty.bin": tmp_path / "empty"},
            )
        )
    assert commit is not None
    with backend.snapshot() as snap:
        files = list(snap.walk())
        assert files == sorted(files)
        assert "a/b/data.bin" in files and ".gitattributes" not in "".join(files)
        assert list(snap.walk("a/b")) == ["a/b/c.json", "a/b/data.bin"]
        assert list(snap.walk("a/doc.json")) == ["a/doc.json"]
        assert list(snap.walk("missing")) == []
        assert snap.read("a/b/data.bin") == asset.read_bytes()
        with snap.open("a/b/data.bin") as stream:
            assert stream.read() == asset.read_bytes()
        assert snap.read("a/empty.bin") == b""
        assert snap.exists("a/doc.json") and not snap.exists("a") and not snap.exists("a/b/.gitattributes")
        with pytest.raises(NotFound):
            snap.read("a/b/.gitattributes")
        with pytest.raises(NotFound):
            snap.read("nope.json")
    pointer = parse_pointer(git(repo.root, "cat-file", "blob", "HEAD:a/b/data.bin").encode())
    assert pointer is not None and pointer.oid == hashlib.sha256(asset.read_bytes()).hexdigest()
    assert git(repo.root, "cat-file", "blob", "HEAD:a/empty.bin") == ""
    assert (repo.root / "a/b/data.bin").read_bytes() == asset.read_bytes()

    with backend.transaction(timeout=1) as tx:
        assert tx.commit(ChangeSet("same", writes={"a/doc.json": b"{}"})) is None
        with pytest.raises(BackendError, match="git-reserved"):
            tx.commit(ChangeSet("bad", writes={"x/.gitattributes": b"* -text"}))
        tx.commit(ChangeSet("drop a file", deletes={"a/b/data.bin"}))
        assert not tx.snapshot.exists("a/b/data.bin")
        assert run_git(repo.root, "cat-file", "-e", "HEAD:a/b/.gitattributes").returncode != 0
        tx.commit(ChangeSet("drop a folder", deletes={"a"}))
    with backend.snapshot() as snap:
        assert [p for p in snap.walk() if p.startswith("a")] == ["a-z.json"]
    assert not (repo.root / "a").exists()
    assert [c.message for c in repo.history()][:3] == ["drop a folder", "drop a file", "add"]
    fsck(repo.root)
    _assert_status_clean(repo.root, tmp_path)


def test_working_tree_updates_never_follow_planted_symlinks(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.json").write_text("{}")
    with repo.backend.transaction(timeout=1) as tx:
        tx.commit(ChangeSet("add", writes={"x/keep.json": b"1", "x/y/a.json": b"2"}))
    shutil.rmtree(repo.root / "x")
    (repo.root / "x").symlink_to(outside, target_is_directory=True)
    with repo.backend.transaction(timeout=1) as tx:
        tx.commit(ChangeSet("change", writes={"x/y/b.json": b"3"}, deletes={"x/keep.json"}))
    assert sorted(p.name for p in outside.iterdir()) == ["keep.json"]
    assert (repo.root / "x/y/b.json").read_bytes() == b"3" and not (repo.root / "x").is_symlink()


# -- LFS --------------------------------------------------------------------------------------


def _tifs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.tif") if ".git" not in p.parts)


def test_assets_are_stored_in_lfs(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    _ingest(repo, PLANET)
    root = repo.root
    tifs = _tifs(root)
    sources = {p.name: p for p in _tifs(PLANET.parent)}
    assert tifs and {p.name for p in tifs} <= set(sources)
    for tif in tifs:
        rel = tif.relative_to(root).as_posix()
        real = sources[tif.name].read_bytes()
        pointer = parse_pointer(git(root, "cat-file", "blob", f"HEAD:{rel}").encode())
        assert pointer is not None and pointer.size == len(real)
        assert pointer.oid == hashlib.sha256(real).hexdigest()
        stored = root / ".git/lfs/objects" / pointer.oid[:2] / pointer.oid[2:4] / pointer.oid
        assert stored.read_bytes() == real
        assert tif.read_bytes() == real
        with repo.backend.snapshot() as snap:
            assert snap.read(rel) == real
        assert git(root, "check-attr", "filter", "--", rel).strip().endswith("filter: lfs")
    documents = [p for p in root.rglob("*.json") if ".git" not in p.parts]
    for doc in documents:
        rel = doc.relative_to(root).as_posix()
        assert git(root, "cat-file", "blob", f"HEAD:{rel}").encode() == doc.read_bytes()
    fsck(root)
    _assert_status_clean(root, tmp_path)


def test_lfs_threshold_keeps_small_assets_in_git(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    backend = _backend(repo)
    with backend.transaction(timeout=1) as tx:
        config = orjson.loads(tx.snapshot.read(".stac-repository/config.json"))
        config["lfs"] = {"threshold": 100_000}
        tx.commit(
            ChangeSet("config lfs.threshold", writes={".stac-repository/config.json": orjson.dumps(config)})
        )
    _ingest(repo, PLANET)
    sizes = {p.name: p.stat().st_size for p in _tifs(repo.root)}
    for tif in _tifs(repo.root):
        rel = tif.relative_to(repo.root).as_posix()
        is_pointer = parse_pointer(git_bytes(repo.root, "cat-file", "blob", f"HEAD:{rel}")) is not None
        assert is_pointer == (sizes[tif.name] >= 100_000), tif.name
    assert any(s < 100_000 for s in sizes.values()) and any(s >= 100_000 for s in sizes.values())
    _assert_status_clean(repo.root, tmp_path)


# -- rollback ---------------------------------------------------------------------------------


def test_rollback_and_rollback_of_the_rollback(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    (a,) = _ingest(repo, TEST_CASE_1)
    state_a = catalog_digest(repo.root)
    (b,) = _ingest(repo, PLANET)
    state_b = catalog_digest(repo.root)

    undo = repo.rollback("HEAD~1")
    assert undo is not None and undo.summary["restored"] == a and undo.parents == (b,)
    assert catalog_digest(repo.root) == state_a
    assert git(repo.root, "rev-parse", "HEAD^{tree}") == git(repo.root, "rev-parse", f"{a}^{{tree}}")
    assert not _tifs(repo.root)

    redo = repo.rollback("HEAD~1")
    assert redo is not None and redo.summary["restored"] == b
    assert catalog_digest(repo.root) == state_b
    assert git(repo.root, "rev-parse", "HEAD^{tree}") == git(repo.root, "rev-parse", f"{b}^{{tree}}")
    assert repo.rollback("HEAD") is None
    removed = {"removed": ["planet-disaster-data"]}
    again = _backend(repo).restore(a, timeout=1, message="by id", summary=removed)
    assert again is not None and again.summary == {**removed, "restored": a, "ref": a}
    assert next(iter(repo.history())).summary == again.summary
    assert [c.id for c in repo.history()][3:5] == [b, a]
    assert len(list(repo.history())) == 6
    fsck(repo.root)
    _assert_status_clean(repo.root, tmp_path)


# -- backups ----------------------------------------------------------------------------------


def test_backup_and_restore_keep_commit_ids_and_content(tmp_path: Path, cli: Any) -> None:
    repo = _init(tmp_path / "r")
    _ingest(repo, TEST_CASE_1, PLANET)
    files = repo.backup(tmp_path / "backup")
    backup = tmp_path / "backup"
    assert files == sum(1 for _ in repo.backend.snapshot().walk())
    assert log_ids(backup) == log_ids(repo.root)
    assert any((backup / "lfs/objects").rglob("*")) and detect(backup) is GitBackend
    fsck(backup)

    bare = Repository.restore_backup(backup, tmp_path / "bare")  # the default layout
    assert bare.backend.name == "git" and (bare.root / "HEAD").is_file()
    assert log_ids(bare.root) == log_ids(repo.root)
    fsck(bare.root)
    restored = Repository.restore_backup(backup, tmp_path / "restored", options={"worktree": True})
    assert restored.backend.name == "git" and (restored.root / ".git").is_dir()
    assert log_ids(restored.root) == log_ids(repo.root)
    assert catalog_digest(restored.root) == catalog_digest(repo.root)
    repo.export(tmp_path / "e1")
    restored.export(tmp_path / "e2")
    assert catalog_digest(tmp_path / "e1") == catalog_digest(tmp_path / "e2")
    fsck(restored.root)
    _assert_status_clean(restored.root, tmp_path)
    _ingest(restored, TEST_CASE_6)

    proc = cli("--repository", tmp_path / "via-cli", "init", "--from-backup", backup)
    assert proc.returncode == 0, proc.stderr
    assert log_ids(tmp_path / "via-cli") == log_ids(repo.root)

    repo.backup(tmp_path / "older", ref="HEAD~1")
    assert log_ids(tmp_path / "older") == log_ids(repo.root)[1:]
    assert not any((tmp_path / "older/lfs/objects").rglob("*"))
    with pytest.raises(UsageError):
        repo.backup(backup)


def test_plain_git_clone_holds_the_catalog(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    _ingest(repo, TEST_CASE_1, PLANET)
    git(tmp_path, "clone", "--quiet", str(repo.root), "clone")
    clone = tmp_path / "clone"
    original = catalog_digest(repo.root)
    cloned = catalog_digest(clone)
    assert set(cloned) == set(original)
    documents = {p: d for p, d in original.items() if p.endswith(".json")}
    assert documents and {p: d for p, d in cloned.items() if p.endswith(".json")} == documents
    assert (clone / ".stac-repository/config.json").is_file()
    opened = Repository.open(clone)
    assert [c.id for c in opened.history()] == [c.id for c in repo.history()]
    assert opened.root_document()["id"] == "root"


def test_bare_repository_option(tmp_path: Path) -> None:
    repo = _init(tmp_path / "bare", worktree=False)
    _ingest(repo, PLANET)
    assert not (repo.root / "catalog.json").exists() and (repo.root / "HEAD").is_file()
    assert detect(repo.root) is GitBackend
    repo.export(tmp_path / "e")
    assert (tmp_path / "e/catalog.json").is_file() and _tifs(tmp_path / "e")
    fsck(repo.root)
    with pytest.raises(UsageError, match="unknown git backend options"):
        _init(tmp_path / "other", colour="blue")


# -- concurrency and crashes ------------------------------------------------------------------


def test_second_writer_waits_then_fails_clearly(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    with repo.backend.transaction(timeout=1):
        other = GitBackend(repo.root)
        started = time.monotonic()
        with pytest.raises(Locked, match="locked by PID"), other.transaction(timeout=0.3):
            pass
        assert time.monotonic() - started >= 0.3


def test_two_concurrent_writers_both_land(tmp_path: Path) -> None:
    repo = _init(tmp_path / "r")
    with repo.backend.transaction(timeout=1):  # both writers start while the lock is taken
        writers = [_spawn_ingest(repo.root, TEST_CASE_1), _spawn_ingest(repo.root, PLANET, TEST_CASE_6)]
        time.sleep(1.0)
    for proc in writers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    history = list(Repository.open(repo.root).history())
    assert len(history) == 4 and history[-1].message.startswith("init")
    assert all(c.message.startswith("ingest ") for c in history[:3])
    assert all(c.parents == (history[n + 1].id,) for n, c in enumerate(history[:3]))
    fsck(repo.root)
    _assert_worktree_is_head(Repository.open(repo.root), tmp_path, "export")
    _assert_status_clean(repo.root, tmp_path)


@pytest.mark.parametrize(
    ("crash_at", "lands", "worktree"),
    [
        ("git-objects-written", False, True),
        ("git-worktree-file", False, True),
        ("git-branch-moved", True, True),
        ("git-objects-written", False, False),  # bare, the default layout
        ("git-branch-moved", True, False),
    ],
)
def test_kill_9_leaves_a_complete_commit(tmp_path: Path, crash_at: str, lands: bool, worktree: bool) -> None:
    repo = _init(tmp_path / "r", worktree=worktree)
    _ingest(repo, TEST_CASE_1)
    before = _head(repo.root)
    proc = _spawn_ingest(repo.root, PLANET, env={"STAC_REPOSITORY_CRASH_AT": crash_at})
    proc.communicate(timeout=120)
    assert proc.returncode == -9
    after = _head(repo.root)
    assert (after != before) == lands
    assert log_ids(repo.root)[1 if lands else 0] == before
    reopened = Repository.open(repo.root)  # repairs the working tree if the branch moved
    fsck(repo.root)
    _assert_head_readable(reopened, tmp_path, "export", planet=lands)
    if worktree:
        _assert_worktree_is_head(reopened, tmp_path, "export-again")
        _assert_status_clean(repo.root, tmp_path)
    _ingest(reopened, TEST_CASE_6)
    fsck(repo.root)


def _assert_head_readable(repo: Repository, tmp_path: Path, name: str, *, planet: bool) -> None:
    """The branch's catalog exports whole: planet-disaster's 5 items in it exactly when expected."""
    repo.export(tmp_path / name)
    items = {i for k, i, _ in walk_list(tmp_path / name / "catalog.json") if k == "Item"}
    assert ("20170831_172754_101c" in items) == planet, sorted(items)


@pytest.mark.parametrize("worktree", [True, False], ids=["worktree", "bare"])
def test_kill_9_at_random_moments(tmp_path: Path, worktree: bool) -> None:
    repo = _init(tmp_path / "r", worktree=worktree)
    for delay in (0.5, 0.8, 1.1):
        proc = _spawn_ingest(repo.root, PLANET, TEST_CASE_1, TEST_CASE_6)
        time.sleep(delay)
        proc.kill()
        proc.wait(timeout=30)
        reopened = Repository.open(repo.root)
        fsck(repo.root)
        assert log_ids(repo.root)[0] == reopened.backend.resolve("HEAD")
        if worktree:
            _assert_worktree_is_head(reopened, tmp_path, f"export-{delay}")
        else:
            reopened.export(tmp_path / f"export-{delay}")
            assert walk_list(tmp_path / f"export-{delay}" / "catalog.json")


# -- large transactions go into one pack -------------------------------------------------------


@pytest.mark.parametrize("worktree", [False, True], ids=["bare", "worktree"])
def test_a_large_ingest_writes_its_blobs_as_one_pack(tmp_path: Path, corpus: Path, worktree: bool) -> None:
    """test-case-4 (62 items, more files than PACK_THRESHOLD): its blobs land in one new pack that
    git reads and verifies, nothing is left loose but trees and the commit, and the export, a
    clone and a later small ingest (loose objects again) all hold the whole catalog."""
    repo = _init(tmp_path / "r", worktree=worktree)
    git_dir = Path(repo.backend.git_dir)  # type: ignore[attr-defined]
    packs_before = set((git_dir / "objects/pack").glob("*.pack"))
    source = corpus / "pystac/catalogs/test-case-4/catalog.json"
    _ingest(repo, source)
    new_packs = set((git_dir / "objects/pack").glob("*.pack")) - packs_before
    assert len(new_packs) == 1
    pack = new_packs.pop()
    assert pack.with_suffix(".idx").is_file()
    verify = run_git(git_dir, "verify-pack", "-v", str(pack.with_suffix(".idx")))
    assert verify.returncode == 0, verify.stderr
    packed = {line.split()[0] for line in verify.stdout.splitlines() if " blob " in line}
    assert len(packed) > 62
    loose = {
        p.parent.name + p.name
        for p in (git_dir / "objects").glob("??/*")
        if run_git(git_dir, "cat-file", "-t", p.parent.name + p.name).stdout.strip() == "blob"
    }
    assert not loose & packed
    assert not list((git_dir / "objects/pack").glob(".stac-repository-tmp-pack-*"))
    fsck(repo.root)
    repo.export(tmp_path / "export")
    items = [i for k, i, _ in walk_list(tmp_path / "export" / "catalog.json") if k == "Item"]
    assert len(items) == 62
    git(tmp_path, "clone", "--quiet", str(repo.root), "clone")
    documents = [
        {k: v for k, v in catalog_digest(tmp_path / d).items() if k.endswith(".json")}
        for d in ("clone", "export")
    ]
    assert documents[0] == documents[1]
    _ingest(repo, TEST_CASE_1)  # small: loose objects beside the pack
    assert len(set((git_dir / "objects/pack").glob("*.pack")) - packs_before) == 1
    fsck(repo.root)


@pytest.mark.skipif(shutil.which("strace") is None or sys.platform != "linux", reason="needs strace on Linux")
@pytest.mark.parametrize("worktree", [False, True], ids=["bare", "worktree"])
def test_a_large_commit_syncs_its_own_file_system_only(tmp_path: Path, worktree: bool) -> None:
    """Past a few dozen files (here 360 LFS objects) a commit is made durable with syncfs(2) on
    the repository's file system, never sync(2), which would wait for every other file system's
    pending writes."""
    repo = _init(tmp_path / "r", worktree=worktree)
    source = _bulk_product(tmp_path / "src", 120)
    log = tmp_path / "strace.log"
    cli = Path(sys.executable).parent / "stac-repository"
    proc = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-o",
            str(log),
            "-e",
            "trace=sync,syncfs",
            str(cli),
            "-r",
            str(repo.root),
            "ingest",
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    calls = [line.split("(", 1)[0].split()[-1] for line in log.read_text().splitlines() if "(" in line]
    assert "syncfs" in calls and "sync" not in calls, calls
    fsck(repo.root)


def test_folders_stored_ahead_in_a_repository_with_a_working_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The render workers' packs are in place before the working tree is written from them."""
    from .test_item_renders import product

    source = product(tmp_path / "src")
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", "2")
    repo = _init(tmp_path / "r")
    assert _ingest(repo, source)[0] != ""
    assert len(list((repo.root / ".git" / "objects" / "pack").glob("*.pack"))) == 3  # the workers' two
    _assert_status_clean(repo.root, tmp_path)
    _assert_worktree_is_head(repo, tmp_path, "export")
    fsck(repo.root)

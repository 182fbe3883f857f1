"""push and pull against a local bare remote, through the real CLI: history, assets (LFS) and the
working tree travel; divergence either way is refused in one line and changes nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pygit2
import pytest

from stac_repository import Repository
from stac_repository.backends.gitobjects import lfs_objects_added, reachable
from stac_repository.errors import UsageError
from stac_repository.repository import config as cfg
from stac_repository.repository.remote import local_path

from .conftest import run_cli
from .git_helpers import (
    PLANET,
    TEST_CASE_1,
    TEST_CASE_6,
    catalog_digest,
    digest,
    fsck,
    git,
    lfs_clean_filter,
    log_ids,
    needs_git,
)

pytestmark = needs_git

TEST_CASE_2 = TEST_CASE_1.parents[1] / "test-case-2/catalog.json"


def _cli(*args: Any) -> Any:
    return run_cli(*args, check=True)


def _json(*args: Any) -> Any:
    return json.loads(_cli(*args, "--json").stdout)


def _refused(proc: Any, message: str) -> None:
    """Exit 1 and exactly one line: the message, no traceback."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr == f"error: {message}\n"


def _bare_remote(tmp_path: Path) -> Path:
    """A fresh ``git init --bare``: its HEAD names master, a branch that push never makes."""
    git(tmp_path, "init", "--quiet", "--bare", "remote.git")
    return tmp_path / "remote.git"


def _origin(tmp_path: Path, remote: Path) -> Path:
    """Repository A, with remote.url set (a local setting: no commit, not pushed)."""
    a = tmp_path / "A"
    _cli("-r", a, "--backend", "git", "init", "--yes", "--worktree", "--description", "A")
    _cli("-r", a, "config", "remote.url", remote)
    _cli("-r", a, "ingest", TEST_CASE_1)
    assert _json("-r", a, "push")["status"] == "pushed"
    return a


def _lfs_files(git_dir: Path) -> set[str]:
    return {p.name for p in (git_dir / "lfs/objects").rglob("*") if p.is_file()}


def _state(*roots: Path) -> list[Any]:
    """Everything push or pull could change: refs, HEAD, files (.git's LFS store included)."""
    state: list[Any] = []
    for root in roots:
        state.append(git(root, "for-each-ref", "--format=%(refname) %(objectname)"))
        state.append(git(root, "symbolic-ref", "HEAD"))
        state.append(digest(root, skip=(".git", "objects")))
        git_dir = root / ".git" if (root / ".git").is_dir() else root
        state.append(_lfs_files(git_dir))
    return state


def _assert_worktree_in_sync(root: Path, tmp_path: Path) -> None:
    """The working tree and index are HEAD's catalog, LFS files included (as git-lfs would see them)."""
    status = git(root, *lfs_clean_filter(tmp_path), "status", "--porcelain", "--untracked-files=all")
    assert status == ""
    export = tmp_path / f"export-of-{root.name}"
    _cli("-r", root, "export", export)
    assert catalog_digest(root) == catalog_digest(export)


def test_push_then_pull_carries_history_assets_and_working_tree(tmp_path: Path) -> None:
    remote = _bare_remote(tmp_path)
    a = _origin(tmp_path, remote)
    assert log_ids(remote) == log_ids(a) and len(log_ids(a)) == 2  # init, ingest: no config commit
    assert git(remote, "symbolic-ref", "HEAD").strip() == "refs/heads/main"  # adopted by the push

    b = tmp_path / "B"
    _cli("-r", b, "init", "--from-backup", remote, "--worktree")
    assert log_ids(b) == log_ids(a) and not _lfs_files(b / ".git")
    assert Repository.open(b).get_config("remote.url") is None  # each copy names its own remote
    _cli("-r", b, "config", "remote.url", remote)

    _cli("-r", a, "ingest", PLANET)
    assets = _lfs_files(a / ".git")
    assert len(assets) >= 3  # the .tif files and the metadata .xml of planet-disaster
    pushed = _json("-r", a, "push")
    assert pushed["status"] == "pushed" and pushed["commits"] == 1
    assert pushed["lfs_objects"] == len(assets) and _lfs_files(remote) == assets
    assert pushed["local"] == pushed["remote"] == log_ids(a)[0]

    pulled = _json("-r", b, "pull")
    assert pulled == {**pushed, "action": "pull", "status": "pulled"}
    log_format = "--format=%H %T %P %an %ae %at %s"
    assert git(b, "log", log_format) == git(a, "log", log_format)
    assert _lfs_files(b / ".git") == assets

    # Identical exports, with the real asset bytes (not LFS pointers).
    _cli("-r", a, "export", tmp_path / "ea")
    _cli("-r", b, "export", tmp_path / "eb")
    exported = catalog_digest(tmp_path / "eb")
    assert exported == catalog_digest(tmp_path / "ea")
    tifs = sorted((tmp_path / "eb").rglob("*.tif"))
    assert len(tifs) >= 2
    for tif in tifs:
        original = next(PLANET.parent.rglob(tif.name))
        assert hashlib.sha256(tif.read_bytes()).digest() == hashlib.sha256(original.read_bytes()).digest()
    _assert_worktree_in_sync(b, tmp_path)

    # The id index came with the tree: B finds the pulled product and knows its version.
    assert json.loads(_cli("-r", b, "show", "planet-disaster-data").stdout)["path"]
    assert _json("-r", b, "ingest", PLANET)["summary"]["skipped"] == 1

    assert _json("-r", b, "pull")["status"] == "up-to-date"
    assert _json("-r", a, "push")["status"] == "up-to-date"
    assert "up to date" in _cli("-r", b, "push").stdout

    # And back: B's commit reaches A through the remote.
    _cli("-r", b, "ingest", TEST_CASE_6)
    assert _json("-r", b, "push")["commits"] == 1
    assert _json("-r", a, "pull")["status"] == "pulled"
    assert log_ids(a) == log_ids(b) == log_ids(remote)
    _assert_worktree_in_sync(a, tmp_path)
    for root in (a, b, remote):
        fsck(root)


def test_divergence_is_refused_both_ways_and_changes_nothing(tmp_path: Path) -> None:
    remote = _bare_remote(tmp_path)
    a = _origin(tmp_path, remote)
    b = tmp_path / "B"
    _cli("-r", b, "init", "--from-backup", remote, "--worktree")
    _cli("-r", b, "config", "remote.url", remote)

    _cli("-r", a, "ingest", TEST_CASE_6)
    _cli("-r", a, "push")
    before = _state(b, remote)
    behind = "remote main is 1 commit ahead of local main: push refused; pull first"
    _refused(run_cli("-r", b, "push"), behind)
    assert _state(b, remote) == before

    _cli("-r", b, "ingest", TEST_CASE_2)
    _cli("-r", b, "ingest", PLANET)
    before = _state(b, remote)
    diverged = "remote main has diverged from local main (2 local, 1 remote commit)"
    _refused(run_cli("-r", b, "push"), f"{diverged}: push refused; reconcile with git")
    _refused(run_cli("-r", b, "pull"), f"{diverged}: pull refused; reconcile with git")
    assert _state(b, remote) == before
    _assert_worktree_in_sync(b, tmp_path)

    # Local commits the remote lacks are no divergence for pull: nothing to do.
    _cli("-r", a, "ingest", TEST_CASE_2)
    ahead = _json("-r", a, "pull")
    assert ahead["status"] == "ahead" and ahead["commits"] == 1
    assert "local main is 1 commit ahead" in _cli("-r", a, "pull").stdout
    for root in (a, b, remote):
        fsck(root)


def test_no_remote_is_a_usage_error(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    _cli("-r", repo, "--backend", "git", "init", "--yes", "--description", "r")
    for verb in ("push", "pull"):
        proc = run_cli("-r", repo, verb)
        assert proc.returncode == 2 and "remote.url" in proc.stderr and "Traceback" not in proc.stderr
    files = tmp_path / "files"
    _cli("-r", files, "init", "--yes", "--description", "f")
    proc = run_cli("-r", files, "push", "--url", tmp_path / "x.git")
    assert proc.returncode == 2 and "git backend" in proc.stderr


def test_unreachable_remote_fails_in_one_line(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    _cli("-r", repo, "--backend", "git", "init", "--yes", "--description", "r")
    _cli("-r", repo, "config", "remote.url", tmp_path / "missing.git")
    before = log_ids(repo)
    for verb in ("push", "pull"):
        proc = run_cli("-r", repo, verb)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith(f"error: cannot reach the remote {tmp_path / 'missing.git'}: ")
    assert log_ids(repo) == before
    proc = run_cli("-r", repo, "push", "--url", "ext::sh -c touch% pwned")
    assert proc.returncode == 1 and "not allowed" in proc.stderr and not (repo / "pwned").exists()


def test_pull_into_bare_and_plain_clone_from_a_working_repository(tmp_path: Path) -> None:
    """Any git stac-repository is a remote; a bare one and a plain ``git clone`` (no working-tree
    marker) pull too."""
    a = tmp_path / "A"
    _cli("-r", a, "--backend", "git", "init", "--yes", "--worktree", "--description", "A")
    _cli("-r", a, "ingest", TEST_CASE_1)
    _cli("-r", a, "backup", tmp_path / "bare")
    git(tmp_path, "clone", "--quiet", str(a), "clone")
    _cli("-r", a, "ingest", PLANET)

    for copy in (tmp_path / "bare", tmp_path / "clone"):
        pulled = _json("-r", copy, "pull", "--url", a)
        assert pulled["status"] == "pulled" and pulled["commits"] == 1 and pulled["lfs_objects"] >= 3
        assert log_ids(copy) == log_ids(a)
        _cli("-r", copy, "export", tmp_path / f"e-{copy.name}")
        assert catalog_digest(tmp_path / f"e-{copy.name}") == catalog_digest(a)
        fsck(copy)
    assert catalog_digest(tmp_path / "clone") == catalog_digest(a)
    # Pushing into a working repository's checked-out branch is git's to refuse, in one line.
    _cli("-r", tmp_path / "clone", "ingest", TEST_CASE_6)
    proc = run_cli("-r", tmp_path / "clone", "push", "--url", a)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "checked out" in proc.stderr
    assert git(a, "rev-parse", "HEAD").strip() == log_ids(tmp_path / "bare")[0]


def test_remote_url_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cfg.parse("remote.url", "remote.git") == str(tmp_path / "remote.git")
    assert cfg.parse("remote.url", "") is None
    for kept in ("ssh://host/x.git", "git@host:x.git", "https://host/x.git", "file:///srv/x.git"):
        assert cfg.parse("remote.url", kept) == kept
    for refused in ("-x", "--upload-pack=touch pwned", "a\nb"):
        with pytest.raises(UsageError):
            cfg.parse("remote.url", refused)
    assert local_path("file:///srv/x%20y.git") == Path("/srv/x y.git")
    assert local_path("./a:b") == Path("a:b") and local_path("host:a") is None
    assert local_path("https://host/x.git") is None and local_path("file://host/x") is None

    repo = tmp_path / "r"
    _cli("-r", repo, "--backend", "git", "init", "--yes", "--description", "r")
    proc = run_cli("-r", repo, "config", "remote.url", "--", "--upload-pack=touch pwned")
    assert proc.returncode == 2 and "option" in proc.stderr
    assert Repository.open(repo).get_config("remote.url") is None


def test_lfs_objects_of_new_commits_match_a_full_walk(tmp_path: Path) -> None:
    """The O(changed) listing push and pull rely on finds what walking every tree finds."""
    repo = Repository.init(tmp_path / "r", backend="git", id="root", description="d")
    for source in (TEST_CASE_1, PLANET, TEST_CASE_6):
        assert not repo.ingest([str(source)]).failed
    repo.rollback("HEAD~2")
    raw: pygit2.Repository = repo.backend.repo  # type: ignore[attr-defined]
    tip = raw.head.target
    assert lfs_objects_added(raw, tip, None) == reachable(raw, tip)[1] and reachable(raw, tip)[1]
    older = raw.revparse_single("HEAD~3").id  # before PLANET: its objects are new after it
    assert lfs_objects_added(raw, tip, older) == reachable(raw, tip)[1] - reachable(raw, older)[1]
    assert lfs_objects_added(raw, tip, tip) == set()

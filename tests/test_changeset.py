"""ChangeSet.check refuses exactly the contradictory transactions: a path both written and
copied, or written under (or at) a deleted path. Checked against the rule stated naively."""

from __future__ import annotations

import posixpath
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stac_repository import Repository
from stac_repository.backends.base import ChangeSet, check_path
from stac_repository.errors import BackendError

paths = st.lists(st.sampled_from(["a", "b", "ab", "a.json"]), min_size=1, max_size=4).map("/".join)


def _contradictory(writes: set[str], blobs: set[str], deletes: set[str]) -> bool:
    targets = [*writes, *blobs]
    return bool(writes & blobs) or any(t == d or t.startswith(d + "/") for t in targets for d in deletes)


@settings(max_examples=400, deadline=None)
@given(st.sets(paths, max_size=5), st.sets(paths, max_size=5), st.sets(paths, max_size=4))
def test_check_refuses_exactly_the_contradictions(
    writes: set[str], blobs: set[str], deletes: set[str]
) -> None:
    changes = ChangeSet(
        message="m",
        writes=dict.fromkeys(writes, b"{}"),
        blobs=dict.fromkeys(blobs, "/dev/null"),
        deletes=deletes,
    )
    if _contradictory(writes, blobs, deletes):
        with pytest.raises(BackendError, match="both"):
            changes.check()
    else:
        changes.check()


def _unsafe(path: str) -> bool:
    """The rule check_path states, naively: not in posixpath's normal form, absolute, with a
    backslash or NUL, or inside .git."""
    norm = posixpath.normpath(path)
    first = norm.split("/")[0]
    return (
        not path
        or "\\" in path
        or "\x00" in path
        or path.startswith("/")
        or norm != path
        or norm == "."
        or first in ("..", ".git")
    )


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=["a", "g", "i", "t", ".", "/", "\\", "\x00"], max_size=12))
def test_check_path_refuses_exactly_the_unsafe_paths(path: str) -> None:
    if _unsafe(path):
        with pytest.raises(BackendError, match="refused unsafe path"):
            check_path(path)
    else:
        assert check_path(path) == path


@pytest.mark.parametrize("path", [".git", ".git/config", "a/../b", "./a", "a/.", "a//b", "a/", "..", "."])
def test_check_path_refuses(path: str) -> None:
    with pytest.raises(BackendError):
        check_path(path)


@pytest.mark.parametrize("path", [".gitx", "a/.git", "a..b/c", ".a", "a/.b/c", "catalog.json"])
def test_check_path_keeps(path: str) -> None:
    assert check_path(path) == path


git_paths = st.lists(
    st.sampled_from(["a", "b", "a.json", ".gitattributes", ".."]), min_size=1, max_size=3
).map("/".join)


@pytest.fixture(scope="module")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> Repository:
    return Repository.init(tmp_path_factory.mktemp("git") / "repo", backend="git", id="root", description="d")


@settings(max_examples=150, deadline=None)
@given(st.sets(git_paths, max_size=4), st.sets(git_paths, max_size=4), st.sets(git_paths, max_size=3))
def test_the_git_backend_refuses_what_check_refuses_and_reserved_names(
    git_repo: Repository, writes: set[str], blobs: set[str], deletes: set[str]
) -> None:
    """The git backend checks paths in its one sorted pass over them, not with ChangeSet.check:
    it refuses the same transactions (and git's reserved names), and commits nothing then."""
    changes = ChangeSet(
        message="m",
        writes=dict.fromkeys(writes, b"{}"),
        blobs=dict.fromkeys(blobs, __file__),
        deletes=deletes,
    )
    try:
        changes.check()
        refused = any(path.rpartition("/")[2] == ".gitattributes" for path in changes.paths())
    except BackendError:
        refused = True
    backend = git_repo.backend
    before = backend.head().id
    with backend.transaction(timeout=5) as tx:
        if refused:
            with pytest.raises(BackendError, match=r"both|unsafe|reserved"):
                tx.commit(changes)
        else:
            tx.commit(changes)
    if refused:
        assert backend.head().id == before


def test_nothing_is_written_into_or_deleted_over_a_folder_stored_ahead() -> None:
    tree = bytes(20)
    ChangeSet("m", writes={"a/b.json": b"{}", "ab/c.json": b"{}"}, folders={"a/c": tree}).check()
    with pytest.raises(BackendError, match="into a folder stored ahead"):
        ChangeSet("m", writes={"a/c/d.json": b"{}"}, folders={"a/c": tree}).check()
    with pytest.raises(BackendError, match="into a folder stored ahead"):
        ChangeSet("m", blobs={"a/c/e/f.tif": "/dev/null"}, folders={"a/c": tree}).check()
    with pytest.raises(BackendError, match="both deleted and written"):
        ChangeSet("m", deletes={"a"}, folders={"a/c": tree}).check()


def test_the_file_backend_takes_no_folder_stored_ahead(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "file", backend="file", id="root", description="d")
    with repo.backend.transaction(timeout=5) as tx:
        assert tx.folder_writing() is None
        with pytest.raises(BackendError, match="no folders prepared ahead"):
            tx.commit(ChangeSet("m", folders={"x": bytes(20)}))

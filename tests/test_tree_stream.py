"""The git backend's streamed tree builder against git itself: for random trees and random
changes (writes, file and folder deletes, writes under deleted folders), the tree TreeStream
writes is the tree git's own index builds from the same final set of files."""

from __future__ import annotations

from pathlib import Path

import pygit2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stac_repository.backends.gitobjects import BLOB, TreeStream

NAMES = st.sampled_from(["a", "b", "a-b", "a.b", "b0", "~x", "z"])
PATHS = st.lists(NAMES, min_size=1, max_size=4).map("/".join)


def _files_only(paths: list[str]) -> list[str]:
    """Drop paths that would make a file also a folder (git cannot hold both)."""
    out: list[str] = []
    for path in sorted(set(paths), key=len):
        if any(path.startswith(p + "/") or p.startswith(path + "/") for p in out):
            continue
        out.append(path)
    return out


def _git_tree(repo: pygit2.Repository, files: dict[str, pygit2.Oid]) -> pygit2.Oid:
    index = pygit2.Index()
    for path, oid in files.items():
        index.add(pygit2.IndexEntry(path, oid, BLOB))
    return index.write_tree(repo)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.lists(PATHS, max_size=12),
    writes=st.lists(PATHS, max_size=8),
    deletes=st.lists(PATHS, max_size=4),
    content=st.integers(0, 3),
)
def test_tree_stream_builds_what_git_builds(
    tmp_path: Path, base: list[str], writes: list[str], deletes: list[str], content: int
) -> None:
    repo = pygit2.Repository(str(tmp_path / "r.git")) if (tmp_path / "r.git").exists() else None
    repo = repo or pygit2.init_repository(str(tmp_path / "r.git"), bare=True)
    blob = [repo.create_blob(f"content {k}".encode()) for k in range(4)]
    files = {path: blob[0] for path in _files_only(base)}
    base_tree = repo[_git_tree(repo, files)] if files else None

    # The expected result: deletes remove a file or a whole folder; a write under a deleted
    # path is moot; writes must not turn a file into a folder or the other way round.
    deleted = set(deletes)
    expected = {p: o for p, o in files.items() if not any(p == d or p.startswith(d + "/") for d in deleted)}
    changes: dict[str, pygit2.Oid | None] = {d: None for d in deleted}
    for path in _files_only(writes):
        if any(path.startswith(d + "/") for d in deleted):
            changes.setdefault(path, blob[content])
            continue
        clash = any(p.startswith(path + "/") or path.startswith(p + "/") for p in expected)
        if clash or path in deleted:
            continue
        changes[path] = expected[path] = blob[content]

    stream = TreeStream(repo, base_tree, lambda kind, data: repo.odb.write(kind, data), deleted=deleted)
    for path in sorted(changes):
        stream.put(path, changes[path])
    got = stream.finish()
    want = _git_tree(repo, expected) if expected else None
    assert got == want

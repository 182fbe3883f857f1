"""Pure work on git objects for the git backend: commit messages, tree rebuilds, tree diffs and
reachability. Nothing here touches the working tree, refs or locks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pygit2

from ..errors import BackendError
from . import lfs
from .base import Commit

SUMMARY_TRAILER = "Stac-Repository-Summary"
TREE = pygit2.GIT_FILEMODE_TREE
BLOB = pygit2.GIT_FILEMODE_BLOB
FILE_MODES = frozenset({pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE})


# -- commit messages --------------------------------------------------------------------------


def compose_message(message: str, summary: dict[str, Any]) -> str:
    """The message, then the summary as one JSON trailer line: log() reads it without diffing."""
    text = message.strip() or "(no message)"
    if summary:
        try:
            encoded = orjson.dumps(summary).decode()
        except TypeError as exc:
            raise BackendError(f"the transaction summary is not JSON: {exc}") from exc
        text += f"\n\n{SUMMARY_TRAILER}: {encoded}"
    return text + "\n"


def parse_message(raw: str) -> tuple[str, dict[str, Any]]:
    """First line and summary of a commit message (a missing or broken trailer is no summary)."""
    first = raw.split("\n", 1)[0]
    marker = f"\n{SUMMARY_TRAILER}: "
    start = raw.rfind(marker)
    if start < 0:
        return first, {}
    line = raw[start + len(marker) :].split("\n", 1)[0]
    try:
        summary = orjson.loads(line)
    except orjson.JSONDecodeError:
        return first, {}
    return first, summary if isinstance(summary, dict) else {}


_ZONES: dict[int, dt.timezone] = {}


def to_commit(commit: pygit2.Commit) -> Commit:
    offset = commit.commit_time_offset
    zone = _ZONES.get(offset)
    if zone is None:
        zone = _ZONES[offset] = dt.timezone(dt.timedelta(minutes=offset))
    first, summary = parse_message(commit.message)
    return Commit(
        id=str(commit.id),
        time=dt.datetime.fromtimestamp(commit.commit_time, zone),
        message=first,
        parents=tuple(str(p) for p in commit.parent_ids),
        summary=summary,
    )


# -- building trees ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leaf:
    """A file to set (``oid``) or a file or folder to delete (``oid`` None)."""

    oid: pygit2.Oid | None
    mode: int = BLOB


Node = dict[str, "Node | Leaf"]


def nest(changes: dict[str, Leaf]) -> Node:
    """Paths to a nested dict of folders; changes under a deleted folder are moot."""
    root: Node = {}
    for path in sorted(changes):
        *folders, name = path.split("/")
        node = root
        for part in folders:
            child = node.get(part)
            if isinstance(child, Leaf) and child.oid is None:
                break
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        else:
            node[name] = changes[path]
    return root


def write_tree(
    repo: pygit2.Repository, base: pygit2.Tree | None, node: Node, created: list[pygit2.Oid]
) -> pygit2.Oid | None:
    """Rebuild ``base`` with ``node`` applied, touching only the subtrees on changed paths.

    Returns None for a tree left empty (git keeps no empty folders); new tree ids go to ``created``.
    """
    builder = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
    for name, change in node.items():
        existing = builder.get(name)
        if isinstance(change, Leaf):
            if change.oid is not None:
                builder.insert(name, change.oid, change.mode)
            elif existing is not None:
                builder.remove(name)
            continue
        sub_base = repo[existing.id] if existing is not None and existing.filemode == TREE else None
        oid = write_tree(repo, sub_base, change, created)
        if oid is not None:
            builder.insert(name, oid, TREE)
        elif existing is not None:
            builder.remove(name)
    if len(builder) == 0:
        return None
    oid = builder.write()
    created.append(oid)
    return oid


# -- comparing and walking trees --------------------------------------------------------------


def diff_trees(
    repo: pygit2.Repository, old: pygit2.Tree | None, new: pygit2.Tree | None, prefix: str = ""
) -> Iterator[tuple[str, pygit2.Object | None]]:
    """File-level changes from ``old`` to ``new``: (path, new entry) or (path, None) if removed.

    Identical subtrees are skipped by id, so the cost follows the change, not the tree
    (libgit2's own tree diff walks every entry: 300 ms against 1 ms at 50k files).
    """
    before = {e.name: e for e in old} if old is not None else {}
    after = {e.name: e for e in new} if new is not None else {}
    for name in sorted(before.keys() | after.keys()):
        o, n = before.get(name), after.get(name)
        if o is not None and n is not None and o.id == n.id and o.filemode == n.filemode:
            continue
        path = prefix + name
        o_tree: Any = o if o is not None and o.filemode == TREE else None  # entries are Tree objects
        n_tree: Any = n if n is not None and n.filemode == TREE else None
        if o is not None and o_tree is None and (n is None or n_tree is not None):
            yield path, None
        if o_tree is not None or n_tree is not None:
            yield from diff_trees(repo, o_tree, n_tree, path + "/")
        if n is not None and n_tree is None and n.filemode in FILE_MODES:
            yield path, n


def reachable(repo: pygit2.Repository, tip: pygit2.Oid) -> tuple[list[pygit2.Oid], set[str]]:
    """Ids of every commit, tree and blob reachable from ``tip``, and the sha256 of every LFS
    object those commits point to (found through the .gitattributes of each folder)."""
    seen: set[pygit2.Oid] = set()
    objects: list[pygit2.Oid] = []
    lfs_oids: set[str] = set()
    pointers: set[pygit2.Oid] = set()
    for commit in repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL):
        objects.append(commit.id)
        stack = [commit.tree_id]
        while stack:
            tree_id = stack.pop()
            if tree_id in seen:
                continue
            seen.add(tree_id)
            objects.append(tree_id)
            tree: pygit2.Tree = repo[tree_id]
            names: frozenset[str] = frozenset()
            if lfs.ATTRIBUTES in tree:
                names = lfs.parse_attributes(repo[tree[lfs.ATTRIBUTES].id].data)
            for entry in tree:
                if entry.filemode == TREE:
                    stack.append(entry.id)
                    continue
                if entry.id not in seen:
                    seen.add(entry.id)
                    objects.append(entry.id)
                if entry.name in names and entry.id not in pointers:
                    pointers.add(entry.id)
                    pointer = lfs.parse_pointer(repo[entry.id].data)
                    if pointer is not None:
                        lfs_oids.add(pointer.oid)
    return objects, lfs_oids


def lfs_objects_added(repo: pygit2.Repository, tip: pygit2.Oid, known: pygit2.Oid | None) -> set[str]:
    """The sha256 of every LFS object used by the commits reachable from ``tip`` but not from
    ``known``: what a push or pull must carry besides git objects.

    Each commit is diffed against its parents, so the cost follows what the commits changed, not
    the size of their trees (:func:`reachable` walks every tree). The side that holds ``known``
    is taken to hold the LFS objects of its own commits.
    """
    walker = repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL)
    if known is not None:
        walker.hide(known)
    attributes: dict[pygit2.Oid, frozenset[str]] = {}
    checked: set[pygit2.Oid] = set()
    lfs_oids: set[str] = set()

    def names_in(folder: pygit2.Tree) -> frozenset[str]:
        names = attributes.get(folder.id)
        if names is None:
            entry = _entry(folder, lfs.ATTRIBUTES)
            names = lfs.parse_attributes(repo[entry.id].data) if entry is not None else frozenset()
            attributes[folder.id] = names
        return names

    def check(folder: pygit2.Tree, name: str) -> None:
        entry = _entry(folder, name)
        if entry is None or entry.filemode not in FILE_MODES or entry.id in checked:
            return
        if name in names_in(folder):
            checked.add(entry.id)
            pointer = lfs.parse_pointer(repo[entry.id].data)
            if pointer is not None:
                lfs_oids.add(pointer.oid)

    for commit in walker:
        changed: set[str] = set()
        for parent in commit.parents or [None]:
            old = parent.tree if parent is not None else None
            changed.update(path for path, entry in diff_trees(repo, old, commit.tree) if entry is not None)
        for path in changed:
            folder_path, _, name = path.rpartition("/")
            folder: Any = commit.tree[folder_path] if folder_path else commit.tree
            if name == lfs.ATTRIBUTES:  # newly listed names may point at unchanged blobs
                for listed in names_in(folder):
                    check(folder, listed)
            else:
                check(folder, name)
    return lfs_oids


def _entry(tree: pygit2.Tree, name: str) -> pygit2.Object | None:
    try:
        return tree[name]
    except KeyError:
        return None

"""Copies out of the repository: export (a self-contained static catalog), extract (a subtree
as its own catalog), backup and restore.

Everything is written into a temporary sibling folder and renamed into place at the end,
so a failed or interrupted copy never leaves a half-written destination.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..backends import fsutil
from ..backends.base import STATE_DIR, Backend, ChangeSet, Snapshot
from ..backends.file import LOCAL_DIR
from ..errors import BackendError, Conflict, NotFound, UsageError
from ..stac.document import StacType, dumps, identify, parse_json
from ..stac.index import Entry
from ..stac.layout import folder_of, relative_href
from ..stac.partition import MARK, is_partition
from ..stac.planner import Planner, resolve_href
from .filecopy import FileWriter, copy_files

_RETRIES = 5


class _Changed(Exception):
    """The repository changed under a reader: its copy is thrown away and made again."""


def _consistent_copy(
    backend: Backend, ref: str | None, destination: Path, write: Callable[[Snapshot, Path], int]
) -> int:
    """Copy one committed state into ``destination``: readers take no lock, so a copy that a
    writer overlapped (file backend) is discarded before it lands, and made again."""
    for _ in range(_RETRIES):
        try:
            with backend.snapshot(ref) as snap, fsutil.staged_folder(destination) as tmp:
                unchanged = getattr(snap, "unchanged", None)
                try:
                    count = write(snap, tmp)
                except NotFound:  # a file went away under the reader: retry if a writer passed
                    if unchanged is not None and not unchanged():
                        raise _Changed from None
                    raise
                if unchanged is not None and not unchanged():
                    raise _Changed
                return count
        except _Changed:
            continue
        except OSError as exc:  # no space, no permission...: nothing was left at the destination
            raise BackendError(f"cannot write to {destination}: {exc.strerror or exc}") from exc
    raise Conflict("the repository kept changing during the copy; try again")


def export(backend: Backend, destination: Path, *, ref: str | None = None, flatten: bool = False) -> int:
    """Copy the stored catalog out, file by file (streamed: memory does not grow with it).

    ``flatten`` leaves the layout's partition catalogs out: each catalog or collection then links
    all its items directly (files stay where they are; only links change).
    """

    def write(snap: Snapshot, tmp: Path) -> int:
        partitions = _Partitions(snap) if flatten else None
        catalog = (path for path in snap.walk() if path.split("/", 1)[0] != STATE_DIR)
        if partitions is None:
            return copy_files(snap, catalog, os.fspath(tmp))
        out = FileWriter()
        base = os.fspath(tmp)
        count = 0
        for path in catalog:
            if partitions.affects(path):
                if is_partition(path):
                    continue
                doc = parse_json(snap.read(path), file=path)
                if isinstance(doc, dict) and isinstance(doc.get("links"), list):
                    out.write(f"{base}/{path}", dumps(partitions.flatten(doc, path)))
                    count += 1
                    continue
            out.copy(snap, path, f"{base}/{path}")
            count += 1
        return count

    return _consistent_copy(backend, ref, destination, write)


class _Partitions:
    """The partition catalogs of a snapshot: their items, sub-partitions and owners."""

    def __init__(self, snap: Snapshot) -> None:
        self.items: dict[str, list[str]] = {}
        self.subs: dict[str, list[str]] = {}
        self.parent: dict[str, str] = {}
        for path in snap.walk():
            if f"/{MARK}" not in f"/{path}" or not is_partition(path) or not path.endswith("/catalog.json"):
                continue
            self.items[path], self.subs[path] = [], []
            for link in parse_json(snap.read(path), file=path).get("links", []):
                target = resolve_href(path, link.get("href", ""))
                if target is None:
                    continue
                if link.get("rel") == "item":
                    self.items[path].append(target)
                elif link.get("rel") == "child" and is_partition(target):
                    self.subs[path].append(target)
                elif link.get("rel") == "parent":
                    self.parent[path] = target
        self.owners = {self.owner(p) for p in self.items}

    def owner(self, path: str) -> str:
        while is_partition(path) and path in self.parent:
            path = self.parent[path]
        return path

    def below(self, path: str) -> list[str]:
        return self.items.get(path, []) + [i for sub in self.subs.get(path, []) for i in self.below(sub)]

    def affects(self, path: str) -> bool:
        """Documents whose links change: owners of partitions, partitions, items inside them."""
        return path.endswith(".json") and (path in self.owners or f"/{MARK}" in f"/{path}")

    def flatten(self, doc: dict[str, Any], path: str) -> dict[str, Any]:
        links = []
        for link in doc.get("links", []):
            target = resolve_href(path, link.get("href", ""))
            if target is not None and target in self.items:
                if link.get("rel") == "child":  # a partition: link its items directly
                    links.extend(
                        {"rel": "item", "href": relative_href(path, item), "type": "application/json"}
                        for item in self.below(target)
                    )
                    continue
                if link.get("rel") == "parent":  # an item in a partition: its owner is the parent
                    link = {**link, "href": relative_href(path, self.owner(target))}
            links.append(link)
        return {**doc, "links": links}


def backup(backend: Backend, destination: Path, *, ref: str | None = None) -> int:
    """A plain copy that is itself a repository of the same backend (open it, or restore from it)."""
    native = getattr(backend, "native_backup", None)
    if native is not None:
        return int(native(destination, ref=ref))

    def write(snap: Snapshot, tmp: Path) -> int:
        count = copy_files(snap, snap.walk(), os.fspath(tmp))
        (tmp / LOCAL_DIR).mkdir(parents=True, exist_ok=True)
        return count

    return _consistent_copy(backend, ref, destination, write)


def restore_backup(source: Path, path: Path, options: dict[str, Any] | None = None) -> Backend:
    """A new repository at ``path`` holding exactly what the backup at ``source`` holds;
    ``options`` as for ``init`` (e.g. the git backend's ``worktree``)."""
    from .. import backends

    cls = backends.detect(source)
    if cls is None:
        raise UsageError(f"{source} is not a stac-repository backup")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"{path} is not empty: restore needs a new or empty folder")
    native = getattr(cls, "restore_native", None)
    if native is not None:
        return native(source, path, options=options or {})  # type: ignore[no-any-return]
    src = cls(source)
    with src.snapshot() as snap:
        blobs = {p: source / p for p in snap.walk()}
    path.mkdir(parents=True, exist_ok=True)
    message = f"restore from backup {source}"
    return cls.create(path, ChangeSet(message=message, blobs=blobs), options=options or {})


def extract_subtrees(
    snapshot: Snapshot, planner: Planner, entries: Iterable[Entry], destination: Path
) -> None:
    """Save each object with its descendants and assets as a self-contained catalog.

    One object: ``destination`` becomes its folder (its document at the top). Several: one
    sub-folder each, named after the object's folder.
    """
    entries = list(entries)
    out = FileWriter()
    with fsutil.staged_folder(destination) as tmp:
        for entry in entries:
            folder = folder_of(entry.path)
            target = tmp if len(entries) == 1 else tmp / folder.rsplit("/", 1)[-1]
            for path in snapshot.walk(folder):
                rel = path[len(folder) + 1 :]
                if not path.endswith(".json"):
                    out.copy(snapshot, path, target / rel)
                    continue
                raw = snapshot.read(path)
                try:
                    doc = parse_json(raw, file=path)
                    identify(doc, file=path)
                except Exception:
                    out.copy(snapshot, path, target / rel)
                    continue
                out.write(target / rel, dumps(_rebase(doc, path, entry.path)))


def _rebase(doc: dict[str, Any], path: str, new_root: str) -> dict[str, Any]:
    """Links of a stored document re-pointed so that ``new_root`` is the root."""
    doc = dict(doc)
    links = []
    for link in doc.get("links", []):
        rel = link.get("rel")
        target = resolve_href(path, link.get("href", ""))
        if rel == "root":
            links.append({**link, "href": relative_href(path, new_root)})
        elif rel in ("parent", "collection") and (
            target is None or (not target.startswith(folder_of(new_root) + "/") and target != new_root)
        ):
            if rel == "collection":
                doc.pop("collection", None)
            continue
        else:
            links.append(link)
    doc["links"] = links
    if path == new_root and identify(doc) is StacType.ITEM:
        doc.pop("collection", None)
        doc["links"] = [link for link in links if link.get("rel") != "collection"]
    return doc

"""The id index: which stored object has which id, where, under which parent, at which version.

It lives in the repository itself (``.stac-repository/index/<aa>/<b>.json``, sharded by a
hash of the id), so it is versioned, rolled back and backed up with the catalog it
describes, and a transaction reads and rewrites only the shards of the ids it touches.
Ids are unique among siblings only (as in STAC), so one id maps to a list of entries.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..backends.base import STATE_DIR, Snapshot
from ..errors import BackendError, NotFound

INDEX_DIR = f"{STATE_DIR}/index"


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    path: str  # the object's document
    type: str
    parent: str | None  # the parent's document path; None for the root
    version: str | None = None  # product version, on the root object of an ingested product
    processor: str | None = None  # "<name> <version>" of the processor that produced it
    coverage: list[Any] | None = None  # partition catalogs only: what their items cover

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "type": self.type, "parent": self.parent}
        if self.version is not None:
            out["version"] = self.version
        if self.processor is not None:
            out["processor"] = self.processor
        if self.coverage is not None:
            out["coverage"] = self.coverage
        return out


def shard_path(ident: str) -> str:
    digest = hashlib.sha1(ident.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{INDEX_DIR}/{digest[:2]}/{digest[2]}.json"


class IndexView:
    """The index as seen from a snapshot, with pending edits for one transaction.

    Memory follows the edits, not the index: shards read for lookups are kept in a small LRU
    cache, and edited shards are rendered one at a time when the transaction writes them (a
    large import into a large repository touches every shard).
    """

    CACHED_SHARDS = 256

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._shards: OrderedDict[str, dict[str, list[dict[str, Any]]]] = OrderedDict()
        self._edits: dict[str, dict[str, Entry | dict[str, Entry | None]]] = {}
        """shard -> id -> the id's one new entry (the common case: a bulk ingest holds one per
        item, and a dict each would be a tenth of what it holds per item), or entry path -> new
        entry, or None for a removal."""

    def _shard(self, path: str) -> dict[str, list[dict[str, Any]]]:
        """A stored shard as read (cached for lookups; edits are kept apart)."""
        shard = self._shards.get(path)
        if shard is None:
            shard = self._shards[path] = self._read(path)
            if len(self._shards) > self.CACHED_SHARDS:
                self._shards.popitem(last=False)
        else:
            self._shards.move_to_end(path)
        return shard

    def _read(self, path: str) -> dict[str, list[dict[str, Any]]]:
        try:
            raw = self.snapshot.read(path)
        except NotFound:
            return {}
        try:
            shard: dict[str, list[dict[str, Any]]] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BackendError(f"corrupt index shard {path}") from None
        return shard

    def lookup(self, ident: str) -> list[Entry]:
        rows = {row["path"]: Entry(id=ident, **row) for row in self._shard(shard_path(ident)).get(ident, [])}
        for path, entry in _rows(self._edits.get(shard_path(ident), {}).get(ident)).items():
            if entry is None:
                rows.pop(path, None)
            else:
                rows[path] = entry
        return list(rows.values())

    def find(self, ident: str, parent: str | None) -> Entry | None:
        for entry in self.lookup(ident):
            if entry.parent == parent:
                return entry
        return None

    def by_path(self, ident: str, path: str) -> Entry | None:
        for entry in self.lookup(ident):
            if entry.path == path:
                return entry
        return None

    def put(self, entry: Entry) -> None:
        """Record an entry; shards are read and rewritten only in :meth:`changes`, one at a time,
        so that a large ingest holds its new entries and nothing else."""
        self._edit(entry.id, entry.path, entry)

    def remove(self, ident: str, path: str) -> None:
        self._edit(ident, path, None)

    def _edit(self, ident: str, path: str, entry: Entry | None) -> None:
        edits = self._edits.setdefault(shard_path(ident), {})
        current = edits.get(ident)
        if entry is not None and (current is None or (isinstance(current, Entry) and current.path == path)):
            edits[ident] = entry
        else:
            rows = _rows(current)
            rows[path] = entry
            edits[ident] = rows

    def changes(self) -> Iterator[tuple[str, bytes | Callable[[], bytes] | None]]:
        """(shard path, new content or None to delete) for every shard edited. A shard that only
        gains or changes entries is rendered when written (a callable); one that loses entries
        now, since it may become empty and go."""
        for path in sorted(self._edits):
            edits = self._edits[path]
            if any(isinstance(rows, dict) and None in rows.values() for rows in edits.values()):
                content = self._render(path)
                yield path, content or None
            else:
                yield path, functools.partial(self._render, path)

    def _render(self, path: str) -> bytes:
        """The shard at ``path`` with its edits applied; empty bytes when no entry is left."""
        shard = dict(self._shards.pop(path, None) or self._read(path))
        for ident, edits in self._edits[path].items():
            rows = {row["path"]: row for row in shard.get(ident, [])}
            for entry_path, entry in _rows(edits).items():
                if entry is None:
                    rows.pop(entry_path, None)
                else:
                    rows[entry_path] = entry.to_json()
            if rows:
                shard[ident] = list(rows.values())
            else:
                shard.pop(ident, None)
        return orjson.dumps(shard, option=orjson.OPT_SORT_KEYS) if shard else b""


def _rows(edits: Entry | dict[str, Entry | None] | None) -> dict[str, Entry | None]:
    """An id's edits as entry path -> new entry (None: removed)."""
    if edits is None:
        return {}
    return {edits.path: edits} if isinstance(edits, Entry) else edits


def iter_all(snapshot: Snapshot) -> Iterator[Entry]:
    """Every entry; O(N), for tools like export listings and consistency checks."""
    for path in snapshot.walk(INDEX_DIR):
        for ident, rows in orjson.loads(snapshot.read(path)).items():
            for row in rows:
                yield Entry(id=ident, **row)

"""The storage contract: a path-addressed store of documents and blobs that applies
ChangeSets atomically.

Backends know nothing of STAC. Paths are relative POSIX paths ("a/b/c.json"); the
STAC layer has already checked that they stay inside the repository, and
:func:`check_path` checks it again at the storage boundary.
"""

from __future__ import annotations

import abc
import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol

from ..errors import BackendError, NoHistory

STATE_DIR = ".stac-repository"
"""Hidden folder of every repository: configuration and the id index (versioned like the
catalog), plus backend-private state such as locks and journals."""


def check_path(path: str) -> str:
    """Refuse any path that could leave the repository or hide in backend-private state: one
    not in normal form (``posixpath.normpath`` would change it: an empty, ``.`` or ``..``
    segment, a trailing slash), absolute, with a backslash or NUL, or in ``.git``."""
    padded = f"/{path}/"
    if (
        not path
        or "\\" in path
        or "\x00" in path
        or path[0] == "/"
        or path[-1] == "/"
        or "//" in path
        or "/./" in padded
        or "/../" in padded
        or padded.startswith("/.git/")
    ):
        raise BackendError(f"refused unsafe path {path!r}")
    return path


BOTH_WRITTEN = "a path is both written as a document and copied as a blob"


@dataclass
class ChangeSet:
    """What one transaction changes: documents to write, blobs (files) to copy in, paths to delete.

    ``deletes`` may name files or whole folders. A path is never both written and deleted,
    and nothing is written under a deleted folder: the planner decides the final state.
    """

    message: str
    writes: dict[str, bytes | Callable[[], bytes]] = field(default_factory=dict)
    """Documents by path; a callable produces its bytes when the backend writes it (so that a
    large transaction need not hold every document in memory)."""
    blobs: Mapping[str, str | Path] = field(default_factory=dict)
    """Files to copy in, by path: the local file each is copied from."""
    deletes: set[str] = field(default_factory=set)
    summary: dict[str, Any] = field(default_factory=dict)
    folders: dict[str, bytes] = field(default_factory=dict)
    """New folders whose whole content a :class:`FolderWriter` of this transaction stored ahead:
    folder path -> the id the writer gave it (none of their files is in ``writes`` or ``blobs``)."""

    def is_empty(self) -> bool:
        return not (self.writes or self.blobs or self.deletes or self.folders)

    def paths(self) -> Iterator[str]:
        """Every path the transaction writes, copies or deletes (no set of them is built: a bulk
        transaction has hundreds of thousands)."""
        return itertools.chain(self.writes, self.blobs, self.deletes)

    def check(self) -> None:
        """Refuse unsafe paths (:func:`check_path`) and contradictions: a path both written and
        copied, or written at or under a deleted path."""
        if not self.writes.keys().isdisjoint(self.blobs.keys()):
            raise BackendError(BOTH_WRITTEN)
        for path in self.paths():
            check_path(path)
        self.check_folders()
        self.check_deletes()

    def check_folders(self) -> None:
        """Refuse a file written into a folder stored ahead (its content is the writer's alone)."""
        if self.folders:
            for target in itertools.chain(self.writes, self.blobs):
                at = target.rfind("/")
                while at > 0:
                    if target[:at] in self.folders:
                        raise BackendError(f"path {target!r} is written into a folder stored ahead")
                    at = target.rfind("/", 0, at)

    def check_deletes(self) -> None:
        """The part of :meth:`check` about deleted paths (for a backend that checks the rest as it
        goes through the paths in order: a path twice in them is written twice)."""
        if self.deletes:  # each target's own path and folders looked up: O(targets x depth)
            for target in itertools.chain(self.writes, self.blobs, self.folders):
                at = len(target)
                while at > 0:
                    if target[:at] in self.deletes:
                        raise BackendError(f"path {target[:at]!r} is both deleted and written")
                    at = target.rfind("/", 0, at)


@dataclass(frozen=True)
class Commit:
    id: str
    time: dt.datetime
    message: str
    parents: tuple[str, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)


def content(data: bytes | Callable[[], bytes]) -> bytes:
    return data() if callable(data) else data


class Snapshot(abc.ABC):
    """A read-only, consistent view of the repository at one state."""

    ref: str | None = None

    @abc.abstractmethod
    def read(self, path: str) -> bytes:
        """Content of a file; raises NotFound."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def walk(self, prefix: str = "") -> Iterator[str]:
        """Every file path under ``prefix`` (a folder, or "" for all), sorted."""

    @abc.abstractmethod
    def open(self, path: str) -> BinaryIO:
        """A stream of a file's content, for blobs that should not be read into memory."""

    def copy_to(self, path: str, target: str) -> None:
        """Write the file at ``path`` into the local file ``target`` (created or truncated).

        Exports and backups copy every file through this: a backend whose files lie on disk
        overrides it to copy them in the kernel, without a file object.
        """
        from . import fsutil

        with self.open(path) as src:
            fsutil.copy_stream(src, target)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the snapshot holds."""

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FolderWriter(Protocol):
    """Stores whole new folders ahead of a commit, in a worker process of the planner (forked
    under the writer's lock, so the transaction is its own)."""

    def folder(self, files: list[tuple[str, bytes | str]]) -> bytes:
        """Store a new folder of ``files`` (name, and the document's bytes or the path of the
        local file to copy); the id that ``ChangeSet.folders`` gives the commit for it. Raises
        what storing the files the usual way would (the planner then does it the usual way)."""

    def finish(self) -> object:
        """The worker is done: what the transaction must adopt (marshallable)."""


@dataclass(frozen=True)
class FolderWriting:
    """A transaction's :class:`FolderWriter` for the planner's workers."""

    start: Callable[[], FolderWriter]
    """Called once in each worker, after it is forked."""
    adopt: Callable[[object], None]
    """Called by the writer with a worker's :meth:`FolderWriter.finish`: the folders that worker
    stored may then be committed. What is not adopted is dropped with the transaction."""


class Transaction(abc.ABC):
    """A writer's view: the head snapshot (read under the lock) and one commit."""

    snapshot: Snapshot

    @abc.abstractmethod
    def commit(self, changes: ChangeSet) -> Commit | None:
        """Apply ``changes`` atomically; None if there was nothing to change."""

    def folder_writing(self) -> FolderWriting | None:
        """How the planner's workers may store new folders ahead (None: this backend does not)."""
        return None


class Backend(abc.ABC):
    name: ClassVar[str]
    has_history: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    @abc.abstractmethod
    def detect(cls, root: Path) -> bool:
        """True when ``root`` holds a repository of this backend."""

    @classmethod
    @abc.abstractmethod
    def create(cls, root: Path, changes: ChangeSet, *, options: dict[str, Any]) -> Backend:
        """Make a new repository at ``root`` whose first state is ``changes``."""

    @abc.abstractmethod
    def snapshot(self, ref: str | None = None) -> Snapshot:
        """A consistent view of the head, or of ``ref`` where the backend keeps history."""

    @abc.abstractmethod
    def transaction(self, *, timeout: float) -> AbstractContextManager[Transaction]:
        """Take the writer lock (waiting at most ``timeout`` seconds) and open a transaction."""

    def log(self, ref: str | None = None) -> Iterator[Commit]:
        raise NoHistory(f"the {self.name!r} backend keeps no history")

    def resolve(self, ref: str) -> str:
        raise NoHistory(f"the {self.name!r} backend keeps no history: refs like {ref!r} mean nothing")

    def restore(
        self, ref: str, *, timeout: float, message: str, summary: dict[str, Any] | None = None
    ) -> Commit | None:
        """A new commit whose state equals ``ref``'s; None when the head already has it."""
        raise NoHistory(f"the {self.name!r} backend keeps no history: nothing to roll back to")

    def backup(self, destination: Path, *, ref: str | None = None) -> None:
        """Write a restorable copy; the default copies a snapshot file by file."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release held resources."""

    @property
    def local_dir(self) -> Path:
        """Unversioned state of this copy of the repository (lock, local settings)."""
        raise NotImplementedError

"""The "file" backend: the repository is the plain catalog folder plus ``.stac-repository/``.

A transaction is made crash-safe with a write-ahead journal in
``.stac-repository/local/journal``:

1. every new file is written (and fsynced) into ``journal/staged/``;
2. ``journal/COMMIT`` lists the renames and deletions; writing it atomically is the
   commit point;
3. the renames and deletions are applied, the generation counter is bumped and the
   journal is removed.

Recovery (on the next open, or before the next transaction) discards a journal without
``COMMIT`` and replays one with it; replaying is idempotent. So after kill -9 anywhere the
catalog is exactly the state before or after the transaction.

Readers never take the lock. A snapshot remembers the generation it started at and
:meth:`FileSnapshot.unchanged` tells whether a writer touched the repository since, so
multi-file reads (export, backup) can verify and retry instead of returning a mix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import orjson

from ..errors import BackendError, Locked, NotFound
from . import fsutil
from .base import STATE_DIR, Backend, ChangeSet, Commit, Snapshot, Transaction, content
from .locking import WriterLock

LOCAL_DIR = f"{STATE_DIR}/local"
"""Backend-private and unversioned: lock, journal, generation counter."""


def _crash_point(name: str) -> None:
    """Fault injection for the crash tests: ``STAC_REPOSITORY_CRASH_AT=<name>`` kills the process here."""
    if os.environ.get("STAC_REPOSITORY_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


class FileSnapshot(Snapshot):
    def __init__(self, backend: FileBackend) -> None:
        self.backend = backend
        self.root = backend.root
        self.generation = backend.generation()
        self.ref = None

    def _path(self, path: str) -> Path:
        """Readers too stay inside the repository, whatever path they are asked for."""
        if path.startswith("/") or "\x00" in path or ".." in path.split("/"):
            raise BackendError(f"refused unsafe path {path!r}")
        return self.root / path

    def read(self, path: str) -> bytes:
        try:
            return self._path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"no file {path!r} in the repository") from None
        except OSError as exc:
            raise BackendError(f"cannot read {path!r}: {exc.strerror}") from exc

    def exists(self, path: str) -> bool:
        return self._path(path).is_file()

    def open(self, path: str) -> BinaryIO:
        try:
            return open(self._path(path), "rb")
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no file {path!r} in the repository") from None

    def walk(self, prefix: str = "") -> Iterator[str]:
        start = self._path(prefix) if prefix else self.root
        if start.is_file():
            yield prefix
            return
        stack = [start]
        found: list[str] = []
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                rel = os.path.relpath(entry.path, self.root).replace(os.sep, "/")
                if rel == LOCAL_DIR:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    found.append(rel)
        yield from sorted(found)

    def unchanged(self) -> bool:
        """True when no transaction was applied or began applying since this snapshot."""
        return not self.backend.commit_pending() and self.backend.generation() == self.generation


class _FileTransaction(Transaction):
    def __init__(self, backend: FileBackend) -> None:
        self.backend = backend
        self.snapshot = FileSnapshot(backend)

    def commit(self, changes: ChangeSet) -> Commit | None:
        changes.check()
        for path in [*changes.writes, *changes.blobs, *changes.deletes]:
            if path == LOCAL_DIR or path.startswith(LOCAL_DIR + "/"):
                raise BackendError(f"refused write to backend-private path {path!r}")
        if changes.is_empty():
            return None
        return self.backend._commit(changes)


class FileBackend(Backend):
    name: ClassVar[str] = "file"
    has_history: ClassVar[bool] = False
    description: ClassVar[str] = "plain catalog folder with a crash-safe journal; no history"

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        super().__init__(root)
        self.fsync = fsync
        self.local = root / LOCAL_DIR
        self.journal = self.local / "journal"
        if not self.local.is_dir():
            raise NotFound(f"{root} is not a stac-repository (no {LOCAL_DIR}/)")
        self._recover_if_idle()

    # -- discovery and creation -------------------------------------------------------

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (root / LOCAL_DIR).is_dir() and not (root / ".git").exists()

    @classmethod
    def create(cls, root: Path, changes: ChangeSet, *, options: dict[str, Any]) -> FileBackend:
        (root / LOCAL_DIR).mkdir(parents=True, exist_ok=False)
        backend = cls(root, fsync=bool(options.get("fsync", True)))
        with backend.transaction(timeout=0) as tx:
            tx.commit(changes)
        return backend

    # -- reading ----------------------------------------------------------------------

    @property
    def local_dir(self) -> Path:
        return self.local

    def generation(self) -> int:
        try:
            return int((self.local / "generation").read_text() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            raise BackendError(f"corrupt generation counter in {self.local}") from None

    def commit_pending(self) -> bool:
        return (self.journal / "COMMIT").exists()

    def snapshot(self, ref: str | None = None) -> FileSnapshot:
        if ref is not None:
            self.resolve(ref)
        return FileSnapshot(self)

    # -- writing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, *, timeout: float) -> Iterator[Transaction]:
        with WriterLock(self.local / "lock", timeout=timeout):
            self._recover()
            try:
                yield _FileTransaction(self)
            finally:
                # A failure before the commit point leaves staged files: drop them now.
                if self.journal.exists() and not self.commit_pending():
                    shutil.rmtree(self.journal, ignore_errors=True)

    def _commit(self, changes: ChangeSet) -> Commit:
        staged = self.journal / "staged"
        staged.mkdir(parents=True)
        writes: list[tuple[str, str]] = []
        try:
            for n, (path, data) in enumerate(changes.writes.items()):
                fsutil.write_file(staged / f"w{n}", content(data), fsync=False)
                writes.append((f"w{n}", path))
            for n, (path, source) in enumerate(changes.blobs.items()):
                fsutil.copy_file(source, staged / f"b{n}", fsync=False)
                writes.append((f"b{n}", path))
            if self.fsync:
                fsutil.sync_files([staged / name for name, _ in writes])
                fsutil.fsync_dir(staged)
        except OSError as exc:
            raise BackendError(f"cannot stage the transaction: {exc.strerror or exc}") from exc
        generation = self.generation() + 1
        record = {
            "id": uuid.uuid4().hex,
            "time": dt.datetime.now(dt.UTC).isoformat(),
            "generation": generation,
            "message": changes.message,
            "writes": writes,
            "deletes": sorted(changes.deletes),
        }
        _crash_point("staged")
        fsutil.atomic_write(self.journal / "COMMIT", orjson.dumps(record), fsync=self.fsync)
        # Committed: from here on recovery rolls forward.
        _crash_point("committed")
        self._apply(record)
        return Commit(
            id=record["id"],
            time=dt.datetime.fromisoformat(record["time"]),
            message=changes.message,
            summary=changes.summary,
        )

    def _apply(self, record: dict[str, Any]) -> None:
        staged = self.journal / "staged"
        trash = self.journal / "trash"
        trash.mkdir(exist_ok=True)
        touched: set[Path] = set()
        made: set[Path] = set()
        for n, path in enumerate(record["deletes"]):
            target = self.root / path
            if os.path.lexists(target):
                os.replace(target, trash / str(n))
                touched.add(target.parent)
        for name, path in record["writes"]:
            source = staged / name
            if source.exists():
                target = self.root / path
                if target.parent not in made:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    made.add(target.parent)
                os.replace(source, target)
                touched.add(target.parent)
                _crash_point("applying")
        if self.fsync:
            fsutil.sync_folders([folder for folder in touched if folder.exists()])
        # Not fsynced: the counter only tells running readers that a writer passed; after a
        # power loss there are no running readers, and the durable journal replays anyway.
        fsutil.atomic_write(self.local / "generation", str(record["generation"]).encode(), fsync=False)
        for folder in sorted(touched, key=lambda p: len(p.parts), reverse=True):
            fsutil.prune_empty_dirs(folder, self.root)
        os.unlink(self.journal / "COMMIT")
        shutil.rmtree(self.journal, ignore_errors=True)

    def _stale_files(self) -> list[Path]:
        """Temporary files of atomic writes a killed writer left in the state folder."""
        return [p for p in self.local.glob(".*.tmp-*") if p.is_file()]

    def _recover(self) -> None:
        """Under the lock: finish a committed journal, discard an uncommitted one, drop leftovers."""
        for path in self._stale_files():
            path.unlink(missing_ok=True)
        if not self.journal.exists():
            return
        commit = self.journal / "COMMIT"
        if commit.exists():
            try:
                record = orjson.loads(commit.read_bytes())
            except orjson.JSONDecodeError:
                # atomic_write makes a torn COMMIT impossible; treat it as not committed.
                record = None
            if record is not None:
                self._apply(record)
                return
        shutil.rmtree(self.journal, ignore_errors=True)

    def _recover_if_idle(self) -> None:
        if not self.journal.exists() and not self._stale_files():
            return
        try:
            with WriterLock(self.local / "lock", timeout=0):
                self._recover()
        except Locked:  # a live writer owns the journal; it will finish it
            return

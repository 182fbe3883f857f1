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

import array
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


def _keep_old(target: str, kept: str) -> None:
    """Keep the old version of ``target`` for undo, as a hard link: the rename that follows
    replaces it atomically, and a reader never finds the path missing. Where hard links are not
    possible, it is moved away (readers may then miss it for an instant)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(kept)  # left by an interrupted apply being replayed
    try:
        os.link(target, kept, follow_symlinks=False)
    except OSError:
        os.replace(target, kept)


def _sorted_entries(folder: str | Path) -> list[os.DirEntry[str]]:
    """A folder's entries in the order of their paths (a folder name sorts as name + "/")."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(entries, key=lambda e: f"{e.name}/" if e.is_dir(follow_symlinks=False) else e.name)


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

    def copy_to(self, path: str, target: str) -> None:
        source = self._path(path)
        try:
            fsutil.copy_file(source, target, fsync=False)
        except OSError as exc:
            if exc.filename is None or os.fspath(exc.filename) != os.fspath(source):
                raise
            if isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise NotFound(f"no file {path!r} in the repository") from None
            raise BackendError(f"cannot read {path!r}: {exc.strerror}") from exc

    def walk(self, prefix: str = "") -> Iterator[str]:
        start = self._path(prefix) if prefix else self.root
        if start.is_file():
            yield prefix
            return
        # Depth first, each folder's entries sorted with a "/" after folder names: that is the
        # sorted order of the full paths, so nothing is collected (an export of a large catalog
        # holds one folder listing per level).
        root = os.fspath(self.root)
        stack = [iter(_sorted_entries(start))]
        while stack:
            for entry in stack[-1]:
                if entry.is_dir(follow_symlinks=False):
                    if os.path.relpath(entry.path, root).replace(os.sep, "/") != LOCAL_DIR:
                        stack.append(iter(_sorted_entries(entry.path)))
                        break
                elif entry.is_file(follow_symlinks=False):
                    yield os.path.relpath(entry.path, root).replace(os.sep, "/")
            else:
                stack.pop()

    def unchanged(self) -> bool:
        """True when no transaction was applied or began applying since this snapshot."""
        return not self.backend.commit_pending() and self.backend.generation() == self.generation


class _FileTransaction(Transaction):
    def __init__(self, backend: FileBackend) -> None:
        self.backend = backend
        self.snapshot = FileSnapshot(backend)

    def commit(self, changes: ChangeSet) -> Commit | None:
        if changes.folders:  # this backend has no FolderWriter: none can be its own
            raise BackendError("the file backend stores no folders prepared ahead")
        changes.check()
        for path in changes.paths():
            if path == LOCAL_DIR or path.startswith(LOCAL_DIR + "/"):
                raise BackendError(f"refused write to backend-private path {path!r}")
        if changes.is_empty():
            return None
        try:
            return self.backend._commit(changes)
        except OSError as exc:  # foreign errors become one line at the storage boundary
            raise BackendError(f"cannot write into the repository: {exc.strerror or exc}") from exc


class _Folders:
    """Creates the folders an apply writes into, each once (a bulk ingest writes into thousands)."""

    def __init__(self) -> None:
        self.created: dict[str, bool] = {}  # folder -> made by this apply

    def make(self, folder: str) -> bool:
        """Make ``folder`` and its missing parents; True when this apply made ``folder``."""
        if folder in self.created:
            return self.created[folder]
        try:
            os.mkdir(folder)
            created = True
        except FileExistsError:
            if not os.path.isdir(folder):
                raise
            created = False
        except FileNotFoundError:
            self.make(os.path.dirname(folder))
            os.mkdir(folder)
            created = True
        self.created[folder] = created
        return created


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
            try:
                self._recover()
            except OSError as exc:
                raise BackendError(f"cannot recover {self.root}: {exc.strerror or exc}") from exc
            try:
                yield _FileTransaction(self)
            finally:
                # A failure before the commit point leaves staged files: drop them now.
                if self.journal.exists() and not self.commit_pending():
                    shutil.rmtree(self.journal, ignore_errors=True)

    def _commit(self, changes: ChangeSet) -> Commit:
        staged = self.journal / "staged"
        prefix = f"{staged}/"  # plain strings: a large transaction stages tens of thousands of files
        writes: list[tuple[str, str]] = []
        try:
            staged.mkdir(parents=True)
            for n, (path, data) in enumerate(changes.writes.items()):
                fsutil.write_file(f"{prefix}w{n}", content(data), fsync=False)
                writes.append((f"w{n}", path))
            for n, (path, source) in enumerate(changes.blobs.items()):
                fsutil.copy_file(source, f"{prefix}b{n}", fsync=False)
                writes.append((f"b{n}", path))
            # The generation counter moves with the rest: applying then needs no new space.
            generation = self.generation() + 1
            fsutil.write_file(staged / "generation", str(generation).encode(), fsync=False)
            writes.append(("generation", f"{LOCAL_DIR}/generation"))
            if self.fsync:
                fsutil.sync_files(staged, (prefix + name for name, _ in writes))
                fsutil.fsync_dir(staged)
        except OSError as exc:
            raise BackendError(f"cannot stage the transaction: {exc.strerror or exc}") from exc
        record = {
            "id": uuid.uuid4().hex,
            "time": dt.datetime.now(dt.UTC).isoformat(),
            "generation": generation,
            "message": changes.message,
            "writes": writes,
            "deletes": sorted(changes.deletes),
        }
        _crash_point("staged")
        try:
            fsutil.atomic_write(self.journal / "COMMIT", orjson.dumps(record), fsync=self.fsync)
        except OSError as exc:
            raise BackendError(f"cannot commit the transaction: {exc.strerror or exc}") from exc
        # Committed: from here on a crash rolls forward; an error undoes what was applied.
        _crash_point("committed")
        self._apply(record, undo_on_error=True)
        return Commit(
            id=record["id"],
            time=dt.datetime.fromisoformat(record["time"]),
            message=changes.message,
            summary=changes.summary,
        )

    def _apply(self, record: dict[str, Any], *, undo_on_error: bool = False) -> None:
        """Put a committed journal in place. Every rename is recorded: when one fails (no space,
        no permission) in a live commit, the ones done are reversed and the commit withdrawn,
        so the transaction fails as a whole; during recovery the journal is left for later."""
        staged = f"{self.journal}/staged/"
        trash = self.journal / "trash"
        root = f"{self.root}/"
        touched: set[str] = set()  # folders where a rename happened
        emptied: set[str] = set()  # folders something was moved out of: maybe empty now
        folders = _Folders()
        # Every rename made, in order, as one number (a large transaction makes hundreds of
        # thousands): -1-n delete n moved to the trash; 2n the old version of write n moved
        # there; 2n+1 write n put in place.
        done = array.array("q")
        deletes, writes = record["deletes"], record["writes"]
        try:
            trash.mkdir(exist_ok=True)
            for n, path in enumerate(deletes):
                target = root + path
                if os.path.lexists(target):
                    os.replace(target, f"{trash}/{n}")
                    done.append(-1 - n)
                    touched.add(os.path.dirname(target))
                    emptied.add(os.path.dirname(target))
            for n, (name, path) in enumerate(writes):
                source = staged + name
                if os.path.exists(source):
                    target = root + path
                    folder = os.path.dirname(target)
                    # In a folder this apply created nothing can be in the way.
                    if not folders.make(folder) and os.path.lexists(target):
                        _keep_old(target, f"{trash}/old-{name}")
                        done.append(2 * n)
                    os.replace(source, target)
                    done.append(2 * n + 1)
                    touched.add(folder)
                    _crash_point("applying")
        except OSError as exc:
            if not undo_on_error:
                raise BackendError(f"cannot finish the last transaction: {exc.strerror or exc}") from exc
            renames = []
            for step in done:
                if step < 0:
                    renames.append((root + deletes[-1 - step], f"{trash}/{-1 - step}"))
                else:
                    name, path = writes[step // 2]
                    source = staged + name if step % 2 else f"{trash}/old-{name}"
                    renames.append((source, root + path) if step % 2 else (root + path, source))
            self._undo(renames, touched)
            raise BackendError(f"cannot write into the repository: {exc.strerror or exc}") from exc
        if self.fsync:
            fsutil.sync_folders(sorted(touched))
        # A folder that received a file is not empty: only those something left may be.
        self._prune(emptied)
        os.unlink(self.journal / "COMMIT")
        shutil.rmtree(self.journal, ignore_errors=True)

    def _prune(self, folders: set[str]) -> None:
        for folder in sorted(folders, key=lambda p: p.count("/"), reverse=True):
            fsutil.prune_empty_dirs(Path(folder), self.root)

    def _undo(self, done: list[tuple[str, str]], touched: set[str]) -> None:
        """Reverse the renames of a failed apply and withdraw its commit (back to the state before)."""
        try:
            for source, target in reversed(done):
                os.replace(target, source)
            os.unlink(self.journal / "COMMIT")
        except OSError:
            return  # the journal stays committed: the next command finishes it
        self._prune(touched)

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
        except (BackendError, OSError):  # read-only media, no space...: a writer will finish it
            return

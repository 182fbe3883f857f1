"""The "git" backend: every transaction is one git commit; history, rollback and backups come free.

Layout. ``root`` is a bare git repository on one branch (``main``, or whatever HEAD names): a
``git clone`` of it, or ``stac-repository export``, gives the catalog as plain files that pystac
or STAC Browser read without this tool. Bare is the default because it keeps every commit
O(changed): a working tree needs git's index kept in step (so ``git status`` stays quiet), and
libgit2 reads and rewrites that index whole on every commit, which grows with the catalog
(about 0.1 s at 10k items, 0.5 s at 100k). ``options={"worktree": True}`` at init (CLI
``init --worktree``) makes a non-bare repository whose working tree shows the catalog, for
catalogs small enough to afford it. Both open and commit alike; a backup is always bare.

Commits cost what they change. Blobs go straight into the object database (as loose objects,
or for a large transaction as one pack, see :mod:`.gitpack`), only the trees on changed paths
are rebuilt (TreeBuilder, never an index scan), and the branch moves by
compare-and-swap (libgit2 re-checks the old value under ``refs/heads/<branch>.lock``) while the
writer holds the flock ``.git/stac-repository/lock``. With ``fsync`` on, new objects, LFS
objects and the moved ref reach the disk before the commit returns (see :class:`_Written`);
``core.fsync`` is set too, for the git CLI.

Commit point and recovery. Moving the branch is the commit point: a crash before it leaves only
unreferenced objects (``git gc`` drops them) and the branch on its last complete commit. The
working tree and index are caches of the branch: ``.git/stac-repository/worktree`` names the tree
they reflect. They are written *before* the branch moves, under a marker naming both trees, so
a reported success never leaves a stale catalog folder; a failure (a full disk) puts the old tree
back, and a crash leaves the marker for the next open or transaction, which re-syncs the paths
where the named trees differ from the branch (a diff of trees that skips identical subtrees, so
O(changed) again). Edits made by hand in the working tree are overwritten when a commit changes
the same paths.

History metadata. The ChangeSet message is the commit message and the summary follows as one JSON
trailer line (``Stac-Repository-Summary: {...}``), so :meth:`GitBackend.log` reads both from the
commit alone, never diffing trees. Author and committer: ``STAC_REPOSITORY_AUTHOR`` ("Name
<email>"), else git's user.name and user.email, else ``stac-repository <stac-repository@localhost>``.

Assets. Files from ``ChangeSet.blobs`` of at least ``lfs.threshold`` bytes (repository config;
default 0, so every non-empty asset) go to Git LFS, written by the backend itself (see
:mod:`.lfs`). Documents always stay plain blobs, so a clone without git-lfs still holds the whole
catalog. Reads and the working tree see the real bytes; git without git-lfs installed sees the
pointers and reports those files as modified, as in any LFS repository.

Backups (:meth:`GitBackend.native_backup`) are bare repositories: one pack of every object
reachable from the chosen commit, the branch pointing at it, and the LFS objects those commits
use. They open directly, and :meth:`GitBackend.restore_native` turns one back into a working
repository with the same commit ids.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import io
import itertools
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import orjson
import pygit2

from ..errors import BackendError, Conflict, Locked, NotFound, StacRepositoryError, UsageError
from . import fsutil, gitpack, lfs, lfsahead
from .base import (
    BOTH_WRITTEN,
    STATE_DIR,
    Backend,
    ChangeSet,
    Commit,
    FolderWriter,
    FolderWriting,
    Snapshot,
    Transaction,
    check_path,
    content,
)
from .gitfolders import FolderPack
from .gitobjects import (
    BLOB,
    FILE_MODES,
    TREE,
    TreeStream,
    compose_message,
    diff_trees,
    lfs_objects_added,
    reachable,
    to_commit,
)
from .gitpack import PackWriter
from .locking import WriterLock

CONFIG_PATH = f"{STATE_DIR}/config.json"
PRIVATE_DIR = "stac-repository"
"""Backend-private, unversioned state inside the git directory: writer lock, worktree marker."""
DEFAULT_BRANCH = "main"
DEFAULT_AUTHOR = ("stac-repository", "stac-repository@localhost")
DEFAULT_LFS_THRESHOLD = 0
PACK_THRESHOLD = 64
"""Files in one transaction from which its blobs go into one pack instead of loose objects."""
_CACHED_FOLDERS = 1024
"""Folders whose LFS names a snapshot remembers."""
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
RESERVED_NAMES = frozenset({lfs.ATTRIBUTES, ".gitmodules", ".lfsconfig"})
"""Git gives these names meaning: the backend writes .gitattributes itself and refuses them all."""

_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/~^+-]*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_AUTHOR = re.compile(r"[ \t]*([^<>\x00-\x1f\x7f]*?)[ \t]*<([^<>\s\x00-\x1f\x7f]*)>[ \t]*")
_REF_HELP = "use a commit id, a tag, a branch, HEAD~N or a date like 2026-01-01T00:00"


def _crash_point(name: str) -> None:
    """Fault injection for the crash tests: ``STAC_REPOSITORY_CRASH_AT=<name>`` kills the process here."""
    if os.environ.get("STAC_REPOSITORY_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    """Translate pygit2 and OS failures into BackendError at the boundary."""
    try:
        yield
    except StacRepositoryError:
        raise
    except (pygit2.GitError, OSError) as exc:
        raise BackendError(f"{action}: {exc}") from exc
    except KeyError as exc:  # pygit2's answer to an object missing from the object database
        raise BackendError(f"{action}: git object {exc} is missing (corrupt repository?)") from exc


def _open_repository(root: Path) -> pygit2.Repository:
    """The repository whose top is exactly ``root`` (never one found in a parent folder)."""
    try:
        repo = pygit2.Repository(str(root), pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except (pygit2.GitError, OSError):
        raise NotFound(f"{root} is not a git repository") from None
    top = Path(repo.path if repo.is_bare else repo.workdir)
    if top.resolve() != root.resolve():
        raise NotFound(f"{root} is not the top of a git repository")
    return repo


def _branch_ref_name(repo: pygit2.Repository) -> str:
    head = repo.references.get("HEAD")
    if head is None or head.type != pygit2.enums.ReferenceType.SYMBOLIC:
        raise BackendError(f"HEAD of {repo.path} is detached: check out the repository's branch")
    return str(head.target)


def _branch_commit(repo: pygit2.Repository) -> pygit2.Commit | None:
    ref = repo.references.get(_branch_ref_name(repo))
    return None if ref is None else ref.peel(pygit2.Commit)


def _signature(repo: pygit2.Repository) -> pygit2.Signature:
    """Author and committer of new commits (see the module docstring for the order of sources)."""
    configured = os.environ.get("STAC_REPOSITORY_AUTHOR")
    if configured:
        match = _AUTHOR.fullmatch(configured)
        if match is None or not match[1] or not match[2]:
            raise UsageError(f"STAC_REPOSITORY_AUTHOR={configured!r} is not of the form 'Name <email>'")
        return pygit2.Signature(match[1], match[2])
    try:
        config = repo.config
        return pygit2.Signature(config["user.name"], config["user.email"])
    except (KeyError, pygit2.GitError, ValueError):
        return pygit2.Signature(*DEFAULT_AUTHOR)


def _is_reserved(path: str) -> bool:
    return path.rpartition("/")[2] in RESERVED_NAMES


def _folder(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


# -- reading --------------------------------------------------------------------------------


def _uncache_trees() -> None:
    """Keep libgit2 from caching parsed trees (a process-wide libgit2 setting).

    Its object cache counts a tree by its raw size, but holds it parsed, about four times
    larger, up to 256 MB of raw size. Walking a 100k-item repository (export, backup) kept
    about 90 MB that way. Snapshots keep the folders they use in their own bounded cache
    (``GitSnapshot._folder``), so libgit2's adds nothing to this backend.
    """
    pygit2.settings.cache_object_limit(pygit2.GIT_OBJECT_TREE, 0)


class GitSnapshot(Snapshot):
    """One commit's tree: immutable, so readers need no lock and never see a half-applied change."""

    def __init__(self, backend: GitBackend, commit: pygit2.Commit | None) -> None:
        self.backend = backend
        self.repo = backend.repo
        self.ref = str(commit.id) if commit is not None else None
        self.tree: pygit2.Tree | None = commit.tree if commit is not None else None
        self._trees: dict[str, dict[str, pygit2.Object] | None] = {}
        self._lfs_names: dict[str, frozenset[str]] = {}

    def _folder(self, folder: str) -> dict[str, pygit2.Object] | None:
        """The entries of ``folder`` by name (None: no such folder), cached for the folders
        used last.

        Read by iterating the tree once, never with ``tree[name]``: pygit2 1.21's subscript
        keeps a reference to the name it is given, so every lookup with a new string leaks it
        (an export of 100k items leaked about 120 MB that way). A dict is also faster than
        libgit2's lookup in a folder of thousands of items.
        """
        if folder in self._trees:
            return self._trees[folder]
        tree = self.tree
        if folder:
            parent, _, name = folder.rpartition("/")
            up = self._folder(parent)
            entry = up.get(name) if up is not None else None
            tree = self.repo[entry.id] if entry is not None and entry.filemode == TREE else None
        entries = {entry.name: entry for entry in tree} if tree is not None else None
        if len(self._trees) >= _CACHED_FOLDERS:  # a bulk ingest looks up a new folder per item
            self._trees.clear()
        self._trees[folder] = entries
        return entries

    def _raw_entry(self, path: str) -> pygit2.Object | None:
        folder, _, name = path.rpartition("/")
        entries = self._folder(folder) if name else None
        return entries.get(name) if entries is not None else None

    def _entry(self, path: str) -> pygit2.Object | None:
        """The entry at ``path``; the names git reserves are invisible."""
        return None if _is_reserved(path) else self._raw_entry(path)

    def _blob(self, path: str) -> pygit2.Blob:
        entry = self._entry(path)
        if entry is None or entry.filemode not in FILE_MODES:
            raise NotFound(f"no file {path!r} in the repository at {self.ref}")
        try:  # not _storage_errors: a context manager costs a tenth of an export's reading
            blob: pygit2.Blob = self.repo[entry.id]
        except (pygit2.GitError, OSError, KeyError):
            with _storage_errors(f"cannot read {path!r}"):
                raise
        return blob

    def lfs_names(self, folder: str) -> frozenset[str]:
        """Names in ``folder`` that are LFS pointers, from its .gitattributes (cached)."""
        names = self._lfs_names.get(folder)
        if names is None:
            names = frozenset()
            entry = self._raw_entry(_join(folder, lfs.ATTRIBUTES))
            if entry is not None and entry.filemode in FILE_MODES:
                names = lfs.parse_attributes(self.repo[entry.id].data)
            if len(self._lfs_names) >= _CACHED_FOLDERS:  # a bulk ingest visits a folder per item
                self._lfs_names.clear()
            self._lfs_names[folder] = names
        return names

    def _pointer(self, path: str, blob: pygit2.Blob) -> lfs.Pointer | None:
        if blob.size > lfs.MAX_POINTER_SIZE:
            return None
        if path.rsplit("/", 1)[-1] not in self.lfs_names(_folder(path)):
            return None
        return lfs.parse_pointer(blob.data)

    def read(self, path: str) -> bytes:
        with self.open(path) as stream:
            return stream.read()

    def exists(self, path: str) -> bool:
        entry = self._entry(path)
        return entry is not None and entry.filemode in FILE_MODES

    def open(self, path: str) -> BinaryIO:
        blob = self._blob(path)
        pointer = self._pointer(path, blob)
        if pointer is not None:
            return self.backend.lfs.open(pointer, path)
        return io.BytesIO(blob.data)

    def copy_to(self, path: str, target: str) -> None:
        blob = self._blob(path)
        pointer = self._pointer(path, blob)
        if pointer is None:
            fsutil.write_file(target, blob.data, fsync=False)
        else:
            self.backend.lfs.copy_out(pointer, path, target)

    def walk(self, prefix: str = "") -> Iterator[str]:
        if self.tree is None:
            return
        tree = self.tree
        if prefix:
            entry = self._entry(prefix)
            if entry is None:
                return
            if entry.filemode in FILE_MODES:
                yield prefix
                return
            if entry.filemode != TREE:
                return
            tree = self.repo[entry.id]
        # Depth first in each tree's own order, which is git's: names compared with a "/" after
        # those of trees. That is the sorted order of the full paths, so nothing is collected
        # (an export of a large catalog holds one open tree per level).
        stack: list[tuple[str, Iterator[pygit2.Object]]] = [(f"{prefix}/" if prefix else "", iter(tree))]
        while stack:
            base, entries = stack[-1]
            for entry in entries:
                if entry.filemode == TREE:
                    stack.append((f"{base}{entry.name}/", iter(self.repo[entry.id])))
                    break
                if entry.filemode in FILE_MODES and entry.name not in RESERVED_NAMES:
                    yield base + entry.name
            else:
                stack.pop()


# -- writing --------------------------------------------------------------------------------


class _GitTransaction(Transaction):
    def __init__(self, backend: GitBackend, head: pygit2.Commit | None) -> None:
        self.backend = backend
        self.head = head
        self.snapshot = GitSnapshot(backend, head)
        self._adopted: list[list[str]] = []  # packs of folders stored ahead (gitpack.land)
        self._threshold: tuple[Snapshot, int] | None = None

    def lfs_threshold(self) -> int:
        """``lfs.threshold`` as the head has it (read once per snapshot)."""
        if self._threshold is None or self._threshold[0] is not self.snapshot:
            assert isinstance(self.snapshot, GitSnapshot)
            with _storage_errors("cannot commit the transaction"):
                self._threshold = (self.snapshot, self.backend._lfs_threshold(self.snapshot))
        return self._threshold[1]

    def folder_writing(self) -> FolderWriting | None:
        """Workers store new folders in packs of their own (see :mod:`.gitfolders`). What they
        add is made durable by one syncfs at the commit, on Linux; elsewhere it would need an
        fsync per file, and the commit builds the folders itself."""
        backend = self.backend
        if backend.fsync and sys.platform != "linux":
            return None
        threshold = self.lfs_threshold()
        git_dir = backend.git_dir

        def start() -> FolderWriter:
            return FolderPack(git_dir, threshold, RESERVED_NAMES)

        return FolderWriting(start=start, adopt=self._adopt)

    def _adopt(self, report: object) -> None:
        if (
            not isinstance(report, list)
            or len(report) not in (0, 4)
            or not all(isinstance(f, str) for f in report)
        ):
            raise BackendError(f"a worker's report of the folders it stored is not one: {report!r}")
        if report:
            self._adopted.append(report)

    def commit(self, changes: ChangeSet) -> Commit | None:
        snapshot = self.snapshot
        assert isinstance(snapshot, GitSnapshot)
        threshold = self.lfs_threshold()
        with _storage_errors("cannot commit the transaction"):
            # Forked first: the change is checked and sorted here while the child starts adding.
            ahead = self.backend._add_ahead(changes, threshold)
        try:
            changes.check_deletes()  # _apply checks each path as it comes
            changes.check_folders()
            if changes.is_empty():
                return None
            if changes.folders and not self._adopted:
                raise BackendError("the transaction has folders stored ahead but no worker's pack for them")
            with _storage_errors("cannot commit the transaction"):
                written = self.backend._written()
                tree = self.backend._apply(snapshot, changes, written, threshold, ahead, self._adopted)
                return self._land(tree, changes.message, changes.summary, written)
        finally:
            if ahead is not None:
                ahead.close()

    def _land(
        self, tree: pygit2.Oid, message: str, summary: dict[str, Any], written: _Written
    ) -> Commit | None:
        if self.head is not None and self.head.tree_id == tree:
            return None
        commit = self.backend._commit(self.head, tree, compose_message(message, summary), written)
        self.head = commit
        self.snapshot = GitSnapshot(self.backend, commit)
        return to_commit(commit)


class GitBackend(Backend):
    name: ClassVar[str] = "git"
    has_history: ClassVar[bool] = True
    description: ClassVar[str] = "git repository: one commit per transaction, assets in Git LFS"

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        super().__init__(root)
        self._attach(_open_repository(root), fsync)
        if not self._is_stac_repository():
            raise NotFound(f"{root} is a git repository but not a stac-repository (no {CONFIG_PATH})")
        self._recover_if_idle()

    def _attach(self, repo: pygit2.Repository, fsync: bool) -> None:
        _uncache_trees()
        self.repo = repo
        self.fsync = fsync
        self.git_dir = Path(repo.path)
        self.private = self.git_dir / PRIVATE_DIR
        self.lfs = lfs.Store(self.git_dir)
        self.branch = _branch_ref_name(repo)

    def _is_stac_repository(self) -> bool:
        with _storage_errors(f"cannot read {self.root}"):
            head = _branch_commit(self.repo)
        return head is not None and GitSnapshot(self, head).exists(CONFIG_PATH)

    # -- discovery and creation -------------------------------------------------------

    @classmethod
    def detect(cls, root: Path) -> bool:
        try:
            repo = _open_repository(root)
            head = _branch_commit(repo)
            if head is None:
                return False
            head.tree[CONFIG_PATH]
        except (StacRepositoryError, KeyError, pygit2.GitError, OSError):
            return False
        return True

    @classmethod
    def create(cls, root: Path, changes: ChangeSet, *, options: dict[str, Any]) -> GitBackend:
        """A new repository; ``options``: ``fsync`` (default true), ``worktree`` (default false:
        a bare repository; true checks the catalog out, at the cost of an index rewrite per commit)."""
        unknown = set(options) - {"fsync", "worktree"}
        if unknown:
            raise UsageError(
                f"unknown git backend options: {', '.join(sorted(unknown))} (known: fsync, worktree)"
            )
        fsync = bool(options.get("fsync", True))
        # Built beside ``root`` and renamed into place: a crash never leaves a half-made repository.
        with _storage_errors(f"cannot create a git repository at {root}"), fsutil.staged_folder(root) as tmp:
            backend = cls._new(
                tmp, bare=not options.get("worktree", False), fsync=fsync, branch=DEFAULT_BRANCH
            )
            with backend.transaction(timeout=0) as tx:
                tx.commit(changes)
            backend.close()
        return cls(root, fsync=fsync)

    @classmethod
    def _new(cls, root: Path, *, bare: bool, fsync: bool, branch: str) -> GitBackend:
        """An empty repository with its settings and private state, before its first commit."""
        backend = cls.__new__(cls)
        Backend.__init__(backend, root)
        backend._attach(pygit2.init_repository(str(root), bare=bare, initial_head=branch), fsync)
        config = backend.repo.config
        config["core.fsync"] = "committed,index"  # git >= 2.36; the git CLI is durable too
        config["core.fsyncMethod"] = "fsync"
        backend.private.mkdir(exist_ok=True)
        if not bare:
            backend._mark_worktree(EMPTY_TREE)
        return backend

    # -- reading ----------------------------------------------------------------------

    def head(self) -> pygit2.Commit:
        with _storage_errors(f"cannot read the branch of {self.root}"):
            commit = _branch_commit(self.repo)
        if commit is None:
            raise NotFound(f"{self.root} has no commit yet")
        return commit

    def snapshot(self, ref: str | None = None) -> GitSnapshot:
        commit = self.head() if ref is None else self.repo[self.resolve(ref)]
        return GitSnapshot(self, commit)

    def resolve(self, ref: str) -> str:
        """The full id of the commit ``ref`` names (id, tag, branch, HEAD~N or date)."""
        if _DATE.fullmatch(ref):
            return self._resolve_date(ref)
        if len(ref) > 256 or not _REF.fullmatch(ref) or ".." in ref:
            raise UsageError(f"refused ref {ref!r}: {_REF_HELP}")
        try:
            commit = self.repo.revparse_single(ref).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError):
            raise NotFound(f"unknown ref {ref!r}: {_REF_HELP}") from None
        return str(commit.id)

    def _resolve_date(self, ref: str) -> str:
        try:
            when = dt.datetime.fromisoformat(ref)
        except ValueError:
            raise UsageError(f"refused ref {ref!r}: not a valid date/time") from None
        limit = when.astimezone().timestamp()  # a naive time is local time, as in git
        walker = self.repo.walk(self.head().id, pygit2.enums.SortMode.TOPOLOGICAL)
        walker.simplify_first_parent()
        first: pygit2.Commit | None = None
        for commit in walker:
            if commit.commit_time <= limit:
                return str(commit.id)
            first = commit
        since = to_commit(first).time.isoformat() if first is not None else "never"
        raise NotFound(f"no commit at or before {ref} (the history starts at {since})")

    def log(self, ref: str | None = None) -> Iterator[Commit]:
        start = self.head().id if ref is None else pygit2.Oid(hex=self.resolve(ref))
        walker = self.repo.walk(start, pygit2.enums.SortMode.TOPOLOGICAL)
        return (to_commit(commit) for commit in walker)

    # -- writing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, *, timeout: float) -> Iterator[Transaction]:
        with _storage_errors(f"cannot prepare {self.private}"):
            self.private.mkdir(exist_ok=True)
        with WriterLock(self.private / "lock", timeout=timeout):
            self._recover()
            with _storage_errors(f"cannot read the branch of {self.root}"):
                head = _branch_commit(self.repo)
            try:
                yield _GitTransaction(self, head)
            finally:  # what workers stored ahead and no commit adopted; under the lock, all ours
                with contextlib.suppress(OSError):
                    for path in gitpack.temporaries(self.git_dir / "objects"):
                        path.unlink(missing_ok=True)

    def restore(
        self, ref: str, *, timeout: float, message: str, summary: dict[str, Any] | None = None
    ) -> Commit | None:
        """A new commit whose tree is ``ref``'s: history keeps everything, so this too can be undone.

        None when the head already has that tree. ``summary`` (e.g. the ids the rollback adds and
        removes, which only the STAC layer knows) is stored along with the restored commit id.
        """
        with self.transaction(timeout=timeout) as tx:
            assert isinstance(tx, _GitTransaction)
            target: pygit2.Commit = self.repo[self.resolve(ref)]
            with _storage_errors(f"cannot restore {ref}"):
                summary = {**(summary or {}), "restored": str(target.id), "ref": ref}
                return tx._land(target.tree_id, message, summary, self._written())

    def _lfs_threshold(self, snapshot: GitSnapshot) -> int:
        try:
            config = orjson.loads(snapshot.read(CONFIG_PATH))
            value = config.get("lfs", {}).get("threshold", DEFAULT_LFS_THRESHOLD)
        except (NotFound, orjson.JSONDecodeError, AttributeError):
            return DEFAULT_LFS_THRESHOLD
        return int(value) if isinstance(value, int | float) and value >= 0 else DEFAULT_LFS_THRESHOLD

    def _apply(
        self,
        snapshot: GitSnapshot,
        changes: ChangeSet,
        written: _Written,
        threshold: int,
        ahead: lfsahead.AddAhead | None = None,
        adopted: list[list[str]] | None = None,
    ) -> pygit2.Oid:
        """Write the new blobs and the trees on their paths; the id of the resulting root tree.

        Paths are taken in sorted order and each folder's tree is written as soon as the stream
        leaves it (:class:`.gitobjects.TreeStream`), so memory does not grow with the change. A
        large transaction writes its objects as one pack (see :mod:`.gitpack`), a small one as
        loose objects (a pack per single-item commit would slow every later lookup).
        """
        files = len(changes.writes) + len(changes.blobs)
        # About 1.6 objects per file: with its tree and .gitattributes, or an LFS pointer.
        packer = PackWriter(self.git_dir / "objects", expected=2 * files) if files >= PACK_THRESHOLD else None

        def store(kind: int, data: bytes) -> pygit2.Oid:
            if packer is not None:
                return packer.add(kind, data)
            oid = self.repo.odb.write(kind, data)
            written.objects.append(oid)
            return oid

        def create(data: bytes) -> pygit2.Oid:
            return store(pygit2.GIT_OBJECT_BLOB, data)

        lfs_updates: dict[str, dict[str, bool]] = {}  # of the folders open in the stream

        def attributes(folder: str, entries: dict[bytes, tuple[int, bytes]]) -> None:
            updates = lfs_updates.pop(folder, None)
            if updates:
                self._update_attributes(snapshot, folder, updates, entries, create)

        writes, deletes, folders = changes.writes, changes.deletes, changes.folders
        stream = TreeStream(self.repo, snapshot.tree, store, deletes, attributes)
        previous = None
        try:
            # What ChangeSet.check tests besides the deletes, in the one pass over the paths.
            for path in sorted(itertools.chain(changes.paths(), folders)):
                if path == previous:  # in two of writes, blobs and deletes
                    raise BackendError(
                        BOTH_WRITTEN if path not in deletes else f"path {path!r} is both deleted and written"
                    )
                previous = check_path(path)
                if path.rpartition("/")[2] in RESERVED_NAMES:
                    raise BackendError(f"refused write to git-reserved path {path!r}")
                if folders and path in folders:  # a new folder, stored ahead whole
                    if not (stream.deleted and stream.moot(path)):
                        stream.put(path, pygit2.Oid(raw=folders[path]), TREE)
                    continue
                blob = path not in writes and path not in deletes
                added = ahead.next() if blob and ahead is not None else None  # one answer per blob
                if stream.deleted and stream.moot(path):
                    continue
                if blob:
                    source = changes.blobs[path]
                    oid, is_lfs = self._store_blob(path, source, threshold, written, create, added)
                elif path in writes:
                    oid, is_lfs = create(content(writes[path])), False
                else:
                    oid, is_lfs = None, False
                stream.put(path, oid)
                folder, _, name = path.rpartition("/")
                lfs_updates.setdefault(folder, {})[name] = is_lfs
            tree = stream.finish() or store(pygit2.GIT_OBJECT_TREE, b"")
            if packer is not None:
                for path in packer.finish(fsync=False):  # made durable with the rest
                    written.file(path)
            if adopted and folders:  # the workers' packs; their LFS objects are in no list: sync all
                written.everything = written.enabled
                for files in adopted:
                    gitpack.land(self.git_dir / "objects", files)
                adopted.clear()
        except BaseException:
            if packer is not None:
                packer.abort()
            raise
        finally:
            if ahead is not None:
                ahead.close()
        return tree

    def _add_ahead(self, changes: ChangeSet, threshold: int) -> lfsahead.AddAhead | None:
        """A child adding the transaction's LFS objects ahead of the tree stream (see :mod:`.lfsahead`).

        The child lists the sources itself, from its copy of the change, in the stream's order
        (:meth:`_apply`'s: the paths sorted).
        """
        blobs, writes = changes.blobs, changes.writes
        sources = (
            blobs[path] if lfs.can_track(path.rpartition("/")[2]) else None
            for path in sorted(changes.paths())
            if path not in writes and path in blobs
        )
        ahead = lfsahead.start(self.lfs, sources, len(blobs), threshold)
        if ahead is not None:
            _crash_point("git-lfs-ahead")
        return ahead

    def _store_blob(
        self,
        path: str,
        source: str | Path,
        threshold: int,
        written: _Written,
        create: Callable[[bytes], pygit2.Oid],
        added: lfs.Pointer | None = None,
    ) -> tuple[pygit2.Oid, bool]:
        """The blob of one asset: its bytes, or an LFS pointer (``added``: the object that the
        child of :mod:`.lfsahead` added, having read the file and found it large enough)."""
        pointer = added
        if pointer is None:
            try:
                if lfs.can_track(path.rpartition("/")[2]):
                    pointer = self.lfs.add(source, threshold)
                if pointer is None:  # a plain blob
                    with fsutil.open_regular(source) as fh:  # never a FIFO swapped in meanwhile
                        return create(fh.read()), False
            except OSError as exc:
                if exc.filename is None or os.fspath(exc.filename) != os.fspath(source):  # writing failed
                    raise
                raise BackendError(f"cannot read the asset {source} for {path!r}: {exc.strerror}") from exc
        if written.tracking:
            stored = self.lfs.path(pointer.oid)
            written.file(stored)
            written.folder(*stored.parents[1:3])  # lfs/objects/aa and lfs/objects, maybe new entries
        return create(pointer.encode()), True

    def _update_attributes(
        self,
        snapshot: GitSnapshot,
        folder: str,
        updates: dict[str, bool],
        entries: dict[bytes, tuple[int, bytes]],
        create: Callable[[bytes], pygit2.Oid],
    ) -> None:
        """Set ``folder``'s .gitattributes (in its tree ``entries``) to list its LFS files."""
        current = snapshot.lfs_names(folder)
        names = {n for n in current if updates.get(n, True)} | {n for n, on in updates.items() if on}
        if names == current:
            return
        key = lfs.ATTRIBUTES.encode()
        if names:
            entries[key] = (BLOB, create(lfs.render_attributes(names)).raw)
        else:
            entries.pop(key, None)

    def _commit(
        self, head: pygit2.Commit | None, tree: pygit2.Oid, message: str, written: _Written
    ) -> pygit2.Commit:
        """Write the commit, make everything durable, then advance the branch to it."""
        signature = _signature(self.repo)
        parents = [head.id] if head is not None else []
        oid = self.repo.create_commit(None, signature, signature, message, tree, parents)
        written.objects.append(oid)
        self._add_loose_objects(written)
        written.flush()
        _crash_point("git-objects-written")
        commit: pygit2.Commit = self.repo[oid]
        self._advance(head, commit, message.split("\n", 1)[0])
        return commit

    def _advance(self, head: pygit2.Commit | None, commit: pygit2.Commit, title: str) -> None:
        """Bring the working tree to ``commit``, then move the branch to it (the commit point).

        A failure before the commit point puts the working tree back (or leaves it marked for the
        next command to repair), so a reported failure never leaves a changed catalog folder and a
        reported success never a stale one.
        """
        previous = head.tree if head is not None else None
        if not self.repo.is_bare:
            self._prepare_worktree(commit.tree, previous)
        try:
            self._move_branch(head, commit.id, title)
        except BaseException:
            if not self.repo.is_bare:
                self._restore_worktree(previous)
            raise
        _crash_point("git-branch-moved")
        if not self.repo.is_bare:
            # After the commit point nothing may undo the commit: a marker left pending is
            # repaired by the next command.
            with contextlib.suppress(OSError, StacRepositoryError):
                self._mark_worktree(str(commit.tree_id))

    def _move_branch(self, head: pygit2.Commit | None, oid: pygit2.Oid, title: str) -> None:
        """Compare-and-swap the branch from ``head`` to ``oid``: Conflict only when another writer
        moved it; any other failure (a full disk) is reported as such, with git's reflog lines of
        the failed update taken back."""
        reflogs = [self.git_dir / "logs" / self.branch, self.git_dir / "logs" / "HEAD"]
        sizes = {log: log.stat().st_size for log in reflogs if log.is_file()}
        try:
            if head is None:
                self.repo.create_reference_direct(
                    self.branch, oid, False, message=f"stac-repository: {title}"
                )
            else:
                if self.repo.references[self.branch].target != head.id:
                    raise self._moved()
                # libgit2 re-checks the old value under the ref lock
                self.repo.references[self.branch].set_target(oid, f"stac-repository: {title}")
        except (pygit2.GitError, KeyError, OSError) as exc:
            _truncate_logs(reflogs, sizes)
            current = _branch_commit(self.repo)
            if isinstance(exc, pygit2.AlreadyExistsError | KeyError) or (
                current is not None and current.id not in (oid, head.id if head is not None else None)
            ):
                raise self._moved() from None
            raise BackendError(f"cannot move {_short(self.branch)} to the new commit: {exc}") from exc
        if self.fsync:
            ref_file = self.git_dir / self.branch
            if ref_file.exists():
                _fsync_file(ref_file)
                fsutil.fsync_dir(ref_file.parent)

    def _moved(self) -> Conflict:
        return Conflict(
            f"{_short(self.branch)} moved during the transaction (another program wrote to the "
            "repository); nothing was committed, try again"
        )

    def _add_loose_objects(self, written: _Written) -> None:
        """The loose files of the new objects (packed ones were made durable with their pack).

        Each must exist: out of inodes, libgit2 has been seen to return the id of an object it
        never stored, and a commit must never point at a missing object.
        """
        objects = self.git_dir / "objects"
        for oid in set(written.objects):
            hexid = str(oid)
            loose = objects / hexid[:2] / hexid[2:]
            if loose.is_file():
                written.file(loose)
            elif oid not in self.repo:  # packed (made durable then), or missing
                raise BackendError(f"git did not store object {hexid}: {_space_left(objects)}")
        written.folder(objects)  # a new objects/xx folder is an entry of objects/

    # -- the working tree -------------------------------------------------------------

    def _marker(self) -> Path:
        return self.private / "worktree"

    def _worktree_trees(self) -> list[str] | None:
        """The tree the working tree reflects, or two (before, after) while a commit writes it or
        after one was interrupted: then only the paths where they differ are in doubt. None when
        unknown (a plain clone: git checked it out)."""
        try:
            trees = self._marker().read_text().split()
        except FileNotFoundError:
            return None
        if not 1 <= len(trees) <= 2 or not all(re.fullmatch(r"[0-9a-f]{40}", t) for t in trees):
            raise BackendError(f"corrupt working-tree marker {self._marker()}")
        return trees

    def _mark_worktree(self, *trees: str) -> None:
        fsutil.atomic_write(self._marker(), f"{' '.join(trees)}\n".encode(), fsync=self.fsync)

    def _tree(self, hexid: str) -> pygit2.Tree | None:
        """A marked tree; None (rewrite every file) if it is empty or was pruned by hand."""
        tree = self.repo.get(hexid) if hexid != EMPTY_TREE else None
        return tree if isinstance(tree, pygit2.Tree) else None

    def _needs_sync(self) -> bool:
        if self.repo.is_bare:
            return False
        trees = self._worktree_trees()
        head = _branch_commit(self.repo)
        return trees is not None and head is not None and trees != [str(head.tree_id)]

    def _stale_locks(self) -> list[Path]:
        """git lock files and our state-file temporaries that a killed writer left behind."""
        names = [f"{self.branch_name}.lock", "index.lock", "HEAD.lock", "packed-refs.lock", "config.lock"]
        candidates = [self.git_dir / "refs" / "heads" / names[0], *(self.git_dir / n for n in names[1:])]
        temporaries = list(self.private.glob(".*.tmp-*")) if self.private.is_dir() else []
        temporaries += gitpack.temporaries(self.git_dir / "objects")
        return [path for path in candidates if path.exists()] + temporaries

    def _recover(self) -> None:
        """Under the lock: drop what a killed writer left (lock files, temporary objects) and
        finish a working-tree update it interrupted. Only writers holding our lock take git's
        locks, so under it any such lock file is stale."""
        with _storage_errors(f"cannot update the working tree of {self.root}"):
            for path in self._stale_locks():
                path.unlink(missing_ok=True)
            self.lfs.clean_tmp()
            head = _branch_commit(self.repo)
            if head is not None and self._needs_sync():
                self._sync_worktree(head.tree)

    def _recover_if_idle(self) -> None:
        with _storage_errors(f"cannot read {self.root}"):
            if not self._needs_sync() and not self._stale_locks():
                return
        try:
            with WriterLock(self.private / "lock", timeout=0):
                self._recover()
        except Locked:  # a live writer is updating the working tree; it will finish
            return

    def _prepare_worktree(self, tree: pygit2.Tree, previous: pygit2.Tree | None) -> None:
        """Before the commit point: write ``tree`` into the working tree under a marker naming both
        trees; on failure put ``previous`` back (or leave the marker for the next command)."""
        before = str(previous.id) if previous is not None else EMPTY_TREE
        self._mark_worktree(before, str(tree.id))  # also right for a clone git checked out
        try:
            self._sync_worktree(tree, mark=False)
        except BaseException:
            self._restore_worktree(previous)
            raise

    def _restore_worktree(self, previous: pygit2.Tree | None) -> None:
        """Best effort after a failed commit: deletes come first, so a full disk gets room back."""
        with contextlib.suppress(OSError, pygit2.GitError, StacRepositoryError):
            self._sync_worktree(previous)

    def _sync_worktree(
        self, tree: pygit2.Tree | None, unmarked: pygit2.Tree | None = None, *, mark: bool = True
    ) -> None:
        """Bring the working tree and index to ``tree``, rewriting only the paths that differ from
        the marked tree(s). Without a marker (a plain clone, checked out by git) the tree is taken
        to be ``unmarked``."""
        marked = self._worktree_trees()
        olds = [unmarked] if marked is None else [self._tree(t) for t in marked]
        changes: dict[str, pygit2.Object | None] = {}
        for old in olds:
            changes.update(diff_trees(self.repo, old, tree))
        view = GitSnapshot(self, None)
        view.tree = tree
        index = self.repo.index
        index.read(False)
        written = self._written()
        touched: set[Path] = set()
        for path, entry in changes.items():
            if entry is None:
                _remove(self.root / path, self.root)
                # and what a writer killed while creating this path left beside it
                _remove(_worktree_tmp(self.root / path), self.root)
                touched.add((self.root / path).parent)
                with contextlib.suppress(OSError):
                    index.remove(path)
        for path, entry in changes.items():
            if entry is not None:
                touched |= self._write_worktree_file(view, path, self.repo[entry.id])
                written.file(self.root / path)
                index.add(pygit2.IndexEntry(path, entry.id, entry.filemode))
                _crash_point("git-worktree-file")
        for folder in sorted(touched, key=lambda p: len(p.parts), reverse=True):
            fsutil.prune_empty_dirs(folder, self.root)
            while not folder.is_dir():  # pruned: the entry went from its parent
                folder = folder.parent
            written.folder(folder)
        index.write()
        written.file(self.git_dir / "index")
        written.flush()
        if mark:
            self._mark_worktree(str(tree.id) if tree is not None else EMPTY_TREE)

    def _write_worktree_file(self, view: GitSnapshot, path: str, blob: pygit2.Blob) -> set[Path]:
        """Write one file as a reader expects it (LFS content, not the pointer); the folders
        whose entries changed."""
        target = self.root / path
        touched = {target.parent, *(new.parent for new in _make_folder(target.parent, self.root))}
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        tmp = _worktree_tmp(target)
        pointer = view._pointer(path, blob)
        try:
            with self.lfs.open(pointer, path) if pointer is not None else io.BytesIO(blob.data) as stream:
                lfs.copy_stream(stream, tmp, fsync=False)  # the caller makes it durable
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return touched

    # -- remotes (see stac_repository.repository.remote) -------------------------------

    @property
    def local_dir(self) -> Path:
        return self.private

    def roots(self) -> tuple[Path, ...]:
        """The folders whose file systems hold what a commit writes (git directory, working tree)."""
        return (self.git_dir, self.root) if self.git_dir != self.root else (self.git_dir,)

    def _written(self) -> _Written:
        """What one commit step writes, made durable on this repository's file systems."""
        return _Written(self.fsync, *self.roots())

    @property
    def branch_name(self) -> str:
        return _short(self.branch)

    def lfs_objects_added(self, tip: str, known: str | None) -> set[str]:
        """LFS objects of the commits reachable from ``tip`` and not from ``known`` (O(changed))."""
        with _storage_errors("cannot list the LFS objects of the new commits"):
            base = pygit2.Oid(hex=known) if known is not None else None
            return lfs_objects_added(self.repo, pygit2.Oid(hex=tip), base)

    def copy_lfs(self, oids: Iterable[str], source: lfs.Store, target: lfs.Store) -> int:
        """Copy LFS objects between two stores, durable before any branch points at them; the
        number copied (objects already there are skipped)."""
        written = _Written(self.fsync, target.root)
        with _storage_errors("cannot copy the LFS objects"):
            count = 0
            for oid in sorted(oids):
                stored = source.copy_object(oid, target, fsync=False)
                if stored is not None:
                    written.file(stored)
                    written.folder(*stored.parents[1:3])
                    count += 1
            written.flush()
        return count

    def fast_forward(self, head: pygit2.Commit, target: pygit2.Commit, title: str) -> None:
        """Under the writer lock: move the branch from ``head`` to its descendant ``target`` (its
        objects and LFS objects already durable here) and bring the working tree along, path by
        path as after a commit. The id index lives in the tree, so it follows by itself."""
        if not self.repo.descendant_of(target.id, head.id):
            raise Conflict(f"{target.id} does not descend from {self.branch_name}: not a fast-forward")
        with _storage_errors(f"cannot move {self.branch_name}"):
            self._advance(head, target, title)

    # -- backups ----------------------------------------------------------------------

    def backup(self, destination: Path, *, ref: str | None = None) -> None:
        self.native_backup(destination, ref=ref)

    def native_backup(self, destination: Path, *, ref: str | None = None) -> int:
        """A bare repository at ``destination``: history up to ``ref`` and its LFS objects.

        Returns the number of catalog files at ``ref``.
        """
        tip = self.head() if ref is None else self.repo[self.resolve(ref)]
        with (
            _storage_errors(f"cannot write the backup {destination}"),
            fsutil.staged_folder(destination) as tmp,
        ):
            copy = pygit2.init_repository(str(tmp), bare=True, initial_head=_short(self.branch))
            _copy_history(self, copy, tip, self.branch)
            if self.fsync:
                _fsync_tree(tmp)
        return sum(1 for _ in GitSnapshot(self, tip).walk())

    @classmethod
    def restore_native(cls, source: Path, path: Path, *, options: dict[str, Any]) -> GitBackend:
        """A repository at ``path`` with the history (same commit ids) of ``source``; bare unless
        ``options`` asks for a working tree, as at :meth:`create`."""
        unknown = set(options) - {"fsync", "worktree"}
        if unknown:
            raise UsageError(f"unknown git backend options: {', '.join(sorted(unknown))}")
        origin = cls(source.absolute(), fsync=bool(options.get("fsync", True)))
        try:
            tip = origin.head()
            with _storage_errors(f"cannot restore {source} into {path}"), fsutil.staged_folder(path) as tmp:
                bare = not options.get("worktree", False)
                restored = cls._new(tmp, bare=bare, fsync=origin.fsync, branch=_short(origin.branch))
                _copy_history(origin, restored.repo, tip, origin.branch)
                if origin.fsync:
                    _fsync_tree(restored.git_dir)
                with restored.transaction(timeout=0):
                    pass  # recovery checks out any working tree: its marker (empty) != the branch tree
                restored.close()
        finally:
            origin.close()
        return cls(path)

    def close(self) -> None:
        self.repo.free()


def local_lfs_store(path: Path) -> lfs.Store:
    """The LFS store of the git repository at ``path``, bare or not (a remote on a local path)."""
    with _storage_errors(f"cannot open the remote repository {path}"):
        repo = pygit2.Repository(str(path), pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
        try:
            return lfs.Store(Path(repo.path))
        finally:
            repo.free()


def adopt_head(path: Path, branch: str) -> None:
    """Point the unborn HEAD of the repository at ``path`` to ``branch``, which a push just made:
    ``git init --bare`` names ``master`` (or init.defaultBranch), and a HEAD on a missing branch
    would leave clones and ``init --from-backup`` of the remote empty."""
    with _storage_errors(f"cannot update HEAD of {path}"):
        repo = pygit2.Repository(str(path), pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
        try:
            if repo.head_is_unborn and repo.references.get(f"refs/heads/{branch}") is not None:
                repo.set_head(f"refs/heads/{branch}")
        finally:
            repo.free()


# -- helpers --------------------------------------------------------------------------------


def _worktree_tmp(target: Path) -> Path:
    """Where a working-tree file is written before it is renamed into place."""
    return target.with_name(f".{target.name}.stac-repository-tmp")


def _short(branch: str) -> str:
    return branch.removeprefix("refs/heads/")


class _Written:
    """What a commit step wrote and must make durable before the next step (when fsync is on).

    A few paths are fsynced one by one. Many (an import writes thousands of files, at a fraction
    of a millisecond per fsync) take one syncfs() of each file system under ``roots`` instead
    (not sync(), which would wait for every other file system's writes too), on Linux where it
    waits; past that point paths are no longer kept, so a large import holds no list of its files.
    """

    BATCH = 64

    def __init__(self, enabled: bool, *roots: Path) -> None:
        self.enabled = enabled
        self.roots = roots
        self.objects: list[pygit2.Oid] = []
        self.files: set[Path] = set()
        self.folders: set[Path] = set()
        self.everything = False

    @property
    def tracking(self) -> bool:
        """Are paths still listed (no need to make them otherwise)?"""
        return self.enabled and not self.everything

    def file(self, path: Path) -> None:
        if self.tracking:
            self.files.add(path)
            self.folders.add(path.parent)
            self._check_size()

    def folder(self, *paths: Path) -> None:
        if self.tracking:
            self.folders.update(paths)
            self._check_size()

    def _check_size(self) -> None:
        if len(self.files) + len(self.folders) > self.BATCH and sys.platform == "linux":
            self.everything = True
            self.files, self.folders = set(), set()

    def flush(self) -> None:
        everything, files, folders = self.everything, self.files, self.folders
        self.everything, self.files, self.folders = False, set(), set()
        if not self.enabled:
            return
        if everything:
            fsutil.sync_filesystems(self.roots)
            return
        for path in files:
            if path.is_file():
                _fsync_file(path)
        for path in folders:
            if path.is_dir():
                fsutil.fsync_dir(path)


def _space_left(folder: Path) -> str:
    """Why a write may have failed, for the message: a full disk or inode table, else a guess."""
    with contextlib.suppress(OSError):
        st = os.statvfs(folder)
        if st.f_bavail == 0 or (st.f_files and st.f_favail == 0):
            return os.strerror(errno.ENOSPC)
    return "out of disk space or inodes?"


def _truncate_logs(logs: list[Path], sizes: dict[Path, int]) -> None:
    """Take back what a failed ref update appended to its reflogs (a full line or half of one)."""
    for log in logs:
        with contextlib.suppress(OSError):
            if log not in sizes:
                log.unlink(missing_ok=True)
            elif log.stat().st_size > sizes[log]:
                os.truncate(log, sizes[log])


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(top: Path) -> None:
    written = _Written(True, top)
    for folder, _, files in os.walk(top):
        written.folder(Path(folder))
        for name in files:
            written.file(Path(folder) / name)
    written.flush()


def _remove(target: Path, root: Path) -> None:
    """Delete a working-tree file or folder, never through a symlink planted in the working tree."""
    step = root
    for part in target.relative_to(root).parts[:-1]:
        step = step / part
        if step.is_symlink() or not step.is_dir():
            return  # not ours: the path leads out of the working tree, or is gone already
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)


def _make_folder(folder: Path, root: Path) -> list[Path]:
    """Create ``folder`` inside ``root``; returns the folders created (their parents need an fsync).

    A file or symlink standing where a folder must be is replaced: writes never follow a link
    out of the repository.
    """
    created = []
    step = root
    for part in folder.relative_to(root).parts:
        step = step / part
        if step.is_symlink() or (step.exists() and not step.is_dir()):
            step.unlink()
        if not step.is_dir():
            step.mkdir()
            created.append(step)
    return created


def _copy_history(origin: GitBackend, target: pygit2.Repository, tip: pygit2.Commit, branch: str) -> None:
    """Copy every object reachable from ``tip`` as one pack, its LFS objects, and the branch."""
    objects, lfs_oids = reachable(origin.repo, tip.id)
    packer = pygit2.PackBuilder(origin.repo)
    for oid in objects:
        packer.add(oid)
    packer.write(str(Path(target.path) / "objects" / "pack"))
    store = lfs.Store(Path(target.path))
    for oid in sorted(lfs_oids):
        origin.lfs.copy_object(oid, store, fsync=False)
    target.references.create(branch, tip.id, force=True)
    target.set_head(branch)

"""Git LFS without the git-lfs binary: pointer blobs, the object store and per-folder attributes.

A large file is committed as a three-line pointer (spec v1) while its bytes live, addressed by
sha256, in ``<git dir>/lfs/objects/aa/bb/<oid>`` exactly where git-lfs keeps them, so
``git lfs push``/``fetch`` work on the repository unchanged. The binary is only needed to talk
to an LFS server.

Which paths are LFS is declared the way git-lfs expects, in ``.gitattributes`` files; the
backend keeps one per folder that holds LFS files, listing those files by name
(``/name filter=lfs diff=lfs merge=lfs -text``). A per-folder file keeps every commit
O(changed) and tells git exactly which blobs are pointers, whatever their extension.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO, NamedTuple

from ..errors import BackendError
from . import fsutil

SPEC = "https://git-lfs.github.com/spec/v1"
ATTRIBUTES = ".gitattributes"
MAX_POINTER_SIZE = 1024
"""git-lfs never treats a blob larger than this as a pointer."""

_TMP_PREFIX = "stac-repository-"
_IN_MEMORY = 1 << 20
"""Files up to this size are hashed in memory before anything is written."""
_ATTRS = "filter=lfs diff=lfs merge=lfs -text"
_POINTER = re.compile(rb"version (\S+)\noid sha256:([0-9a-f]{64})\nsize (0|[1-9][0-9]*)\n")
_PLAIN_NAME = re.compile(r'[^\s*?\[\]\\"!#]+')
"""File names that can stand as a gitattributes pattern without any quoting or escaping."""


class Pointer(NamedTuple):
    oid: str
    size: int

    def encode(self) -> bytes:
        return f"version {SPEC}\noid sha256:{self.oid}\nsize {self.size}\n".encode()


def parse_pointer(data: bytes) -> Pointer | None:
    """The pointer ``data`` holds, or None when it is ordinary content."""
    if len(data) > MAX_POINTER_SIZE:
        return None
    match = _POINTER.fullmatch(data)
    if match is None or match[1].decode() != SPEC:
        return None
    return Pointer(match[2].decode(), int(match[3]))


def is_large(size: int, threshold: int) -> bool:
    """Does a file of ``size`` bytes go to LFS under ``lfs.threshold``? (Empty files never do.)"""
    return size > 0 and size >= threshold


def can_track(name: str) -> bool:
    """True when ``name`` can be listed in .gitattributes verbatim (others stay plain blobs)."""
    return name != ATTRIBUTES and _PLAIN_NAME.fullmatch(name) is not None


def render_attributes(names: set[str] | frozenset[str]) -> bytes:
    return "".join(f"/{name} {_ATTRS}\n" for name in sorted(names)).encode()


def parse_attributes(data: bytes) -> frozenset[str]:
    """Names our own lines mark as LFS; other lines (written by hand) are ignored."""
    names = set()
    for line in data.decode(errors="replace").splitlines():
        pattern, _, attrs = line.partition(" ")
        if attrs == _ATTRS and pattern.startswith("/") and can_track(pattern[1:]):
            names.add(pattern[1:])
    return frozenset(names)


class Store:
    """The LFS object store of one git directory."""

    def __init__(self, git_dir: Path) -> None:
        self.root = git_dir / "lfs"
        # Folders known to exist: one flag per aa/bb folder (a set of their names would hold a
        # string per object of a bulk ingest), and one for the temporaries' folder.
        self._made = bytearray(1 << 16)
        self._tmp_made = False
        self._objects = f"{self.root}/objects"
        self._tmp_dir = f"{self.root}/tmp"
        self._counter = itertools.count()

    def path(self, oid: str) -> Path:
        return Path(self._target(oid)[0])

    def add(self, source: str | Path, threshold: int = 0) -> Pointer | None:
        """Copy ``source`` into the store (hashing on the way) when it is large enough for LFS
        under ``threshold`` (:func:`is_large`); the pointer to commit, or None for a file that
        stays a plain blob.

        The caller makes the new object durable (fsync), with the rest of its transaction. A bulk
        ingest adds an object per asset, so this is plain ``os`` calls on strings, about nine
        system calls for a small new file: open, fstat, read, close; a ``mkdir`` of its ``aa/bb``
        folder; a temporary's open, write, close, and its rename. Most files are small enough to
        hash in memory before anything is written, and nothing is written when the store has
        them already.
        """
        fd, size = fsutil.open_regular_fd(source)
        try:
            if not is_large(size, threshold):
                return None
            if size <= _IN_MEMORY:
                data = os.read(fd, size + 1)  # the whole file: one byte more tells it grew
                if len(data) <= size:
                    return self._add_bytes(data) if data else None
                with os.fdopen(os.dup(fd), "rb") as rest:
                    return self._add_stream(io.BytesIO(data), rest)
            with os.fdopen(os.dup(fd), "rb") as stream:
                return self._add_stream(stream)
        finally:
            os.close(fd)

    def _add_bytes(self, data: bytes) -> Pointer:
        oid = hashlib.sha256(data).hexdigest()
        target, folder = self._target(oid)
        if self._made_folder(oid, folder) or not os.path.exists(target):
            tmp = self._tmp()
            try:
                fsutil.write_file(tmp, data, fsync=False)
                self._land(tmp, target, folder)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        return Pointer(oid, len(data))

    def _add_stream(self, *parts: BinaryIO) -> Pointer:
        tmp = self._tmp()
        digest = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as dst:
                for part in parts:
                    while chunk := part.read(1 << 20):
                        digest.update(chunk)
                        dst.write(chunk)
                        size += len(chunk)
            pointer = Pointer(digest.hexdigest(), size)
            target, folder = self._target(pointer.oid)
            if not self._made_folder(pointer.oid, folder) and os.path.exists(target):
                os.unlink(tmp)
                return pointer
            self._land(tmp, target, folder)
            return pointer
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _target(self, oid: str) -> tuple[str, str]:
        """Where the object ``oid`` lives, and its folder (git-lfs's layout: aa/bb/aabb...)."""
        folder = f"{self._objects}/{oid[:2]}/{oid[2:4]}"
        return f"{folder}/{oid}", folder

    def _tmp(self) -> str:
        """A new temporary's name (a writer holds the lock: pid and a counter are unique)."""
        if not self._tmp_made:
            os.makedirs(self._tmp_dir, exist_ok=True)
            self._tmp_made = True
        return f"{self._tmp_dir}/{_TMP_PREFIX}{os.getpid()}-{next(self._counter)}"

    def _made_folder(self, oid: str, folder: str) -> bool:
        """Make sure the ``aa/bb`` folder of ``oid`` exists, once per store; True when this call
        created it, so that no object can be in it yet (a bulk ingest into a new repository
        creates a folder for most of its objects, and then needs no lookup of the object)."""
        made = int(oid[:4], 16)
        if self._made[made]:
            return False
        try:
            os.mkdir(folder)
        except FileExistsError:
            self._made[made] = 1
            return False
        except FileNotFoundError:  # its "aa" folder is new too
            os.makedirs(folder, exist_ok=True)
        self._made[made] = 1
        return True

    def _land(self, tmp: str, target: str, folder: str) -> None:
        """Rename the temporary ``tmp`` into place as ``target``, in ``folder``."""
        try:
            os.replace(tmp, target)
        except FileNotFoundError:  # the folder went away since it was made (a cleanup)
            os.makedirs(folder, exist_ok=True)
            os.replace(tmp, target)

    def open(self, pointer: Pointer, path: str) -> BinaryIO:
        """The content behind ``pointer``; a missing or truncated object is an error, not empty bytes."""
        fd = self._open(pointer, path)
        try:
            return open(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def copy_out(self, pointer: Pointer, path: str, target: str) -> None:
        """Copy the content behind ``pointer`` into the file ``target`` (see :meth:`open`), in
        the kernel: an export copies an object per asset."""
        fd = self._open(pointer, path)
        try:
            fsutil.copy_fd(fd, target, pointer.size)
        finally:
            os.close(fd)

    def _open(self, pointer: Pointer, path: str) -> int:
        target = self._target(pointer.oid)[0]
        try:
            fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BackendError(
                f"the LFS object of {path!r} (sha256 {pointer.oid[:12]}) is missing from {self.root}; "
                "fetch it with 'git lfs fetch'"
            ) from None
        if os.fstat(fd).st_size != pointer.size:
            os.close(fd)
            raise BackendError(f"the LFS object of {path!r} at {target} is corrupt (wrong size)")
        return fd

    def copy_object(self, oid: str, other: Store, *, fsync: bool) -> Path | None:
        """Copy one object into ``other`` (backups, push, pull); the new file, None if it was there.

        The bytes are hashed on the way and land by rename, so a corrupt source or an interrupted
        copy never leaves a wrong object under its name in a live store.
        """
        source = self.path(oid)
        if not source.is_file():
            raise BackendError(f"LFS object sha256 {oid[:12]} is missing from {self.root}")
        target = other.path(oid)
        if target.exists():
            return None
        tmp_dir = other.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        try:
            with fsutil.open_regular(source) as src, open(tmp, "wb") as dst:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    dst.write(chunk)
                if fsync:
                    dst.flush()
                    os.fsync(dst.fileno())
            if digest.hexdigest() != oid:
                raise BackendError(f"LFS object sha256 {oid[:12]} in {self.root} is corrupt (wrong hash)")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def clean_tmp(self, pid: int | None = None) -> None:
        """Drop temporaries of interrupted transactions (call under the writer lock), or only
        those of the process ``pid`` (a stopped helper of this writer)."""
        tmp_dir = self.root / "tmp"
        if not tmp_dir.is_dir():
            return
        prefix = _TMP_PREFIX if pid is None else f"{_TMP_PREFIX}{pid}-"
        for entry in tmp_dir.iterdir():
            if entry.name.startswith(prefix):
                entry.unlink(missing_ok=True)


def copy_stream(source: BinaryIO, target: Path, *, fsync: bool) -> None:
    with open(target, "wb") as dst:
        shutil.copyfileobj(source, dst, 1 << 20)
        if fsync:
            dst.flush()
            os.fsync(dst.fileno())

"""Durable file-system primitives: write-then-rename, fsync of files and folders."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import UsageError


def sync_files(paths: list[Path]) -> None:
    """Make written files durable: one syncfs(2) for the whole file system where Linux offers
    it (a transaction may stage thousands of files), else one fsync per file."""
    if not paths:
        return
    if _syncfs(paths[0].parent):
        return
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_folders(folders: list[Path]) -> None:
    """Make renames durable: fsync a few folders, or one syncfs(2) for many."""
    if len(folders) > 16 and _syncfs(folders[0]):
        return
    for folder in folders:
        fsync_dir(folder)


def _syncfs(folder: Path) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return bool(syncfs(fd) == 0)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes, *, fsync: bool) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())


def open_regular(source: Path) -> BinaryIO:
    """Open a file for reading only if it is a regular file *now*: a FIFO or device put in its
    place after it was checked would block a writer that holds the lock, or never end."""
    fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(source))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def copy_file(source: Path, target: Path, *, fsync: bool) -> None:
    """Stream ``source`` into ``target`` (never a link: the repository owns its bytes)."""
    with open_regular(source) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        if fsync:
            dst.flush()
            os.fsync(dst.fileno())


def atomic_write(path: Path, data: bytes, *, fsync: bool) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write_file(tmp, data, fsync=fsync)
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)


def prune_empty_dirs(path: Path, stop: Path) -> None:
    """Remove ``path`` and its parents while they are empty, never ``stop`` itself."""
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent


@contextlib.contextmanager
def staged_folder(destination: Path) -> Iterator[Path]:
    """A temporary sibling of ``destination`` that becomes it on success, so that a failed or
    interrupted copy never leaves a half-written destination."""
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise UsageError(f"{destination} exists and is not an empty folder")
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        yield tmp
        if destination.exists():
            destination.rmdir()
        os.replace(tmp, destination)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

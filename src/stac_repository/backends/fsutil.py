"""Durable file-system primitives: write-then-rename, fsync of files and folders."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import UsageError


def sync_files(folder: Path | str, paths: Iterable[Path | str]) -> None:
    """Make files written into ``folder`` durable: one syncfs(2) for the whole file system where
    Linux offers it (a transaction may stage thousands of files), else one fsync per file."""
    if _syncfs(folder):
        return
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_folders(folders: Sequence[Path | str]) -> None:
    """Make renames durable: fsync a few folders, or one syncfs(2) for many. Folders that no
    longer exist are passed over."""
    if len(folders) > 16:
        present = next((folder for folder in folders if os.path.isdir(folder)), None)
        if present is None or _syncfs(present):
            return
    for folder in folders:
        if os.path.isdir(folder):
            fsync_dir(folder)


def sync_filesystems(folders: Iterable[Path | str]) -> None:
    """Make everything written under ``folders`` durable: one syncfs(2) per file system they
    are on, where Linux offers it; else (or with no folder) one sync(2) of the whole system."""
    devices: set[int] = set()
    for folder in folders:
        try:
            device = os.stat(folder).st_dev
        except OSError:
            continue
        if device in devices:
            continue
        devices.add(device)
        if not _syncfs(folder):
            break
    else:
        if devices:
            return
    os.sync()


def _syncfs(folder: Path | str) -> bool:
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


def fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path | str, data: bytes, *, fsync: bool) -> None:
    """Create (or truncate) ``path`` with ``data``. Plain ``os`` calls: a large transaction
    writes tens of thousands of small files, and file objects cost more than the write."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def open_regular_fd(source: str | Path) -> tuple[int, int]:
    """A descriptor reading ``source`` only if it is a regular file *now* (a FIFO or device put
    in its place after it was checked would block a writer that holds the lock, or never end),
    and the file's size.

    The descriptor stays ``O_NONBLOCK``, which Linux and the BSDs ignore for regular files: two
    ``fcntl`` calls fewer per asset of a bulk ingest.
    """
    fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(source))
        return fd, info.st_size
    except BaseException:
        os.close(fd)
        raise


def open_regular(source: str | Path) -> BinaryIO:
    """:func:`open_regular_fd` as a file object."""
    fd, _ = open_regular_fd(source)
    try:
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def copy_file(source: Path | str, target: Path | str, *, fsync: bool) -> None:
    """Copy ``source`` into ``target`` (never a link: the repository owns its bytes), in the
    kernel where it can; ``source`` must be a regular file when it is opened (see
    :func:`open_regular`)."""
    src = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(src).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(source))
        os.set_blocking(src, True)
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            _copy_fd(src, dst)
            if fsync:
                os.fsync(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


_CHUNK = 1 << 20


def copy_fd(src: int, target: str, size: int) -> None:
    """Copy the ``size`` bytes of the open file ``src`` into ``target`` (created or truncated),
    in the kernel: for the small files of an export, one ``copy_file_range``."""
    dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        if size:
            _copy_fd(src, dst, size)
    finally:
        os.close(dst)


def copy_stream(src: BinaryIO, target: str) -> None:
    """Copy what is left of ``src`` into ``target`` (created or truncated); in the kernel when
    ``src`` is a file on disk."""
    dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        try:
            fd = src.fileno()
        except (OSError, AttributeError, ValueError):  # in memory (io.UnsupportedOperation)
            fd = -1
        if fd < 0:
            with open(dst, "wb", closefd=False) as out:
                shutil.copyfileobj(src, out, _CHUNK)
        else:
            os.lseek(fd, src.tell(), os.SEEK_SET)  # a buffered reader's position, in its descriptor
            _copy_fd(fd, dst)
    finally:
        os.close(dst)


def _copy_fd(src: int, dst: int, size: int = -1) -> None:
    """Copy to the end of ``src`` (from the descriptors' positions): ``copy_file_range`` where
    the kernel offers it, else read/write. Given the ``size`` expected, a copy that reaches it
    stops without asking for the end."""
    left = size if size >= 0 else None
    if hasattr(os, "copy_file_range"):
        try:
            while left is None or left > 0:
                copied = os.copy_file_range(src, dst, _CHUNK if left is None else min(left, _CHUNK))
                if not copied:
                    break
                if left is not None:
                    left -= copied
            return
        except OSError as exc:
            # Not supported between these files: fall back, from where the copy stopped.
            if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF):
                raise
    while chunk := os.read(src, _CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]


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

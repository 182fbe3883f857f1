"""Writing the files of a copy (export, backup), on forked workers when there are many.

An export of a large catalog is tens of thousands of small files: for each, a blob read (and
inflated) or an LFS object opened, a file created and written. That is CPU in this process for
a git repository, and independent from file to file, so once a copy has more than
:data:`PARALLEL_FROM` files, forked workers copy them while this process walks the snapshot and
hands them out in batches. Workers read the snapshot they inherited (readers need no lock, and a
committed state never changes); the first error any of them meets stops the copy, and is
raised here as the sequential copy would raise it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

from ..backends.base import Snapshot
from ..errors import BackendError, NotFound, StacRepositoryError
from ..forking import fork, receive, send, stop, worker_count

PARALLEL_FROM = 2000
"""Files copied by this process before workers are forked for the rest (a small copy is not
worth a fork)."""
BATCH = 256
"""Paths per batch handed to a worker."""


class FileWriter:
    """Writes the files of one copy as cheaply as Python allows: each folder made once, small
    in-memory blobs written with one call, files on disk copied by the kernel (``Snapshot.copy_to``)."""

    _FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)

    MADE = 1024
    """Folders remembered as made: files come in path order, so a folder's files arrive together
    and a small memory suffices (a large catalog has a folder per item)."""

    def __init__(self) -> None:
        self.made: set[str] = set()

    def folder(self, folder: str) -> None:
        if folder in self.made:
            return
        try:  # files come in path order: the parent folder is there, most of the time
            os.mkdir(folder)
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
        if len(self.made) >= self.MADE:
            self.made.clear()
        while folder not in self.made:
            self.made.add(folder)
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent

    def copy(self, snapshot: Snapshot, path: str, target: str | Path) -> None:
        target = os.fspath(target)
        self.folder(os.path.dirname(target))
        snapshot.copy_to(path, target)

    def write(self, target: str | Path, data: bytes | memoryview) -> None:
        target = os.fspath(target)
        self.folder(os.path.dirname(target))
        self._write(target, data)

    def _write(self, target: str, data: bytes | memoryview) -> None:
        fd = os.open(target, self._FLAGS, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def copy_files(snapshot: Snapshot, paths: Iterable[str], base: str) -> int:
    """Copy each of ``paths`` from ``snapshot`` to ``base/path``; how many were copied."""
    walk = iter(paths)
    out = FileWriter()
    count = 0
    for path in itertools.islice(walk, PARALLEL_FROM):
        out.copy(snapshot, path, f"{base}/{path}")
        count += 1
    workers = worker_count() if count == PARALLEL_FROM else 0
    if not workers:
        for path in walk:
            out.copy(snapshot, path, f"{base}/{path}")
            count += 1
        return count
    with _Copiers(snapshot, base, workers) as copiers:
        for batch in _batches(walk):
            copiers.send(batch)
        return count + copiers.finish()


def _batches(paths: Iterator[str]) -> Iterator[list[str]]:
    while batch := list(itertools.islice(paths, BATCH)):
        yield batch


class _Copiers:
    """Forked workers copying the batches they are sent (round robin), each through its own pipe."""

    def __init__(self, snapshot: Snapshot, base: str, workers: int) -> None:
        self._workers: list[tuple[int, int, BinaryIO]] = []  # pid, tasks (a pipe's end), results
        self._next = 0
        try:
            for _ in range(workers):
                task_read, task_write = os.pipe()
                result_read, result_write = os.pipe()

                ends = (task_read, task_write, result_read, result_write)
                pid = fork(functools.partial(self._worker, snapshot, base, ends))
                os.close(task_read)
                os.close(result_write)
                self._workers.append((pid, task_write, os.fdopen(result_read, "rb")))
        except BaseException:
            self.close()
            raise

    def _worker(self, snapshot: Snapshot, base: str, ends: tuple[int, int, int, int]) -> None:
        """In a new worker: keep only its own ends of its two pipes, then serve."""
        task_read, task_write, result_read, result_write = ends
        for _pid, tasks, result in self._workers:  # earlier workers' ends: held open here, a
            os.close(tasks)  # worker would never see the end of its tasks
            os.close(result.fileno())
        os.close(task_write)
        os.close(result_read)
        _serve(snapshot, base, task_read, result_write)

    def send(self, batch: list[str]) -> None:
        _pid, tasks, _result = self._workers[self._next]
        self._next = (self._next + 1) % len(self._workers)
        try:
            send(tasks, batch)
        except BrokenPipeError:  # the worker stopped at an error: finish() reports it
            self.finish()
            raise BackendError("a copy worker stopped without saying why") from None

    def finish(self) -> int:
        """Wait for every worker; the files they copied, or the first error one of them met."""
        answers: list[object] = []
        for _pid, tasks, result in self._workers:
            os.close(tasks)
            try:
                answers.append(receive(result))
            except (EOFError, ValueError, TypeError):  # it died
                answers.append(None)
        for pid, _tasks, result in self._workers:
            result.close()
            os.waitpid(pid, 0)
        self._workers = []
        count = 0
        for answer in answers:
            if not isinstance(answer, tuple):
                raise BackendError("a copy worker ended unexpectedly (killed?); nothing was copied")
            copied, error = answer
            if error is not None:
                raise _error(error)
            count += copied
        return count

    def close(self) -> None:
        """Stop the workers still at work (the copy failed or was interrupted) and reap them."""
        for pid, tasks, result in self._workers:
            with contextlib.suppress(OSError):
                os.close(tasks)
            result.close()
            stop(pid)
        self._workers = []

    def __enter__(self) -> _Copiers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(snapshot: Snapshot, base: str, tasks: int, result: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
    out = FileWriter()
    count = 0
    error: tuple[object, ...] | None = None
    with os.fdopen(tasks, "rb") as stream:
        while error is None:
            try:
                batch = receive(stream)
            except EOFError:  # no more tasks
                break
            try:
                for path in cast(list[str], batch):
                    out.copy(snapshot, path, f"{base}/{path}")
                    count += 1
            except NotFound as exc:
                error = ("missing", str(exc))
            except StacRepositoryError as exc:
                error = ("backend", str(exc))
            except OSError as exc:
                error = ("os", exc.errno, exc.strerror, exc.filename)
            except Exception as exc:  # a bug: reported, not hidden
                error = ("internal", f"{type(exc).__name__}: {exc}")
    send(result, (count, error))


def _error(error: tuple[object, ...]) -> Exception:
    """A worker's error as the exception the sequential copy would have raised."""
    kind = error[0]
    if kind == "missing":
        return NotFound(str(error[1]))
    if kind == "backend":
        return BackendError(str(error[1]))
    if kind == "os":
        return OSError(error[1], error[2], error[3])
    return RuntimeError(str(error[1]))

"""Whether to fork worker processes, and how many; an ordered map over forked workers.

Bulk work that splits into independent parts (reading item files, rendering the stored form
of items, adding LFS objects) runs on forked workers when the machine has more than one core.
Forking is safe only from a process with a single thread: a child of a process where other
threads may hold locks can deadlock, and the other start methods run the main module again in
each worker. Elsewhere the work is done in the calling process. ``STAC_REPOSITORY_WORKERS``
sets the number of workers (``0``: none).
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import os
import signal
import struct
import threading
from collections.abc import Callable
from typing import BinaryIO

MAX_WORKERS = 4


def worker_count() -> int:
    """How many workers to start: none on one core or where forking is not safe."""
    setting = os.environ.get("STAC_REPOSITORY_WORKERS", "").strip()
    if setting:
        try:
            wanted = max(0, int(setting))
        except ValueError:
            wanted = 0
    else:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        wanted = min(cores, MAX_WORKERS) if cores > 1 else 0
    if not wanted or not hasattr(os, "fork"):
        return 0
    return wanted if threading.active_count() == 1 else 0


def stop(pid: int) -> bool:
    """Reap the forked process ``pid``, killed first if it is still at work; True when it was."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return True
    return False


def fork(child: Callable[[], None]) -> int:
    """Fork a process that runs ``child`` and exits (status 0 when it returned, 1 when it raised)
    without ever returning into the caller's code; the child's pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            child()
            code = 0
        finally:
            os._exit(code)
    return pid


_LENGTH = struct.Struct("<Q")


def send(fd: int, value: object) -> None:
    """Write ``value`` to the pipe ``fd``, marshalled, after its length (ValueError when marshal
    cannot hold it, before anything is written; BrokenPipeError when the reader is gone)."""
    data = marshal.dumps(value)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def receive(stream: BinaryIO) -> object:
    """The next value :func:`send` wrote to the pipe read by ``stream``; EOFError when the
    writer ended (or died) before a whole one."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return marshal.loads(data)


class OrderedForkMap:
    """``fn(0) … fn(count - 1)`` computed ahead on forked workers, taken in order with :meth:`get`.

    Tasks go to the workers in chunks, round robin; each worker sends a chunk's answers as one
    marshalled list through its own pipe, and blocks until the parent has read the previous
    one, so at most a chunk per worker waits in memory. ``fn`` runs on the state the parent
    had when it forked (nothing is pickled), must return a marshallable value, and answers
    None for a task the parent should do itself (any exception in it does the same): the
    parent then runs the sequential code, so its errors are exactly that code's.

    A worker closes every descriptor it inherited but its pipe (a writer lock's among them, so
    it never holds the lock), ignores Ctrl-C, and ends when its parent is gone (its next write
    breaks). When a worker dies, every later answer is None.
    """

    def __init__(
        self,
        fn: Callable[[int], object],
        count: int,
        workers: int,
        *,
        chunk: int = 256,
        finish: Callable[[], object] | None = None,
    ) -> None:
        """``finish``: run by each worker after its last task; what it returns (marshallable)
        is that worker's report, for :meth:`reports`."""
        self._count, self._chunk, self._workers = count, chunk, workers
        self._pipes: list[BinaryIO] = []
        self._pids: list[int] = []
        self._answers: list[object] = []
        self._first = 0  # task number of self._answers[0]
        self._broken = False
        try:
            for w in range(workers):
                read_end, write_end = os.pipe()

                def worker(w: int = w, read_end: int = read_end, write_end: int = write_end) -> None:
                    os.close(read_end)
                    _serve(fn, write_end, w, workers, count, chunk, finish)

                pid = fork(worker)
                os.close(write_end)
                self._pids.append(pid)
                self._pipes.append(os.fdopen(read_end, "rb"))
        except BaseException:
            self.close()
            raise

    def get(self, n: int) -> object:
        """The answer for task ``n`` (asked in order: 0, 1, 2, …); None: do it yourself."""
        if self._broken:
            return None
        if not self._first <= n < self._first + len(self._answers):
            if n != self._first + len(self._answers):
                raise ValueError(f"task {n} asked out of order")
            self._answers = self._read_chunk(n // self._chunk)
            self._first = n
            if not self._answers:
                self._broken = True
                return None
        return self._answers[n - self._first]

    def worker_of(self, n: int) -> int:
        """The worker that answers task ``n``."""
        return (n // self._chunk) % self._workers

    def reports(self) -> list[object]:
        """Each worker's report (see ``finish``) once every task was asked for; None for a
        worker that died or whose ``finish`` failed, whose answers must then be done again."""
        out: list[object] = []
        for pipe in self._pipes:
            try:
                message = receive(pipe)
            except (EOFError, ValueError, TypeError):
                message = None
            out.append(message[1] if isinstance(message, tuple) and message[:1] == ("report",) else None)
        return out

    def _read_chunk(self, number: int) -> list[object]:
        try:
            answers = receive(self._pipes[number % self._workers])
        except (EOFError, ValueError, TypeError):  # the worker died
            return []
        return answers if isinstance(answers, list) else []

    def close(self) -> None:
        """Stop the workers still at work (the caller is done or gave up) and reap them."""
        for pipe in self._pipes:
            pipe.close()  # a worker still writing gets a broken pipe
        self._pipes = []
        for pid in self._pids:
            stop(pid)
        self._pids = []

    def __enter__(self) -> OrderedForkMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(
    fn: Callable[[int], object],
    out: int,
    me: int,
    workers: int,
    count: int,
    chunk: int,
    finish: Callable[[], object] | None = None,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # a collection would touch (and so copy) every page shared with the parent
    os.closerange(3, out)
    os.closerange(out + 1, os.sysconf("SC_OPEN_MAX"))
    for start in range(me * chunk, count, workers * chunk):
        answers: list[object] = []
        for n in range(start, min(start + chunk, count)):
            try:
                answers.append(fn(n))
            except Exception:  # the parent does this one itself, and reports what is wrong
                answers.append(None)
        try:
            try:
                send(out, answers)
            except ValueError:  # an answer marshal cannot hold: the parent does those itself
                send(out, [a if _marshallable(a) else None for a in answers])
        except BrokenPipeError:  # the parent is gone or gave up
            return
    if finish is not None:
        # Without a report (the parent gone, or finish failed) the parent does this worker's
        # answers again.
        with contextlib.suppress(Exception):
            send(out, ("report", finish()))


def _marshallable(value: object) -> bool:
    try:
        marshal.dumps(value)
    except ValueError:
        return False
    return True

"""The writer lock: an ``flock`` on a file in the state folder.

The kernel releases an flock when its process dies, so a crash can never leave a stale
lock behind; the PID and start time written into the file only serve the message shown
to a writer that waits in vain.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from ..errors import BackendError, Locked


class WriterLock:
    def __init__(self, path: Path, *, timeout: float, poll: float = 0.02) -> None:
        self.path = path
        self.timeout = timeout
        self.poll = poll
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BackendError(f"cannot take the writer lock {self.path}: {exc.strerror or exc}") from None
        deadline = time.monotonic() + max(self.timeout, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise Locked(
                        f"repository is locked by {holder}; gave up after {self.timeout:g} s "
                        "(raise it with --lock-timeout or config lock.timeout)"
                    ) from None
                time.sleep(self.poll)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:  # who holds it: only for the message of a writer that waits in vain
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {now}\n".encode(), 0)
        except OSError:
            pass
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
    except OSError:
        text = []
    if len(text) >= 2:
        return f"PID {text[0]} since {text[1]}"
    return "another process"

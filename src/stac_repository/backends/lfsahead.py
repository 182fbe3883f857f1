"""LFS objects added ahead by a forked child while the git backend writes trees and the pack.

A bulk ingest adds an LFS object per asset: a read, a sha256, a temporary file, a rename and
often a new ``aa/bb`` folder. That is about a third of its writing, and none of it depends on
the rest, so a child forked when the writing starts adds the objects in the transaction's path
order and reports each pointer through a pipe, while the parent builds trees and the pack on
the other core and takes the pointers in the same order.

The child can only add content-addressed objects, which nothing sees until a commit points
to them (an interrupted transaction leaves at most unreferenced objects, as it would without
the child). It closes every inherited descriptor but its pipe, the writer lock's among them,
so it never holds the lock; it ignores Ctrl-C (the parent decides); and it stops at its next
report once the parent is gone (the pipe breaks). When anything goes wrong in it, it says so
and stops, and the parent adds the remaining objects itself: errors are exactly those of the
sequential path.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import signal
import struct
from collections.abc import Iterable
from pathlib import Path

from ..forking import fork, stop, worker_count
from .lfs import Pointer, Store

MIN_OBJECTS = 256
"""Below this many candidate objects, forking costs more than it saves."""

_RECORD = struct.Struct("B32sQ")
_ADDED, _NOT_LFS, _FAILED = 0, 1, 2
_PIPE_SIZE = 1 << 20


class AddAhead:
    """A child adding the LFS objects of ``sources`` in order: one answer per source.

    ``sources`` lists, in the order the parent will ask, each blob's source file, or None for
    a blob that is never an LFS object (its name cannot be tracked). The child stats each file
    and adds those of at least ``threshold`` bytes (and not empty).
    """

    def __init__(self, store: Store, sources: Iterable[str | Path | None], threshold: int) -> None:
        read_end, write_end = os.pipe()
        _widen(write_end)

        def child() -> None:
            os.close(read_end)
            _child(write_end, store, sources, threshold)

        try:
            pid = fork(child)
        except OSError:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._pid: int | None = pid
        self._store = store
        self._answers = os.fdopen(read_end, "rb")
        self._broken = False

    def next(self) -> Pointer | None:
        """The pointer of the next source's object, None when the child added none (or failed).

        Once the child has failed, every later answer is None: the parent adds them itself.
        """
        if self._broken:
            return None
        record = self._answers.read(_RECORD.size)
        if len(record) < _RECORD.size:  # the child died
            self._broken = True
            return None
        status, digest, size = _RECORD.unpack(record)
        if status == _ADDED:
            return Pointer(digest.hex(), size)
        if status == _FAILED:
            self._broken = True
        return None

    def close(self) -> None:
        """Stop the child if it is still at work (the parent gave up), reap it, and drop the
        temporary it may have left."""
        if self._pid is None:
            return
        pid, self._pid = self._pid, None
        self._answers.close()  # a child still writing gets a broken pipe
        if stop(pid):
            with contextlib.suppress(OSError):
                self._store.clean_tmp(pid)


def _widen(pipe: int) -> None:
    """Let the child run ahead by up to a megabyte of answers (25,000 objects) rather than the
    default 64 KB: the parent writes the transaction's documents first (the id index sorts
    before the catalog), and a full pipe would keep the child waiting meanwhile."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or over the system's limit
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)


def start(store: Store, sources: Iterable[str | Path | None], count: int, threshold: int) -> AddAhead | None:
    """An :class:`AddAhead` when forking is allowed and worth it (``count`` blobs), else None.

    ``sources`` may be a generator: only the child runs it.
    """
    if count < MIN_OBJECTS or worker_count() < 1:
        return None
    try:
        return AddAhead(store, sources, threshold)
    except OSError:  # no pipe or process to be had (system limits): the parent adds them all
        return None


def _child(out: int, store: Store, sources: Iterable[str | Path | None], threshold: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # nothing here makes cycles; a collection could close the parent's files
    os.closerange(3, out)
    os.closerange(out + 1, os.sysconf("SC_OPEN_MAX"))
    no_object = _RECORD.pack(_NOT_LFS, bytes(32), 0)
    for source in sources:
        try:
            pointer = None if source is None else store.add(source, threshold)
        except Exception:  # the parent adds this one and the rest itself, and reports any error
            os.write(out, _RECORD.pack(_FAILED, bytes(32), 0))
            return
        # One write per answer: the parent may be waiting for this one (a batch would hold it
        # back while the next, maybe large, file is copied).
        record = (
            no_object if pointer is None else _RECORD.pack(_ADDED, bytes.fromhex(pointer.oid), pointer.size)
        )
        os.write(out, record)  # the parent is gone when this raises: the child just ends

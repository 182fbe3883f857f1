"""Reading a large product's item files on worker processes.

A bulk product is thousands of item files, each read, parsed, checked and schema-validated
before anything else happens: about 150 µs of CPU each, independent of the others. On a
machine with more than one core, worker processes do that work while the main process keeps
the tree, its order and every decision.

A worker answers only for an item that passes every check. Anything else (an invalid item, a
file that is not an item, an unreadable one) gets no answer, and the main process reads it
again itself, so it is reported exactly as it would be without workers.

Workers are forked, when :func:`.forking.worker_count` allows it; elsewhere the items are read
in the main process.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from .document import StacType, parse_json, read_json_bytes
from .validation import SchemaValidator, check_structure

if TYPE_CHECKING:
    from concurrent.futures import Future

MIN_ITEMS = 1000
"""Below this many item links in one document, starting workers costs more than it saves."""
CHUNK = 256
"""Items per task: large enough that a task's overhead is small, small enough to keep every
worker busy until the end."""


class ReadItem(NamedTuple):
    """What a worker found in a valid item file (see :meth:`.SourceNode.lazy_item`); a named
    tuple, which pickles in a quarter of a dataclass's time (each crosses a pipe)."""

    id: str
    stub: bytes
    digest: bytes
    unchecked: tuple[str, ...]
    """Schemas that could not be checked offline."""
    stamp: bytes | None
    """Its :func:`~.source.asset_stamp`, when asked for."""


class ItemReaders:
    """A pool of worker processes reading item files, answering in the order they were asked."""

    def __init__(
        self, workers: int, validator: SchemaValidator | None, *, stamp_assets: bool = False
    ) -> None:
        import multiprocessing  # here: the command line's start does not pay for these imports
        from concurrent.futures import ProcessPoolExecutor

        # Forked: the validator (and its compiled schemas) is inherited, not pickled.
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(validator, stamp_assets, os.getpid()),
        )
        self._window = 2 * workers + 1

    def read(self, files: Iterable[str]) -> Iterator[tuple[str, ReadItem | None]]:
        """Each file with what a worker found in it (None: read it yourself).

        A few tasks are in flight at a time: answers do not pile up in memory when the caller
        is slower than the workers.
        """
        from concurrent.futures.process import BrokenProcessPool

        chunks = _chunks(files)
        pending: collections.deque[tuple[list[str], Future[list[ReadItem | None]]]] = collections.deque()
        for chunk in chunks:
            pending.append((chunk, self._pool.submit(_read_chunk, chunk)))
            if len(pending) >= self._window:
                break
        while pending:
            chunk, future = pending.popleft()
            try:
                answers = future.result()
            except BrokenProcessPool:  # a worker was killed (out of memory?): read the rest here
                left = itertools.chain([chunk], (waiting for waiting, _ in pending), chunks)
                yield from ((file, None) for part in left for file in part)
                return
            following = next(chunks, None)
            if following is not None:
                pending.append((following, self._pool.submit(_read_chunk, following)))
            yield from zip(chunk, answers, strict=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _chunks(files: Iterable[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for file in files:
        chunk.append(file)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- in the worker processes -------------------------------------------------------------

_worker: dict[str, Any] = {}
"""The schema validator of a worker process and whether it stamps assets (set by the pool's
initializer, in workers only)."""


def _start_worker(validator: SchemaValidator | None, stamp_assets: bool, parent: int) -> None:
    """Keep the settings; ignore Ctrl-C (the main process stops the pool); exit when the main
    process is gone (killed, it cannot stop its workers, which would wait for tasks forever)."""
    _worker["validator"] = validator
    _worker["stamp"] = stamp_assets
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _read_chunk(files: list[str]) -> list[ReadItem | None]:
    return [_read_item(file) for file in files]


def _read_item(file: str) -> ReadItem | None:
    from .source import asset_stamp, check_old_commons, pack, stub  # source imports this module

    try:
        raw = read_json_bytes(file)
        doc = parse_json(raw, file=file)
        kind = check_structure(doc, file=file)
        if kind is not StacType.ITEM:
            return None
        check_old_commons(doc, file)
        validator = _worker.get("validator")
        unchecked: list[str] = []
        if validator is not None:
            unchecked = validator.validate_stored_form(doc, kind, file=file)
        stamp = asset_stamp(doc, file) if _worker.get("stamp") else None
        digest = hashlib.sha256(raw).digest()
        return ReadItem(str(doc["id"]), pack(stub(doc)), digest, tuple(unchecked), stamp)
    except Exception:  # the main process reads it again and reports what is wrong
        return None

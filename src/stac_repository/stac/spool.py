"""Rendered documents of a large plan, held in a temporary file instead of memory.

A bulk ingest plans every item before the backend writes any: held in memory, their bytes
(or what it takes to render them again) would grow with the product. A spool keeps them in
one anonymous temporary file, written sequentially, and hands the backend a small callable
per document that reads its bytes back. The file has no name (``O_TMPFILE`` where the system
has it), so a killed ingest leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO

from ..errors import BackendError

_BUFFER = 1 << 20


class Spool:
    def __init__(self, *, buffer: int = _BUFFER) -> None:
        self._limit = buffer  # bytes gathered in memory before they go to the file
        self._file: BinaryIO | None = None
        self._buffer = bytearray()
        self._flushed = 0  # bytes already in the file

    def add(self, data: bytes) -> Spooled:
        """Keep ``data``; the returned callable gives it back."""
        offset = self._flushed + len(self._buffer)
        self._buffer += data
        if len(self._buffer) >= self._limit:
            self._flush()
        return Spooled(self, offset, len(data))

    def read(self, offset: int, size: int) -> bytes:
        if not size:
            return b""
        if offset + size > self._flushed:
            self._flush()
        assert self._file is not None, "read from a closed spool"
        data = os.pread(self._file.fileno(), size, offset)
        while len(data) < size:  # reads of regular files are short only past their end
            more = os.pread(self._file.fileno(), size - len(data), offset + len(data))
            if not more:
                raise BackendError(f"the plan's temporary file lost data at byte {offset + len(data)}")
            data += more
        return data

    def _flush(self) -> None:
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="stac-repository-plan-")  # noqa: SIM115
            view = memoryview(self._buffer)
            while view:
                written = os.pwrite(self._file.fileno(), view, self._flushed)
                self._flushed += written
                view = view[written:]
            view.release()
        except OSError as exc:
            raise BackendError(
                f"cannot hold the plan in the temporary folder {tempfile.gettempdir()}: "
                f"{exc.strerror or exc} (set TMPDIR to a folder with space)"
            ) from exc
        self._buffer.clear()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._buffer = bytearray()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Spooled:
    """One document of a :class:`Spool`: calling it returns the bytes."""

    __slots__ = ("_spool", "offset", "size")

    def __init__(self, spool: Spool, offset: int, size: int) -> None:
        self._spool = spool
        self.offset = offset
        self.size = size

    def __call__(self) -> bytes:
        return self._spool.read(self.offset, self.size)

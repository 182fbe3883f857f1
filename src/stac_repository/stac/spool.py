"""Rendered documents of a large plan, held in a temporary file instead of memory.

A bulk ingest plans every item before the backend writes any: held in memory, their bytes
(or what it takes to render them again) would grow with the product. A spool keeps them in
memory up to a buffer's size, then in one anonymous temporary file written sequentially, and
hands the backend a small callable per document that reads its bytes back. The file has no
name (``O_TMPFILE`` where the system has it), so a killed ingest leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO

from ..errors import BackendError

_BUFFER = 1 << 20


class Spool:
    def __init__(self, *, buffer: int = _BUFFER) -> None:
        self._buffer = buffer
        self._file: BinaryIO | None = None
        self._pending = bytearray()  # the first ``buffer`` bytes, until the file is needed
        self._size = 0  # bytes added
        self._flushed = 0  # bytes readable from the file
        self._closed = False

    def add(self, data: bytes) -> Spooled:
        """Keep ``data``; the returned callable gives it back."""
        assert not self._closed, "add to a closed spool"
        offset = self._size
        if self._file is None and offset + len(data) <= self._buffer:
            self._pending += data  # a small plan never needs the file (nor a temporary folder)
        else:
            try:
                if self._file is None:
                    # Written through the file object's own buffer, allocated once: a buffer
                    # grown and freed per batch would fragment the heap of a long ingest.
                    self._file = tempfile.TemporaryFile(  # noqa: SIM115 - closed by close()
                        prefix="stac-repository-plan-", buffering=self._buffer
                    )
                    self._file.write(self._pending)
                    self._pending = bytearray()
                self._file.write(data)
            except OSError as exc:
                raise self._error(exc) from exc
        self._size += len(data)
        return Spooled(self, offset, len(data))

    def read(self, offset: int, size: int) -> bytes:
        assert not self._closed, "read from a closed spool"
        if self._file is None:
            return bytes(self._pending[offset : offset + size])
        try:
            if offset + size > self._flushed:
                self._file.flush()
                self._flushed = self._size
            data = os.pread(self._file.fileno(), size, offset)
            while len(data) < size:  # reads of regular files are short only past their end
                more = os.pread(self._file.fileno(), size - len(data), offset + len(data))
                if not more:
                    raise BackendError(f"the plan's temporary file lost data at byte {offset + len(data)}")
                data += more
        except OSError as exc:
            raise self._error(exc) from exc
        return data

    @staticmethod
    def _error(exc: OSError) -> BackendError:
        # Not tempfile.gettempdir(): it raises when no temporary folder is usable at all.
        return BackendError(
            f"cannot keep the plan in a temporary file: {exc.strerror or exc} "
            "(TMPDIR names the folder it goes to)"
        )

    def close(self) -> None:
        self._closed = True
        if self._file is not None:
            self._file.close()
        self._pending = bytearray()

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

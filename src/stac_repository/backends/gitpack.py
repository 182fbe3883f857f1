"""Many new objects written as one git pack file instead of one loose file each.

A bulk ingest creates tens of thousands of small blobs (items, LFS pointers, attributes). As
loose objects each costs a folder lookup, a temporary file, a rename and, for durability, an
fsync: about 0.1 ms, the largest git-specific cost of an import. A pack holds them all in one
file (plus its index), written sequentially and made durable with two fsyncs. The format is
git's pack v2 with an index v2 (Documentation/gitformat-pack.txt): objects are stored whole
(no deltas), which ``git gc`` may later improve. libgit2 finds a new pack by itself when a
lookup misses, so trees built afterwards see these blobs.

Objects of 160 bytes or more are deflated by ISA-L (``isal``) at its level 0, its fastest: a
3 KB item takes 7 µs where ISA-L's level 1 takes 19 and zlib's 50 (zlib sets up a 256 KB state
per object), for a pack a fifth larger than at level 1; writing the pack is the critical path of
a bulk ingest, and ``git gc`` may recompress it later. Smaller objects are stored. Any zlib
reader (git, libgit2) reads both.
"""

from __future__ import annotations

import array
import hashlib
import itertools
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import BinaryIO, cast

import pygit2
from isal import isal_zlib

_NAMES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
TMP_PREFIX = ".stac-repository-tmp-pack-"
"""Temporary pack files in ``objects/pack``; recovery removes them (never a name git uses)."""
_LARGE_OFFSET = 0x80000000
_BUFFERED = 1 << 20
"""Entries are written to the pack file a megabyte at a time."""
_STORED_BELOW = 160
"""Smaller objects (LFS pointers, most attributes) are stored, not deflated: setting up any
deflate state costs more than the dozen bytes it would save on them (a pack 6% larger, a
tenth of the writing's CPU less)."""


def _object_header(kind: int, size: int) -> bytes:
    """Type and size as git's pack entry header: 3 type bits, then the size 4 + 7n bits at a time."""
    byte = (kind << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def _heads(kind: int, size: int) -> tuple[bytes, bytes, int, bytes, int]:
    """What every object of ``kind`` and ``size`` starts with: its git header (hashed before
    the content, for its id); its pack entry header and that header's CRC-32; and for an object
    stored whole, the entry header and zlib's lead (see :func:`_stored`) with their CRC-32."""
    header = _object_header(kind, size)
    lead = header + _stored_lead(size) if size < _STORED_BELOW else b""
    return b"%s %d\0" % (_NAMES[kind], size), header, zlib.crc32(header), lead, zlib.crc32(lead)


def _stored_lead(size: int) -> bytes:
    """A zlib header and the header of one final stored block of ``size`` bytes."""
    return b"\x78\x01\x01" + struct.pack("<HH", size, size ^ 0xFFFF)


def _stored(data: bytes) -> bytes:
    """``zlib.compress(data, 0)`` for the small objects stored whole, made directly: a zlib
    header, one final stored block, the Adler-32 (zlib sets up a deflate state even to store a
    hundred bytes). One stored block holds at most 65,535 bytes."""
    return _stored_lead(len(data)) + data + zlib.adler32(data).to_bytes(4, "big")


class _Objects:
    """The pack's objects by id, in flat arrays: about 45 bytes per object, where a dict of
    20-byte keys took 125 (a bulk pack holds 5.5 objects per item: at 100k items, 37 MB less).

    Ids are kept in one bytearray (20 bytes each, in pack order) and found through an
    open-addressing table of entry numbers (linear probing, at most half full).
    """

    _EMPTY = -1

    def __init__(self, expected: int = 0) -> None:
        self.ids = bytearray()
        self.offsets = array.array("Q")
        self.crcs = array.array("I")
        size = 1024
        while size < 2 * expected:
            size *= 2
        self._slots = array.array("i", [self._EMPTY]) * size
        self._mask = size - 1

    def __len__(self) -> int:
        return len(self.offsets)

    def slot(self, raw: bytes) -> int | None:
        """The free slot where ``raw`` goes; None when it is here already."""
        slots, ids, mask = self._slots, self.ids, self._mask
        slot = hash(raw) & mask
        while (n := slots[slot]) != self._EMPTY:
            if ids[20 * n : 20 * n + 20] == raw:
                return None
            slot = (slot + 1) & mask
        return slot

    def add(self, slot: int, raw: bytes, offset: int, crc: int) -> None:
        """Record a new object in the free ``slot`` that :meth:`slot` gave for it."""
        self._slots[slot] = len(self.offsets)
        self.ids += raw
        self.offsets.append(offset)
        self.crcs.append(crc)
        if 2 * len(self.offsets) > len(self._slots):
            self._grow()

    def _grow(self) -> None:
        self._slots = array.array("i", [self._EMPTY]) * (2 * len(self._slots))
        self._mask = len(self._slots) - 1
        for n in range(len(self.offsets)):
            raw = bytes(self.ids[20 * n : 20 * n + 20])
            self._slots[cast(int, self.slot(raw))] = n

    def by_first_byte(self) -> list[array.array[int]]:
        """Entry numbers grouped by the first byte of their id (the index's fan-out)."""
        groups = [array.array("I") for _ in range(256)]
        for n, first in enumerate(self.ids[::20]):  # the first byte of every id
            groups[first].append(n)
        return groups

    def sorted_ids(self, group: array.array[int]) -> tuple[array.array[int], bytes]:
        """A group's entry numbers sorted by id, and their ids in that order."""
        ids = self.ids
        keys = [ids[20 * n : 20 * n + 20] for n in group]
        order = sorted(range(len(group)), key=keys.__getitem__)
        return array.array("I", [group[i] for i in order]), b"".join([keys[i] for i in order])


class PackWriter:
    """Collects objects into a temporary pack in ``objects/pack``; :meth:`finish` names it."""

    def __init__(self, objects_dir: Path, *, expected: int = 0) -> None:
        """``expected``: about how many objects will be added (sizes the table once)."""
        self.pack_dir = objects_dir / "pack"
        self.pack_dir.mkdir(parents=True, exist_ok=True)
        self.tmp = self.pack_dir / f"{TMP_PREFIX}{os.getpid()}-{id(self):x}.pack"
        self._fh: BinaryIO = open(self.tmp, "w+b")  # noqa: SIM115 - closed by finish/abort
        self._fh.write(b"PACK" + struct.pack(">II", 2, 0))  # the count is patched at the end
        self._offset = 12
        self._objects = _Objects(expected)
        self._buffer = bytearray()
        self._heads: dict[int, tuple[bytes, bytes, int, bytes, int]] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def add(self, kind: int, data: bytes) -> pygit2.Oid:
        """Store an object of ``kind`` (pack type codes are libgit2's: tree 2, blob 3).

        A bulk pack takes five or six objects per item, so this is written for speed: the
        headers of a (kind, size) are made once, writes go to a buffer, and the table's
        insertion is inline.
        """
        size = len(data)
        heads = self._heads.get(kind << 40 | size)
        if heads is None:
            if len(self._heads) >= 4096:  # as many sizes as objects, in a large pack of large ones
                self._heads.clear()
            heads = self._heads[kind << 40 | size] = _heads(kind, size)
        prefix, header, header_crc, lead, lead_crc = heads
        digest = hashlib.sha1(prefix, usedforsecurity=False)
        digest.update(data)
        raw = digest.digest()
        objects = self._objects
        slot = objects.slot(raw)
        if slot is not None:
            buffer = self._buffer
            if size < _STORED_BELOW:  # as _stored(data), its parts written one by one
                check = zlib.adler32(data).to_bytes(4, "big")
                objects.add(slot, raw, self._offset, zlib.crc32(check, zlib.crc32(data, lead_crc)))
                buffer += lead
                buffer += data
                buffer += check
                self._offset += len(lead) + size + 4
            else:
                packed = isal_zlib.compress(data, 0)
                objects.add(slot, raw, self._offset, zlib.crc32(packed, header_crc))
                buffer += header
                buffer += packed
                self._offset += len(header) + len(packed)
            if len(buffer) >= _BUFFERED:
                self._fh.write(buffer)
                buffer.clear()
        return pygit2.Oid(raw=raw)

    def finish(self, *, fsync: bool, rename: bool = True) -> list[Path]:
        """Write the trailer and the index, rename both into place; the new files (none if empty).

        The index goes last: git and libgit2 only see a pack through its index. Without
        ``rename``, both stay temporaries (to be put in place by :func:`land`) and the list is
        the temporary pack, its final name, the temporary index and its final name.
        """
        fh = self._fh
        if not len(self._objects):
            self.abort()
            return []
        fh.write(self._buffer)
        self._buffer = bytearray()
        fh.seek(8)
        fh.write(struct.pack(">I", len(self._objects)))
        fh.flush()
        fh.seek(0)
        digest = hashlib.sha1(usedforsecurity=False)
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
        checksum = digest.digest()
        fh.seek(0, os.SEEK_END)
        fh.write(checksum)
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
        fh.close()
        name = f"pack-{checksum.hex()}"
        pack = self.pack_dir / f"{name}.pack"
        idx = self.pack_dir / f"{name}.idx"
        tmp_idx = self.tmp.with_suffix(".idx")
        try:
            with open(tmp_idx, "wb") as out:
                self._write_index(out, checksum)
                out.flush()
                if fsync:
                    os.fsync(out.fileno())
            if not rename:
                return [self.tmp, pack, tmp_idx, idx]
            os.replace(self.tmp, pack)
            os.replace(tmp_idx, idx)
        except BaseException:
            tmp_idx.unlink(missing_ok=True)
            self.tmp.unlink(missing_ok=True)
            raise
        return [pack, idx]

    def abort(self) -> None:
        self._fh.close()
        self.tmp.unlink(missing_ok=True)

    def _write_index(self, out: BinaryIO, pack_checksum: bytes) -> None:
        """The pack's index, written part by part (a bulk pack's index is tens of megabytes:
        the ids are sorted and written a fan-out group at a time, never all at once)."""
        objects = self._objects
        groups = objects.by_first_byte()
        digest = hashlib.sha1(usedforsecurity=False)

        def write(part: bytes | array.array[int]) -> None:
            digest.update(part)
            out.write(part)

        write(b"\377tOc" + struct.pack(">I", 2))
        write(struct.pack(">256I", *itertools.accumulate(len(group) for group in groups)))
        order = array.array("I")  # the index's order: by id
        for group in groups:
            numbers, ids = objects.sorted_ids(group)
            order.extend(numbers)
            write(ids)
        crcs = array.array("I", map(objects.crcs.__getitem__, order))
        small = array.array("I")
        large = array.array("Q")
        offsets = map(objects.offsets.__getitem__, order)
        if not objects.offsets or max(objects.offsets) < _LARGE_OFFSET:
            small.extend(offsets)
        else:
            for offset in offsets:
                if offset < _LARGE_OFFSET:
                    small.append(offset)
                else:
                    small.append(_LARGE_OFFSET | len(large))
                    large.append(offset)
        if sys.byteorder == "little":  # the index is big-endian
            for numbers in (crcs, small, large):
                numbers.byteswap()
        for numbers in (crcs, small, large):
            write(numbers)
        write(pack_checksum)
        out.write(digest.digest())


def land(objects_dir: Path, files: list[str]) -> list[Path]:
    """Put in place a pack that :meth:`PackWriter.finish` left as temporaries (``files`` as it
    listed them, maybe from another process: each must be one of this pack folder's temporaries
    or pack names); the pack's files."""
    pack_dir = objects_dir / "pack"
    tmp_pack, pack, tmp_idx, idx = (Path(f) for f in files)
    for tmp, final in ((tmp_pack, pack), (tmp_idx, idx)):
        if tmp.parent != pack_dir or final.parent != pack_dir or not tmp.name.startswith(TMP_PREFIX):
            raise ValueError(f"not a temporary pack of {pack_dir}: {tmp} -> {final}")
    os.replace(tmp_pack, pack)
    os.replace(tmp_idx, idx)  # last: git and libgit2 see a pack through its index
    return [pack, idx]


def temporaries(objects_dir: Path) -> list[Path]:
    """Temporary packs left by a killed writer (recovery removes them under the writer lock)."""
    pack_dir = objects_dir / "pack"
    return list(pack_dir.glob(f"{TMP_PREFIX}*")) if pack_dir.is_dir() else []

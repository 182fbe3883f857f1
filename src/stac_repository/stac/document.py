"""Reading STAC documents as plain dicts: bounded JSON parsing and type identification.

pystac is kept out of this path on purpose: it migrates documents to its own STAC version
(we store them as given) and walks trees quadratically.
"""

from __future__ import annotations

import functools
import json
import os
import stat
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from ..errors import InvalidStac

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""A STAC document larger than this is refused rather than parsed into memory."""


class StacType(StrEnum):
    CATALOG = "Catalog"
    COLLECTION = "Collection"
    ITEM = "Item"
    ITEM_COLLECTION = "ItemCollection"


FILE_NAMES = {StacType.CATALOG: "catalog.json", StacType.COLLECTION: "collection.json"}


MAX_NESTING = 200
"""Deepest JSON nesting accepted (orjson writes at most 254 levels; real STAC needs ~10)."""
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
"""Maps every ASCII digit to "0" and every other byte to " ": a run of 19 digits becomes 19 "0"s."""
_LONG_RUN = b"0" * 19


def parse_json(data: bytes, *, file: str) -> Any:
    """Parse JSON exactly as written: integers beyond 64 bits (which orjson turns into floats)
    are kept exact, and nesting deeper than :data:`MAX_NESTING` is refused."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidStac(f"not valid JSON ({exc})", file=file) from None
    except RecursionError:
        raise InvalidStac("JSON nested too deeply", file=file) from None
    if _LONG_RUN in data.translate(_DIGITS):  # what re's \d{19,} finds, several times faster
        doc = json.loads(data)  # exact integers; numbers are rare enough to pay for this
    # MAX_NESTING containers around a scalar are MAX_NESTING + 1 levels: the scalar is one
    if data.count(b"[") + data.count(b"{") >= MAX_NESTING and _too_deep(doc):
        raise InvalidStac(f"JSON nested deeper than {MAX_NESTING} levels", file=file)
    return doc


ORJSON_MAX_CONTAINERS = 254
"""The most nested containers ``orjson.dumps`` writes (a test pins it)."""
_PADDING = ORJSON_MAX_CONTAINERS + 1 - MAX_NESTING


def _too_deep(doc: Any) -> bool:
    """``_depth(doc) > MAX_NESTING``, mostly without walking ``doc``: wrapped in ``_PADDING``
    lists, a document orjson still writes has at most ``MAX_NESTING - 1`` containers on any path,
    so at most ``MAX_NESTING`` levels. orjson does that in C, where the walk takes 40 ms for a
    collection of 10,000 item links; only a document it refuses (or cannot write: integers
    beyond 64 bits) is walked."""
    wrapped = doc
    for _ in range(_PADDING):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError:
        return _depth(doc) > MAX_NESTING
    return False


def _depth(doc: Any) -> int:
    """The nesting depth of ``doc``, a scalar counting as one level. Only containers are
    visited: a stored catalog of a thousand item links is read at every single-item ingest, and
    its strings are most of its values."""
    containers = (dict, list)
    if not isinstance(doc, containers):
        return 1
    deepest, stack = 1, [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        values = node.values() if isinstance(node, dict) else node
        if values and depth >= deepest:
            deepest = depth + 1
        inner = [(v, depth + 1) for v in values if isinstance(v, containers)]
        if inner:
            stack.extend(inner)
    return deepest


def read_json_file(path: Path) -> Any:
    """Parse a local JSON file, refusing oversized files, FIFOs and devices."""
    return parse_json(read_json_bytes(path), file=str(path))


def read_json_bytes(path: Path | str, st: os.stat_result | None = None) -> bytes:
    """The bytes of a local JSON file, refusing oversized files, FIFOs and devices.

    ``st``: the file's ``os.stat``, when the caller just made it."""
    name = str(path)
    if st is None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise InvalidStac("file does not exist", file=name) from None
        except OSError as exc:
            raise InvalidStac(f"cannot read ({exc.strerror})", file=name) from None

    if not stat.S_ISREG(st.st_mode):
        raise InvalidStac("not a regular file", file=name)
    if st.st_size > MAX_DOCUMENT_BYTES:
        raise InvalidStac(
            f"{st.st_size} bytes is over the {MAX_DOCUMENT_BYTES} byte document limit", file=name
        )
    try:
        return _read_all(name, st.st_size)
    except OSError as exc:
        raise InvalidStac(f"cannot read ({exc.strerror})", file=name) from None


def _read_all(name: str, size: int) -> bytes:
    """A file's bytes with plain ``os`` calls (half the system calls of a file object: ingest
    reads every document of a product, some twice)."""
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        first = os.read(fd, size + 1)
        if len(first) <= size:  # a regular file reads short only at its end: no read of EOF
            return first
        chunks = [first]  # it grew since its stat: read to the end
        while chunks[-1]:
            chunks.append(os.read(fd, max(size, 1 << 16)))
    finally:
        os.close(fd)
    return b"".join(chunks)


def identify(doc: Any, *, file: str | None = None) -> StacType:
    """The STAC type of a document, by the rules of its own STAC version.

    Since 1.0.0-rc.1 every object has a ``type``; before, only items ("Feature") had one,
    and catalogs and collections were told apart by their fields.
    """
    if not isinstance(doc, dict):
        raise InvalidStac("not a JSON object", file=file)
    kind = doc.get("type")
    version = doc.get("stac_version")
    if kind == "Feature":
        return StacType.ITEM
    if kind == "FeatureCollection":
        return StacType.ITEM_COLLECTION
    if not isinstance(version, str):
        raise InvalidStac("not a STAC document (no stac_version)", file=file, field="stac_version")
    if version_tuple(version) >= TYPE_FIELD_SINCE:
        if kind == "Collection":
            return StacType.COLLECTION
        if kind == "Catalog":
            return StacType.CATALOG
        if kind is None:
            raise InvalidStac(
                f"no type field (required since STAC 1.0.0-rc.1; document is {version})",
                file=file,
                field="type",
            )
        raise InvalidStac(f"unknown STAC type {kind!r}", file=file, field="type")
    if kind is not None:
        raise InvalidStac(
            f"type {kind!r} is not a STAC {version} object type "
            "(catalogs and collections have a type only since 1.0.0-rc.1)",
            file=file,
            field="type",
        )
    if "extent" in doc or "license" in doc:
        return StacType.COLLECTION
    return StacType.CATALOG


_STAGES = {"alpha": 0, "a": 0, "beta": 1, "b": 1, "rc": 2}


@functools.lru_cache(maxsize=256)
def version_tuple(version: str) -> tuple[int, ...]:
    """A sortable form of a STAC version: (major, minor, patch, stage, n), final = stage 3.

    "1.0.0-beta.2" < "1.0.0-RC1" < "1.0.0-rc.3" < "1.0.0".
    """
    main, _, pre = version.strip().partition("-")
    parts: list[int] = []
    for piece in [*main.split("."), "0", "0", "0"][:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    if not pre:
        return (*parts, 3, 0)
    label = "".join(ch for ch in pre.lower() if ch.isalpha())
    number = "".join(ch for ch in pre if ch.isdigit())
    return (*parts, _STAGES.get(label, 0), int(number) if number else 0)


TYPE_FIELD_SINCE = version_tuple("1.0.0-rc.1")
V1 = version_tuple("1.0.0")


def canonical(doc: Any) -> bytes:
    """Compact bytes with sorted keys, for hashing a document's content."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def dumps(doc: Any) -> bytes:
    """Canonical bytes for a stored document: indented, key order kept, newline at the end."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    except orjson.JSONEncodeError:  # integers beyond 64 bits: the standard library keeps them
        return json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"

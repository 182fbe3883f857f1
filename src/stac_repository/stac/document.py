"""Reading STAC documents as plain dicts: bounded JSON parsing and type identification.

pystac is kept out of this path on purpose: it migrates documents to its own STAC version
(we store them as given) and walks trees quadratically.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
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


def parse_json(data: bytes, *, file: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidStac(f"not valid JSON ({exc})", file=file) from None
    except RecursionError:
        raise InvalidStac("JSON nested too deeply", file=file) from None


def read_json_file(path: Path) -> Any:
    """Parse a local JSON file, refusing oversized files, FIFOs and devices."""
    name = str(path)
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
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidStac(f"cannot read ({exc.strerror})", file=name) from None
    return parse_json(data, file=name)


def identify(doc: Any, *, file: str | None = None) -> StacType:
    """The STAC type of a document, also for pre-1.0 documents that have no ``type`` field."""
    if not isinstance(doc, Mapping):
        raise InvalidStac("not a JSON object", file=file)
    kind = doc.get("type")
    if kind == "Feature":
        return StacType.ITEM
    if kind == "FeatureCollection":
        return StacType.ITEM_COLLECTION
    if kind == "Collection":
        return StacType.COLLECTION
    if kind == "Catalog":
        return StacType.CATALOG
    if kind is not None:
        raise InvalidStac(f"unknown STAC type {kind!r}", file=file, field="type")
    if "stac_version" not in doc:
        raise InvalidStac("not a STAC document (no type, no stac_version)", file=file)
    version = str(doc.get("stac_version", ""))
    if not _before_1_0(version):
        raise InvalidStac(f"no type field (required since STAC 1.0.0; document is {version})",
                          file=file, field="type")
    # STAC < 1.0 had no "type" for catalogs and collections.
    if "extent" in doc or "license" in doc:
        return StacType.COLLECTION
    return StacType.CATALOG


def _before_1_0(version: str) -> bool:
    head = version.split("-")[0].split(".")
    try:
        return int(head[0]) < 1
    except ValueError:
        return False


def version_tuple(version: str) -> tuple[int, ...]:
    """Numeric part of a STAC version; pre-releases of 1.0.0 sort below 1.0.0."""
    main, _, pre = version.partition("-")
    parts: list[int] = []
    for piece in main.split("."):
        try:
            parts.append(int(piece))
        except ValueError:
            parts.append(0)
    return (*parts, 0 if pre else 1)


def dumps(doc: Any) -> bytes:
    """Canonical bytes for a stored document: indented, key order kept, newline at the end."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"

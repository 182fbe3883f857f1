"""Where each STAC object lives in the repository, and how ids become safe file names.

    <parent folder>/<segment(id)>/catalog.json      a catalog
    <parent folder>/<segment(id)>/collection.json   a collection
    <parent folder>/<segment(id)>/<segment(id)>.json an item
    <object folder>/<asset file>                    its local assets

The root catalog is ``catalog.json`` at the top. ``segment`` keeps ids readable where
they are plain and turns anything else into a name that cannot leave its folder, clash
with a reserved name, or collide with another id (a short hash of the id is appended
whenever a character had to be replaced).
"""

from __future__ import annotations

import hashlib
import posixpath
import re

from .document import FILE_NAMES, StacType

ROOT_PATH = "catalog.json"
MAX_SEGMENT = 96
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_STATE_NAMES = {"catalog.json", "collection.json", ".stac-repository", ".git"}
_PLAIN_FILE = re.compile(r"[A-Za-z0-9_-](?:[A-Za-z0-9._-]*[A-Za-z0-9_-])?\.[A-Za-z0-9]{1,16}")
"""A base name :func:`asset_name` keeps as it is (unless its stem is reserved, a state name or
too long): a stem of safe characters that neither starts nor ends with a dot, and a short
alphanumeric extension."""


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def segment(name: str) -> str:
    """A file-name segment for ``name`` that is safe on POSIX and Windows, and injective."""
    safe = _UNSAFE.sub("_", name)
    changed = safe != name
    if not safe or safe.startswith(".") or safe.endswith(".") or _RESERVED.match(safe):
        changed = True
        safe = "_" + safe.strip(".")
    if safe.lower() in _STATE_NAMES:
        changed = True
    if len(safe) > MAX_SEGMENT:
        changed = True
        safe = safe[:MAX_SEGMENT]
    return f"{safe}-{_digest(name)}" if changed else safe


def folder_of(doc_path: str) -> str:
    """``posixpath.dirname`` for a string path, without its generic-path overhead (a bulk
    ingest asks for a dozen folders per item)."""
    head = doc_path[: doc_path.rfind("/") + 1]
    return head.rstrip("/") or head


def child_path(parent_doc_path: str, child_id: str, kind: StacType, *, duplicate: int = 0) -> str:
    """Path of a child object's document under its parent.

    ``duplicate`` > 0 names the n-th further sibling with the same id (STAC asks for unique
    ids but real catalogs repeat them; each still gets a folder of its own).
    """
    name = segment(child_id)
    folder = name if not duplicate else f"{name}-dup{duplicate}"
    head = folder_of(parent_doc_path)
    # posixpath.join(head, folder) without its generic-path overhead (``folder`` is never absolute)
    base = f"{head}/{folder}" if head and not head.endswith("/") else f"{head}{folder}"
    if kind is StacType.ITEM:
        if f"{name}.json".lower() in _STATE_NAMES:
            name = f"{name}-{_digest(child_id)}"
        return f"{base}/{name}.json"
    return f"{base}/{FILE_NAMES[kind]}"


def relative_href(from_doc: str, to_path: str) -> str:
    """A relative href from one stored document to another stored file."""
    rel = _relpath(to_path, folder_of(from_doc) or ".")
    return rel if rel.startswith("../") else f"./{rel}"


def _relpath(path: str, start: str) -> str:
    """``posixpath.relpath`` for relative paths, without its two ``getcwd`` calls (a bulk
    ingest computes tens of thousands of hrefs)."""
    target, base = posixpath.normpath(path), posixpath.normpath(start)
    if not path or target.startswith(("/", "..")) or base.startswith(("/", "..")):
        return posixpath.relpath(path, start)
    parts = [] if target == "." else target.split("/")
    base_parts = [] if base == "." else base.split("/")
    common = 0
    for a, b in zip(parts, base_parts, strict=False):
        if a != b:
            break
        common += 1
    return "/".join([".."] * (len(base_parts) - common) + parts[common:]) or "."


def asset_name(href: str, taken: set[str]) -> str:
    """A file name for a copied asset: its own base name, made safe and unique in ``taken``."""
    base = posixpath.basename(href.replace("\\", "/").split("?")[0].split("#")[0]) or "asset"
    stem, dot, ext = base.rpartition(".")
    if (
        _PLAIN_FILE.fullmatch(base)
        and len(stem) <= MAX_SEGMENT
        and not _RESERVED.match(stem)
        and stem.lower() not in _STATE_NAMES
    ):
        name = base  # what the rest makes of it (most assets: a bulk product has one per file)
    else:
        if not dot:
            stem, ext = base, ""
        stem = segment(stem) if stem else "asset"
        ext = "".join(ch for ch in ext if ch.isascii() and ch.isalnum())[:16]
        name = f"{stem}.{ext}" if ext else stem
    n = 1
    candidate = name
    while candidate.lower() in taken or candidate.lower() in _STATE_NAMES:
        n += 1
        candidate = f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}"
    taken.add(candidate.lower())
    return candidate

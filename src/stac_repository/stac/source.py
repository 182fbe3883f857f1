"""Reading a product from disk: the STAC tree below one root document.

Only what the product's documents point to is read: child and item links that resolve to
local files inside the product's folder, and local asset files (outside the folder only
when the caller allows it). Remote links are left for the planner to keep as they are.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..errors import InvalidStac
from .document import StacType, parse_json, read_json_bytes, version_tuple
from .validation import check_structure

MAX_DEPTH = 256
STRUCTURAL_RELS = frozenset({"self", "root", "parent", "child", "item", "collection"})


@dataclass(slots=True)
class SourceNode:
    kind: StacType
    doc: dict[str, Any]
    """The document; for items loaded lazily, only the fields planning needs (see :func:`stub`)."""
    file: Path  # absolute, resolved
    children: list[SourceNode] = field(default_factory=list)
    link_of_child: dict[int, dict[str, Any]] = field(default_factory=dict)
    """The original child/item link of each child, by ``id()`` of the child node."""
    remote_children: list[dict[str, Any]] = field(default_factory=list)
    bucket_key: str | None = None
    """Set on partition catalogs made by the layout (see :mod:`.partition`), not read from disk."""
    bucket_level: int = 0
    digest: str | None = None
    """sha256 of the file's bytes as read and validated (None for nodes not read from disk)."""
    lazy: bool = False
    """True when ``doc`` is a stub: the full document is read again when it is written."""

    @property
    def id(self) -> str:
        return str(self.doc["id"])

    def walk(self) -> list[SourceNode]:
        out, stack = [], [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out


def local_target(href: str, base: Path) -> Path | None:
    """The local file an href points to (relative to ``base``'s folder), or None if remote."""
    parsed = urlparse(href)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # http, s3, ... (one letter: a drive)
        return None
    if len(parsed.scheme) == 1 or "\\" in href:
        href = href.replace("\\", "/")
        if len(parsed.scheme) == 1:
            return Path(href)  # a Windows drive path: will not exist here
    path = Path(unquote(href.split("#")[0].split("?")[0]))
    return path if path.is_absolute() else base.parent / path


@dataclass(frozen=True, slots=True)
class Resolved:
    real: str
    """``os.path.realpath`` of the path."""
    present: bool
    """The path exists (``os.path.lexists``: a broken symbolic link is present)."""
    stat: os.stat_result | None
    """What the path points to (symbolic links followed), None when that does not exist."""

    @property
    def is_file(self) -> bool:
        return self.stat is not None and stat.S_ISREG(self.stat.st_mode)


class RealPaths:
    """``realpath`` and ``stat`` of many files in few folders, each folder resolved once.

    A product's thousands of documents and assets sit in a handful of folders; resolving every
    component of every path again costs several system calls per file. A file that is itself
    a symbolic link is still resolved in full.
    """

    def __init__(self) -> None:
        self._folders: dict[str, str] = {}

    def resolve(self, path: Path | str) -> Resolved:
        name = os.fspath(path)
        folder, base = os.path.split(name)
        try:
            st: os.stat_result | None = os.lstat(name)
        except (OSError, ValueError):
            st = None
        if base in ("", ".", "..") or (st is not None and stat.S_ISLNK(st.st_mode)):
            try:
                target: os.stat_result | None = os.stat(name)
            except (OSError, ValueError):
                target = None
            return Resolved(os.path.realpath(name), st is not None, target)
        real_folder = self._folders.get(folder)
        if real_folder is None:
            real_folder = self._folders[folder] = os.path.realpath(folder)
        return Resolved(os.path.join(real_folder, base), st is not None, st)


def inside(path: Path, folder: Path, *, resolved: bool = False) -> bool:
    """Is ``path`` (symbolic links resolved, unless already) ``folder`` or below it?"""
    real = os.fspath(path) if resolved else os.path.realpath(path)
    base = os.fspath(folder)
    return real == base or real.startswith(base.rstrip("/") + "/")


Validate = Callable[[dict[str, Any], StacType, Path], None]


def stub(item: dict[str, Any]) -> dict[str, Any]:
    """The fields of an item that planning reads; the rest is re-read when the item is written.

    Keeps memory flat in the number of items of a product."""
    props = item.get("properties") or {}
    keep = ("datetime", "start_datetime", "end_datetime")
    out: dict[str, Any] = {
        "id": item["id"],
        "type": item.get("type"),
        "stac_version": item.get("stac_version"),
        "bbox": item.get("bbox"),
        "properties": {k: props[k] for k in keep if k in props},
        "links": [link for link in item.get("links", []) if link.get("rel") not in STRUCTURAL_RELS],
    }
    if "collection" in item:
        out["collection"] = item["collection"]
    if isinstance(item.get("assets"), dict):
        out["assets"] = {key: {"href": asset["href"]} for key, asset in item["assets"].items()}
    return out


def load_tree(root_file: Path, *, validate: Validate | None = None, lazy_items: bool = False) -> SourceNode:
    """Load and check the tree below ``root_file``; raise InvalidStac on any fault.

    ``validate`` is called on every document while it is in memory; with ``lazy_items`` only
    a stub of each item is kept (the planner re-reads items when writing them, and checks
    that the bytes did not change since).
    """
    root_file = Path(os.path.realpath(root_file))
    folder = root_file.parent
    seen: set[Path] = set()
    paths = RealPaths()

    def load(file: Path, depth: int, st: os.stat_result | None = None) -> SourceNode:
        seen.add(file)
        raw = read_json_bytes(file, st)
        doc = parse_json(raw, file=str(file))
        kind = check_structure(doc, file=str(file))
        if kind is StacType.ITEM_COLLECTION:
            raise InvalidStac("an ItemCollection cannot be a child", file=str(file))
        if validate is not None:
            validate(doc, kind, file)
        node = SourceNode(kind=kind, doc=doc, file=file, digest=hashlib.sha256(raw).hexdigest())
        if kind is StacType.ITEM:
            _check_old_commons(doc, file)
            if lazy_items:
                node.doc, node.lazy = stub(doc), True
            return node
        for link in doc.get("links", []):
            if link.get("rel") not in ("child", "item"):
                continue
            target = local_target(link["href"], file)
            if target is None:
                node.remote_children.append(link)
                continue
            resolved = paths.resolve(target)
            target = Path(resolved.real)
            if not inside(target, folder, resolved=True):
                raise InvalidStac(
                    f"{link['rel']} link {link['href']!r} leaves the product folder {folder}",
                    file=str(file),
                )
            if target in seen:
                continue
            if not resolved.is_file:
                raise InvalidStac(
                    f"{link['rel']} link {link['href']!r} points to a missing file", file=str(file)
                )
            if depth >= MAX_DEPTH:
                raise InvalidStac(f"catalog nested deeper than {MAX_DEPTH} levels", file=str(file))
            child = load(target, depth + 1, resolved.stat)
            node.link_of_child[id(child)] = link
            node.children.append(child)
        return node

    return load(root_file, 0)


def _check_old_commons(doc: dict[str, Any], file: Path) -> None:
    """STAC 0.8 items inherit properties from their collection: it must be at hand."""
    if version_tuple(str(doc.get("stac_version"))) >= version_tuple("0.9.0"):
        return
    for link in doc.get("links", []):
        if link.get("rel") != "collection":
            continue
        target = local_target(link["href"], file)
        if target is None or not target.is_file():
            raise InvalidStac(
                f"a STAC {doc.get('stac_version')} item inherits properties from its collection "
                f"{link['href']!r}, which is not available locally",
                file=str(file),
                field="links",
            )

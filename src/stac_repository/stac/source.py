"""Reading a product from disk: the STAC tree below one root document.

Only what the product's documents point to is read: child and item links that resolve to
local files inside the product's folder, and local asset files (outside the folder only
when the caller allows it). Remote links are left for the planner to keep as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..errors import InvalidStac
from .document import StacType, read_json_file, version_tuple
from .validation import check_structure

MAX_DEPTH = 256
STRUCTURAL_RELS = frozenset({"self", "root", "parent", "child", "item", "collection"})


@dataclass
class SourceNode:
    kind: StacType
    doc: dict[str, Any]
    file: Path  # absolute, resolved
    children: list[SourceNode] = field(default_factory=list)
    link_of_child: dict[int, dict[str, Any]] = field(default_factory=dict)
    """The original child/item link of each child, by ``id()`` of the child node."""
    remote_children: list[dict[str, Any]] = field(default_factory=list)
    bucket_key: str | None = None
    """Set on partition catalogs made by the layout (see :mod:`.partition`), not read from disk."""
    bucket_level: int = 0

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


def inside(path: Path, folder: Path) -> bool:
    real = Path(os.path.realpath(path))
    return real == folder or folder in real.parents


def load_tree(root_file: Path) -> SourceNode:
    """Load and structurally check the tree below ``root_file``; raise InvalidStac on any fault."""
    root_file = Path(os.path.realpath(root_file))
    folder = root_file.parent
    seen: set[Path] = set()

    def load(file: Path, depth: int) -> SourceNode:
        seen.add(file)
        doc = read_json_file(file)
        kind = check_structure(doc, file=str(file))
        if kind is StacType.ITEM_COLLECTION:
            raise InvalidStac("an ItemCollection cannot be a child", file=str(file))
        node = SourceNode(kind=kind, doc=doc, file=file)
        if kind is StacType.ITEM:
            _check_old_commons(doc, file)
            return node
        for link in doc.get("links", []):
            if link.get("rel") not in ("child", "item"):
                continue
            target = local_target(link["href"], file)
            if target is None:
                node.remote_children.append(link)
                continue
            if not inside(target, folder):
                raise InvalidStac(
                    f"{link['rel']} link {link['href']!r} leaves the product folder {folder}",
                    file=str(file),
                )
            target = Path(os.path.realpath(target))
            if target in seen:
                continue
            if not target.is_file():
                raise InvalidStac(
                    f"{link['rel']} link {link['href']!r} points to a missing file", file=str(file)
                )
            if depth >= MAX_DEPTH:
                raise InvalidStac(f"catalog nested deeper than {MAX_DEPTH} levels", file=str(file))
            child = load(target, depth + 1)
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

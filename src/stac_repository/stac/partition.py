"""Bounded fan-out: large collections and catalogs are split into partition catalogs.

A catalog or collection lists at most ``max_items`` items directly. Further items go into
partition catalogs in folders named ``~<key>`` (a name no id can map to, see
:func:`.layout.segment`): by default the first two hex digits of a hash of the item id, a
level deeper each time a partition fills up; or (scheme "datetime") year, then month, then
hash digits. Every item stays reachable through child/item links, so the stored catalog
remains a plain static STAC catalog, while no folder and no document grows with the
catalog, and so no commit does either.

Partition catalogs keep what their items cover in their id-index entry, so an ancestor
collection's extent can be recomputed from its direct children without reading every item.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import extent as ext
from .document import StacType
from .layout import folder_of
from .source import SourceNode

MARK = "~"
SCHEMES = ("hash", "datetime", "none")


@dataclass(frozen=True)
class Layout:
    max_items: int = 1000
    scheme: str = "hash"

    @property
    def enabled(self) -> bool:
        return self.scheme != "none" and self.max_items > 0


def is_partition(doc_path: str) -> bool:
    return posixpath.basename(folder_of(doc_path)).startswith(MARK)


def partition_path(parent_doc_path: str, key: str) -> str:
    return posixpath.join(folder_of(parent_doc_path), f"{MARK}{key}", "catalog.json")


def keys(item: Mapping[str, Any], scheme: str) -> Iterator[str]:
    """The partition key of each level for ``item``."""
    if scheme == "datetime":
        props = item.get("properties") or {}
        when = props.get("start_datetime") or props.get("datetime") if isinstance(props, Mapping) else None
        if isinstance(when, str) and len(when) >= 7 and when[:4].isdigit() and when[5:7].isdigit():
            yield when[:4]
            yield when[5:7]
    digest = hashlib.sha1(str(item.get("id")).encode("utf-8", "surrogatepass")).hexdigest()
    for n in range(0, len(digest), 2):
        yield digest[n : n + 2]


def key_at(item: Mapping[str, Any], scheme: str, level: int) -> str:
    if scheme != "datetime" and level < 20:  # :func:`keys` of the id hash alone, without the walk
        digest = hashlib.sha1(str(item.get("id")).encode("utf-8", "surrogatepass")).hexdigest()
        return digest[2 * level : 2 * level + 2]
    for n, key in enumerate(keys(item, scheme)):
        if n == level:
            return key
    raise ValueError("partition levels exhausted")  # 20+ levels: unreachable in practice


def partition_document(parent: Mapping[str, Any], key: str, scheme: str) -> dict[str, Any]:
    parent_id = str(parent.get("id"))
    return {
        "type": "Catalog",
        "stac_version": str(parent.get("stac_version") or "1.1.0"),
        "id": f"{parent_id}{MARK}{key}",
        "title": f"{parent.get('title') or parent_id} ({key})",
        "description": (
            f"Items of {parent_id} whose {'date or ' if scheme == 'datetime' else ''}id hash falls in "
            f"partition {key}; made by stac-repository to keep folders and documents small."
        ),
        "links": [],
    }


def partition_tree(node: SourceNode, layout: Layout) -> None:
    """Move items beyond ``max_items`` of any node of a product tree into partition nodes."""
    if not layout.enabled:
        return
    stack = [node]
    while stack:
        current = stack.pop()
        if current.kind is StacType.ITEM:
            continue
        items = [c for c in current.children if c.kind is StacType.ITEM]
        if len(items) > layout.max_items:
            overflow = items[layout.max_items :]
            moved = {id(c) for c in overflow}
            groups: dict[str, list[SourceNode]] = {}
            for item in overflow:
                # The hash scheme needs only the id: a lazy item's stub is not parsed for it.
                fields = item.doc if layout.scheme == "datetime" else {"id": item.id}
                groups.setdefault(key_at(fields, layout.scheme, current.bucket_level), []).append(item)
            current.children = [c for c in current.children if id(c) not in moved]
            for key in sorted(groups):
                bucket = SourceNode(
                    kind=StacType.CATALOG,
                    doc=partition_document(current.doc, key, layout.scheme),
                    file=current.file.parent / f"{MARK}{key}" / current.file.name,
                    children=groups[key],
                    link_of_child={id(c): current.link_of_child.pop(id(c), {}) for c in groups[key]},
                    bucket_key=key,
                    bucket_level=current.bucket_level + 1,
                )
                current.children.append(bucket)
        stack.extend(c for c in current.children if c.kind is not StacType.ITEM)


def coverage_to_json(cov: ext.Coverage) -> list[Any]:
    return [list(cov.bbox) if cov.bbox else None, cov.start, cov.end, cov.open_start, cov.open_end]


def coverage_from_json(data: Any) -> ext.Coverage:
    if not isinstance(data, list) or len(data) != 5:
        return ext.Coverage(None, None, None)
    box, start, end, open_start, open_end = data
    return ext.Coverage(tuple(box) if box else None, start, end, bool(open_start), bool(open_end))  # type: ignore[arg-type]

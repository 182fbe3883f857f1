"""Reading a product from disk: the STAC tree below one root document.

Only what the product's documents point to is read: child and item links that resolve to
local files inside the product's folder, and local asset files (outside the folder only
when the caller allows it). Remote links are left for the planner to keep as they are.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlparse

import orjson

from ..errors import InvalidStac
from ..forking import worker_count
from . import itemreader
from .document import StacType, parse_json, read_json_bytes, version_tuple
from .validation import Checks, check_structure

if TYPE_CHECKING:
    from .itemreader import ItemReaders, ReadItem

MAX_DEPTH = 256
# Read-only empty containers shared by every item node (typed as what they stand in for: a
# mutation would raise, not leak into other nodes).
_NO_CHILDREN = cast("list[SourceNode]", ())
_NO_REMOTE_CHILDREN = cast("list[dict[str, Any]]", ())
_NO_LINKS = cast("dict[int, dict[str, Any]]", MappingProxyType({}))
_NO_DOC = cast("dict[str, Any]", MappingProxyType({}))
STRUCTURAL_RELS = frozenset({"self", "root", "parent", "child", "item", "collection"})


class SourceNode:
    """One document of a product tree.

    A lazily loaded item keeps only a stub (see :func:`stub`), packed as compact JSON: a bulk
    ingest holds a node per item, and a few hundred bytes each is what keeps that flat."""

    __slots__ = (
        "_doc",
        "_file",
        "_id",
        "_packed",
        "bucket_key",
        "bucket_level",
        "children",
        "digest",
        "kind",
        "link_of_child",
        "remote_children",
        "stamp",
    )

    def __init__(
        self,
        *,
        kind: StacType,
        doc: dict[str, Any],
        file: Path | str,
        children: list[SourceNode] | None = None,
        link_of_child: dict[int, dict[str, Any]] | None = None,
        remote_children: list[dict[str, Any]] | None = None,
        bucket_key: str | None = None,
        bucket_level: int = 0,
        digest: bytes | None = None,
    ) -> None:
        self.kind = kind
        self._doc: dict[str, Any] | None = doc
        self._packed: bytes | None = None
        self._id: str | None = None
        self._file = os.fspath(file)  # absolute, resolved; a string is a fraction of a Path's size
        # An item has no children: it shares the read-only empty containers (three empty ones
        # per item would be a sixth of what a bulk ingest holds per item before planning).
        leaf = kind is StacType.ITEM
        if children is None:
            children = _NO_CHILDREN if leaf else []
        if link_of_child is None:
            link_of_child = _NO_LINKS if leaf else {}
        if remote_children is None:
            remote_children = _NO_REMOTE_CHILDREN if leaf else []
        self.children: list[SourceNode] = children
        self.link_of_child: dict[int, dict[str, Any]] = link_of_child
        """Fields of the original child/item link of each child other than rel and href, by ``id()``
        of the child node (read-only: equal ones are shared)."""
        self.remote_children: list[dict[str, Any]] = remote_children
        self.bucket_key = bucket_key
        """Set on partition catalogs made by the layout (see :mod:`.partition`), not read from disk."""
        self.bucket_level = bucket_level
        self.digest = digest
        """sha256 of the file's bytes as read and validated (None for nodes not read from disk); raw
        bytes, not hex: a bulk ingest holds one per item."""
        self.stamp: bytes | None = None
        """The :func:`asset_stamp` of a lazy item, when its loader was asked for it; taken (and
        dropped) by whoever hashes the product."""

    @property
    def doc(self) -> dict[str, Any]:
        """The document; for a lazy item, a fresh copy of its stub at every call."""
        if self._doc is not None:
            return self._doc
        assert self._packed, "the stub of a planned item was dropped"
        return parse_json(self._packed, file=self._file)

    @property
    def file(self) -> Path:
        return Path(self._file)

    @property
    def filename(self) -> str:
        """:attr:`file` as a string (no Path made)."""
        return self._file

    @property
    def lazy(self) -> bool:
        """True when ``doc`` is a stub: the full document is read again when it is written."""
        return self._packed is not None

    def make_lazy(self, item: dict[str, Any], *, stamp: bool = False) -> None:
        """Keep only the stub of ``item``, packed (and its :func:`asset_stamp` if ``stamp``)."""
        if stamp:
            self.stamp = asset_stamp(item, self._file)
        self._id = str(item["id"])
        self._packed = pack(stub(item))
        self._doc = None

    @classmethod
    def lazy_item(cls, file: str, read: ReadItem) -> SourceNode:
        """A lazy item node from what a worker process read (see :mod:`.itemreader`)."""
        node = cls(kind=StacType.ITEM, doc=_NO_DOC, file=file, digest=read.digest)
        node._id, node._packed, node._doc = read.id, read.stub, None
        node.stamp = read.stamp
        return node

    def forget(self) -> None:
        """Drop a lazy item's stub once it is planned (a large product holds every node until
        its whole plan is made); its id stays."""
        if self._packed is not None:
            self._packed = b""

    @property
    def id(self) -> str:
        return self._id if self._id is not None else str(self.doc["id"])

    def walk(self) -> list[SourceNode]:
        out, stack = [], [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out


def pack(doc: dict[str, Any]) -> bytes:
    """Compact JSON to hold in memory; :func:`~.document.parse_json` reads it back exactly."""
    try:
        return bytes(memoryview(orjson.dumps(doc)))  # orjson's buffer is kilobytes too large: trim it
    except orjson.JSONEncodeError:  # integers beyond 64 bits: parse_json reads them back exact
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


_PLAIN_HREF = re.compile(r"(?:\./)?((?:[^/:\\%#?]+/)*[^/:\\%#?]+)")
"""A relative href with no scheme, query, fragment, escape, backslash or empty segment."""
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
"""A URL scheme of two characters or more (one is a Windows drive), as ``urlsplit`` reads it."""


def local_path(href: str, base: str) -> str | None:
    """:func:`local_target` as a string; the common relative href is joined without parsing."""
    plain = _PLAIN_HREF.fullmatch(href)
    if plain is not None and "/./" not in f"/{plain[1]}/":
        folder = os.path.dirname(base)
        return f"{folder if folder != '/' else ''}/{plain[1]}"
    scheme = _SCHEME.match(href)
    if scheme is not None and scheme[1].lower() != "file":
        return None  # remote (http, s3, ...): a bulk product has thousands of such hrefs
    target = local_target(href, Path(base))
    return None if target is None else str(target)


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

    CACHED = 1024
    """Folders remembered: products with an item per folder have as many folders as items."""

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
        return Resolved(os.path.join(self._real_folder(folder), base), st is not None, st)

    def known(self, folder: str) -> None:
        """Take ``folder`` as resolved already: it is that of a file whose symbolic links were
        resolved (a loaded document's), so its files need no lookup of it."""
        if folder not in self._folders:
            self._remember(folder, folder)

    def _real_folder(self, folder: str) -> str:
        """``realpath(folder)``, from its parent's when that is known: one lstat, not one per
        component (a product with a folder per item has as many folders as items)."""
        real = self._folders.get(folder)
        if real is not None:
            return real
        parent, name = os.path.split(folder)
        real = None
        if parent and parent != folder and name not in ("", ".", ".."):
            try:
                st = os.lstat(folder)
            except (OSError, ValueError):
                st = None
            if st is not None and not stat.S_ISLNK(st.st_mode):
                real = os.path.join(self._real_folder(parent), name)
        if real is None:
            real = os.path.realpath(folder)
        self._remember(folder, real)
        return real

    def _remember(self, folder: str, real: str) -> None:
        if len(self._folders) >= self.CACHED:
            self._folders.clear()
        self._folders[folder] = real


def inside(path: Path | str, folder: Path, *, resolved: bool = False) -> bool:
    """Is ``path`` (symbolic links resolved, unless already) ``folder`` or below it?"""
    real = os.fspath(path) if resolved else os.path.realpath(path)
    base = os.fspath(folder)
    return real == base or real.startswith(base.rstrip("/") + "/")


Validate = Callable[[dict[str, Any], StacType, Path], None]


def asset_stamp(doc: dict[str, Any], file: str) -> bytes:
    """The local asset files of ``doc`` as they are now: ``path:size:mtime_ns`` (or
    ``path:missing``) each, in the document's order; a product's version hash covers them.

    Taken where the item is read (on the item readers for a bulk product) rather than by a
    second pass over the tree: that pass stats every asset of the product on one core.
    """
    parts = []
    for asset in (doc.get("assets") or {}).values():
        href = asset.get("href") if isinstance(asset, dict) else None
        target = local_path(href, file) if isinstance(href, str) else None
        if target is not None:
            try:
                st = os.stat(target)
                parts.append(f"{target}:{st.st_size}:{st.st_mtime_ns}")
            except (OSError, ValueError):
                parts.append(f"{target}:missing")
    return "".join(parts).encode()


def stub(item: dict[str, Any]) -> dict[str, Any]:
    """The fields of an item read before it is planned: its partition keys, the hrefs of its
    assets (the product's version hash covers their files) and a title for its link. Planning
    reads the whole item again; keeping only this keeps memory flat in the number of items."""
    props = item.get("properties") or {}
    keep = ("datetime", "start_datetime", "end_datetime")
    out: dict[str, Any] = {"id": item["id"], "properties": {k: props[k] for k in keep if k in props}}
    if "title" in item:
        out["title"] = item["title"]
    if isinstance(item.get("assets"), dict):
        out["assets"] = {key: {"href": asset["href"]} for key, asset in item["assets"].items()}
    return out


def load_tree(
    root_file: Path,
    *,
    validate: Validate | None = None,
    lazy_items: bool = False,
    stamp_assets: bool = False,
) -> SourceNode:
    """Load and check the tree below ``root_file``; raise InvalidStac on any fault.

    ``validate`` is called on every document while it is in memory; with ``lazy_items`` only
    a stub of each item is kept (the planner re-reads items when writing them, and checks
    that the bytes did not change since), with its :func:`asset_stamp` if ``stamp_assets``.
    Then a document with many item links has its items
    read by worker processes (see :mod:`.itemreader`) when ``validate`` is None or a
    :class:`~.validation.Checks`: the result, and any error, are the same.
    """
    root_file = Path(os.path.realpath(root_file))
    folder = root_file.parent
    seen: set[str] = set()
    paths = RealPaths()
    resolved_ahead: dict[str, Resolved] = {}  # by the workers' feeder, for the loop below
    shared_fields: dict[bytes, dict[str, Any]] = {}
    readers: list[ItemReaders] = []  # started at the first document with many items

    def load(file: Path, depth: int, st: os.stat_result | None = None) -> SourceNode:
        seen.add(str(file))
        raw = read_json_bytes(file, st)
        doc = parse_json(raw, file=str(file))
        kind = check_structure(doc, file=str(file))
        if kind is StacType.ITEM_COLLECTION:
            raise InvalidStac("an ItemCollection cannot be a child", file=str(file))
        if validate is not None:
            validate(doc, kind, file)
        node = SourceNode(kind=kind, doc=doc, file=file, digest=hashlib.sha256(raw).digest())
        filename = node.filename
        if kind is StacType.ITEM:
            check_old_commons(doc, file)
            if lazy_items:
                node.make_lazy(doc, stamp=stamp_assets)
            return node
        # The child and item links move into the nodes: the document keeps the others (in the
        # same place), and a large collection's links are freed one by one as they load.
        links = doc.get("links")
        kept: list[dict[str, Any]] = []
        doc["links"] = kept
        links = list(reversed(links)) if isinstance(links, list) else []
        ahead = read_ahead(links, filename)
        while links:
            link = links.pop()
            if link.get("rel") not in ("child", "item"):
                kept.append(link)
                continue
            href = local_path(link["href"], filename)
            if href is None:
                node.remote_children.append(link)
                continue
            resolved = resolved_ahead.pop(href, None) or paths.resolve(href)
            target = resolved.real
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
            child = read_by_worker(ahead, target) if ahead is not None else None
            if child is not None:
                seen.add(target)
            else:
                child = load(Path(target), depth + 1, resolved.stat)
            node.link_of_child[id(child)] = link_fields(link)
            node.children.append(child)
        return node

    def read_ahead(
        links: list[dict[str, Any]], filename: str
    ) -> Iterator[tuple[str, ReadItem | None]] | None:
        """Workers reading the local item files that ``links`` (reversed) point to, in order."""
        if not lazy_items or not (validate is None or isinstance(validate, Checks)):
            return None
        if sum(link.get("rel") == "item" for link in links) < itemreader.MIN_ITEMS:
            return None
        if not readers:
            workers = worker_count()
            if not workers:
                return None
            validator = validate.validator if isinstance(validate, Checks) else None
            readers.append(itemreader.ItemReaders(workers, validator, stamp_assets=stamp_assets))

        queue = collections.deque(reversed(links))  # the loop pops ``links`` meanwhile

        def files() -> Iterator[str]:
            """The candidates, resolved once for both (an item asked twice is read twice: the
            loop takes the first answer)."""
            while queue:
                link = queue.popleft()
                href = link.get("href") if link.get("rel") == "item" else None
                local = local_path(href, filename) if isinstance(href, str) and href else None
                if local is None:
                    continue
                resolved_ahead[local] = resolved = paths.resolve(local)
                if resolved.is_file and resolved.real not in seen:
                    yield resolved.real

        return readers[0].read(files())

    def read_by_worker(ahead: Iterator[tuple[str, ReadItem | None]], real: str) -> SourceNode | None:
        """The item at ``real`` as a worker read it; None when the main process must read it."""
        for file, read in ahead:
            if file == real:
                if read is None:
                    return None
                if isinstance(validate, Checks):
                    validate.passed(read.unchecked)
                return SourceNode.lazy_item(file, read)
        return None

    def link_fields(link: dict[str, Any]) -> dict[str, Any]:
        """A child link's fields other than rel and href; equal ones shared (read-only)."""
        fields = {k: v for k, v in link.items() if k not in ("rel", "href")}
        try:
            key = orjson.dumps(fields)
        except orjson.JSONEncodeError:
            return fields
        return shared_fields.setdefault(key, fields)

    try:
        return load(root_file, 0)
    finally:
        # ``load`` calls itself through its closure: a reference cycle that would keep ``seen``
        # (a path per document) alive until the next garbage collection.
        seen.clear()
        resolved_ahead.clear()
        load = None  # type: ignore[assignment]
        for pool in readers:
            pool.close()


_COMMONS_DROPPED = version_tuple("0.9.0")


def check_old_commons(doc: dict[str, Any], file: Path | str) -> None:
    """STAC 0.8 items inherit properties from their collection: it must be at hand."""
    if version_tuple(str(doc.get("stac_version"))) >= _COMMONS_DROPPED:
        return
    file = Path(file)
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

"""Planning transactions: from a read-only snapshot and a request, the ChangeSet that applies it.

Pure STAC logic: documents are read through the snapshot and nothing is written; the
backend applies the resulting ChangeSet atomically. Every method touches only the objects
on the path from the change to the root (and, for extents that may shrink, the siblings
of the removed object): the cost of a plan does not grow with the size of the catalog.
"""

from __future__ import annotations

import array
import copy
import functools
import hashlib
import os
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import orjson

from ..backends.base import STATE_DIR, ChangeSet, FolderWriter, FolderWriting, Snapshot
from ..errors import Conflict, InvalidStac, NotFound, UsageError
from ..forking import OrderedForkMap, worker_count
from . import extent as ext
from .document import StacType, dumps, identify, parse_json, read_json_bytes
from .filemap import FileMap
from .index import INDEX_DIR, Entry, IndexView, shard_path
from .layout import ROOT_PATH, asset_name, child_path, folder_of, relative_href, segment
from .partition import (
    Layout,
    coverage_from_json,
    coverage_to_json,
    is_partition,
    partition_document,
    partition_path,
    partition_tree,
)
from .partition import keys as partition_keys
from .source import STRUCTURAL_RELS, RealPaths, SourceNode, local_path
from .spool import Spool, Spooled

JSON = "application/json"
SUMMARY_IDS = 1000
"""At most this many ids per list in a transaction summary (the counts are always complete)."""


@dataclass
class Outcome:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def resolve_href(from_path: str, href: str) -> str | None:
    """The stored path a relative href of a stored document points to, if it stays inside."""
    if "://" in href or href.startswith("/"):
        return None
    joined = posixpath.normpath(posixpath.join(folder_of(from_path), href.split("#")[0]))
    return None if joined.startswith("../") or joined == ".." else joined


@dataclass(eq=False)
class _Product:
    """What writing one product's tree needs at every node."""

    tree: SourceNode
    paths: dict[int, str]
    folder: Path
    version: str | None
    processor: str | None
    renders: _Renders | None = None

    @functools.cached_property
    def by_file(self) -> dict[str, str]:
        """Stored path of each document of the product by its source file: made only when a
        document links to a local file other than its children (most products never do)."""
        return {node.filename: self.paths[id(node)] for node in self.tree.walk()}


class Planner:
    def __init__(
        self,
        snapshot: Snapshot,
        *,
        allow_outside_assets: bool = False,
        asset_roots: set[Path] | None = None,
        layout: Layout | None = None,
        folder_writing: FolderWriting | None = None,
    ) -> None:
        """``folder_writing``: the transaction's, for the workers that render a large product's
        items to store each new item folder whole (see :class:`_Renders`)."""
        self.snapshot = snapshot
        self.folder_writing = folder_writing
        self.folders: dict[str, bytes] = {}  # new folders stored ahead -> their id (ChangeSet.folders)
        self.asset_roots = {Path(os.path.realpath(p)) for p in asset_roots or ()}
        self.index = IndexView(snapshot)
        self.allow_outside_assets = allow_outside_assets
        self._docs: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self.blobs = FileMap()  # stored path -> source file (symbolic links resolved)
        self.deletes: set[str] = set()
        self.outcome = Outcome()
        self.objects_written = 0
        self.layout = layout or Layout()
        self._tree_parents: dict[str, str] = {}
        self._spool = Spool()
        self._spooled: dict[str, Spooled] = {}  # path -> stored form of a lazily loaded item
        self._old_objects: dict[str, str] = {}  # path -> id of stored objects this plan removes
        self._new_objects: dict[str, str] = {}  # path -> id of objects this plan writes
        self._paths = RealPaths()
        self._fresh_folders: set[str] = set()  # folders found empty in the snapshot
        self._fresh_prefixes: tuple[str, ...] = ()  # see _in_fresh_folder
        self._readable: dict[Path, tuple[str, ...]] = {}  # product folder -> see _may_read
        self._hrefs_out: dict[tuple[str, str], str] = {}  # see _href_out

    def close(self) -> None:
        """Release the plan's temporary file (the ChangeSet's spooled documents go with it)."""
        self._spool.close()

    # -- stored documents ----------------------------------------------------------------

    def doc(self, path: str) -> dict[str, Any]:
        if path not in self._docs:
            self._docs[path] = parse_json(self.snapshot.read(path), file=path)
        return self._docs[path]

    def _touch(self, path: str) -> None:
        self._dirty.add(path)

    def parent_path(self, path: str) -> str | None:
        if path == ROOT_PATH:
            return None
        for link in self.doc(path).get("links", []):
            if link.get("rel") == "parent":
                return resolve_href(path, link.get("href", ""))
        return None

    def children_paths(self, path: str) -> list[str]:
        out = []
        for link in self.doc(path).get("links", []):
            if link.get("rel") in ("child", "item"):
                target = resolve_href(path, link.get("href", ""))
                if target is not None and (target in self._docs or self.snapshot.exists(target)):
                    out.append(target)
        return out

    # -- selecting stored objects --------------------------------------------------------

    def select(self, selector: str) -> Entry:
        """An object by id, or by stored path (``a/b/collection.json`` or its folder)."""
        entries = self.index.lookup(selector)
        if len(entries) == 1:
            return entries[0]
        if len(entries) > 1:
            where = ", ".join(sorted(e.path for e in entries))
            raise Conflict(f"id {selector!r} is ambiguous ({where}): name the object by its path")
        path = selector.strip("/")
        if not path or posixpath.normpath(path) != path or path.split("/")[0] in ("..", "."):
            raise NotFound(f"no object with id or path {selector!r} in the repository")
        name = posixpath.basename(path)
        for candidate in (path, f"{path}/catalog.json", f"{path}/collection.json", f"{path}/{name}.json"):
            if candidate.endswith(".json") and self.snapshot.exists(candidate):
                try:
                    ident = self.doc(candidate).get("id")
                except InvalidStac:
                    continue
                entry = self.index.by_path(str(ident), candidate) if isinstance(ident, str) else None
                if entry is not None:
                    return entry
        raise NotFound(f"no object with id or path {selector!r} in the repository")

    # -- ingest ---------------------------------------------------------------------------

    def ingest(
        self,
        tree: SourceNode,
        *,
        parent: str | None = None,
        version: str | None = None,
        processor: str | None = None,
    ) -> None:
        """Place ``tree`` under ``parent`` (default: where its id already is, else the root)."""
        parent_entry, old = self.existing(tree.id, parent)
        if parent_entry.type == StacType.ITEM:
            raise UsageError(f"parent {parent!r} is an item; items cannot have children")
        if old is not None:
            assert old.parent is not None
            placement = old.parent
        elif tree.kind is StacType.ITEM:
            placement = self._place_item(parent_entry.path, tree.doc)
        else:
            placement = parent_entry.path
        new_path = child_path(placement, tree.id, tree.kind)
        clash = self._sibling_clash(new_path, old)
        if clash:
            raise Conflict(clash)
        if old is None:  # its folder holds nothing yet: no need to compare what is written there
            self._fresh_folders.add(folder_of(new_path))
        removed_cov = None
        if old is not None:
            removed_cov = self._coverage(old.path, old.type)
            self._remove_subtree(old, keep_link=True)
        partition_tree(tree, self.layout)
        paths = self._assign_paths(tree, new_path)
        added_cov = self._write_tree(tree, paths, placement, version, processor)
        self._link_into_parent(placement, new_path, tree, old.path if old else None)
        self._refresh_extents(placement, removed_cov, added_cov)
        (self.outcome.updated if old else self.outcome.added).append(tree.id)

    def existing(self, ident: str, parent: str | None) -> tuple[Entry, Entry | None]:
        """Where a product with this id goes: (the parent asked for or found, the stored object
        it replaces). Without ``parent`` an id stored once is updated in place."""
        entries = [e for e in self.index.lookup(ident) if e.parent is not None]
        if parent is not None:
            parent_entry = self.select(parent)
            entries = [e for e in entries if self.effective_parent(e.parent) == parent_entry.path]
            if len(entries) > 1:
                where = ", ".join(sorted(e.path for e in entries))
                raise Conflict(f"id {ident!r} is ambiguous under {parent!r} ({where})")
            return parent_entry, entries[0] if entries else None
        if len(entries) > 1:
            where = ", ".join(sorted(e.path for e in entries))
            raise Conflict(
                f"id {ident!r} is ambiguous, it exists at several places ({where}): pass --parent to choose"
            )
        if entries:
            return self._entry_at(self.effective_parent(entries[0].parent)), entries[0]
        root = self.index.find(str(self.doc(ROOT_PATH)["id"]), None)
        if root is None:
            raise NotFound("the root catalog is missing from the id index")
        return root, None

    def effective_parent(self, path: str | None) -> str:
        """The parent a user sees: partition catalogs made by the layout are looked through."""
        assert path is not None
        while is_partition(path):
            up = self._tree_parents.get(path) or self.parent_path(path)
            if up is None:
                break
            path = up
        return path

    def _place_item(self, parent_path: str, item: dict[str, Any]) -> str:
        """The catalog a new item goes into: ``parent_path`` or, when full, a partition of it."""
        if not self.layout.enabled:
            return parent_path
        path = parent_path
        for key in partition_keys(item, self.layout.scheme):
            links = self.doc(path).get("links", [])
            if sum(1 for link in links if link.get("rel") == "item") < self.layout.max_items:
                return path
            bucket = partition_path(path, key)
            if bucket not in self._docs and not self.snapshot.exists(bucket):
                self._new_partition(path, bucket, key)
            path = bucket
        return path

    def _new_partition(self, parent_path: str, path: str, key: str) -> None:
        parent = self.doc(parent_path)
        doc = partition_document(parent, key, self.layout.scheme)
        doc["links"] = [
            {"rel": "root", "href": relative_href(path, ROOT_PATH), "type": JSON},
            {"rel": "parent", "href": relative_href(path, parent_path), "type": JSON},
        ]
        self._docs[path] = doc
        self._touch(path)
        parent.setdefault("links", []).append(
            {"rel": "child", "href": relative_href(parent_path, path), "type": JSON, "title": doc["title"]}
        )
        self._touch(parent_path)
        self.index.put(Entry(doc["id"], path, StacType.CATALOG.value, parent_path))
        self._new_objects[path] = doc["id"]

    def _entry_at(self, path: str) -> Entry:
        ident = self.doc(path).get("id")
        entry = self.index.by_path(str(ident), path)
        if entry is None:
            raise NotFound(f"object at {path!r} is missing from the id index")
        return entry

    def _sibling_clash(self, new_path: str, old: Entry | None) -> str | None:
        """A different object already uses the folder ``new_path`` needs (checked in O(1))."""
        folder = folder_of(new_path)
        if old is not None and folder_of(old.path) == folder:
            return None
        occupant = next(iter(self.snapshot.walk(folder)), None)
        if occupant is None:
            return None
        return f"folder {folder!r} is already used by {occupant!r}"

    def _assign_paths(self, tree: SourceNode, root_path: str) -> dict[int, str]:
        paths: dict[int, str] = {id(tree): _checked_length(root_path, tree)}
        stack = [tree]
        while stack:
            node = stack.pop()
            taken: set[str] = set()
            for child in node.children:
                duplicate = 0
                if child.bucket_key is not None:
                    paths[id(child)] = partition_path(paths[id(node)], child.bucket_key)
                    self._tree_parents[paths[id(child)]] = paths[id(node)]
                    stack.append(child)
                    continue
                path = child_path(paths[id(node)], child.id, child.kind)
                while folder_of(path).lower() in taken:
                    duplicate += 1
                    path = child_path(paths[id(node)], child.id, child.kind, duplicate=duplicate)
                if duplicate:
                    self.outcome.warnings.append(
                        f"{node.file}: several children have the id {child.id!r}; stored apart as {path!r}"
                    )
                taken.add(folder_of(path).lower())
                paths[id(child)] = _checked_length(path, child)
                stack.append(child)
        return paths

    def _write_tree(
        self,
        tree: SourceNode,
        paths: dict[int, str],
        placement: str,
        version: str | None,
        processor: str | None,
    ) -> ext.Coverage:
        """Write the product's documents and assets; return what the product covers."""
        product = _Product(
            tree=tree,
            paths=paths,
            folder=tree.file.parent,
            version=version,
            processor=processor,
        )
        collections = self._ancestor_collections(placement)
        product.renders = _Renders.start(self, product, placement, collections)
        try:
            cov = self._emit(product, tree, placement, collections)
            if product.renders is not None:
                warned = len(self.outcome.warnings)
                for node, path, parent_path, effective, inner in product.renders.finish(self.folder_writing):
                    # stored ahead by a worker that died before its pack was done: here, then
                    del self.folders[folder_of(path)]
                    stored, _ = self._render_item(product, node, path, parent_path, effective, inner)
                    self._spooled[path] = self._spool.add(stored)
                del self.outcome.warnings[warned:]  # the worker's answers gave them, in order
            return cov
        finally:
            if product.renders is not None:
                product.renders.close()
                product.renders = None

    def _emit(
        self, product: _Product, node: SourceNode, parent_path: str, collections: dict[str, str]
    ) -> ext.Coverage:
        """Write ``node`` and its descendants (a method, not a closure calling itself: that
        would be a reference cycle keeping the whole tree alive until the next GC pass)."""
        path = product.paths[id(node)]
        if node.lazy:
            return self._emit_lazy_item(product, node, path, parent_path, collections)
        source = node.doc
        doc = copy.copy(source)
        inner = {**collections, node.id: path} if node.kind is StacType.COLLECTION else collections
        children_cov = ext.union(self._emit(product, c, path, inner) for c in node.children)
        files = _LocalFiles(path, node)
        doc["links"] = self._links_for(node, source, path, parent_path, product, files)
        if node.kind is StacType.ITEM:
            self._set_collection(doc, path, self.effective_parent(parent_path), collections)
        if doc.get("assets"):
            doc["assets"] = self._copy_assets(node, source, files, product.folder)
        cov = ext.item_coverage(doc) if node.kind is StacType.ITEM else children_cov
        if node.kind is StacType.COLLECTION:
            doc["extent"] = copy.deepcopy(doc["extent"])
            cov = ext.union([ext.collection_coverage(doc), cov])
            ext.apply_coverage(doc, cov)
        self._docs[path] = doc
        self._touch(path)
        self._record(product, node, path, parent_path, cov)
        return cov

    def _emit_lazy_item(
        self, product: _Product, node: SourceNode, path: str, parent_path: str, collections: dict[str, str]
    ) -> ext.Coverage:
        """A lazily loaded item: its stored form is rendered (here, or ahead by a worker) and
        spooled, and its stub dropped."""
        answer = product.renders.take(node) if product.renders is not None else None
        if answer is None:
            effective = self.effective_parent(parent_path)
            stored, cov = self._render_item(product, node, path, parent_path, effective, collections)
            self._spooled[path] = self._spool.add(stored)
        else:
            stored, cov, blobs, warnings, folder = answer
            self.outcome.warnings.extend(warnings)
            if folder is not None:  # stored ahead, whole, by the worker
                self.folders[folder_of(path)] = folder
            else:
                for stored_path, source in blobs:
                    self.blobs[stored_path] = source
                self._spooled[path] = self._spool.add(stored)
        if node is not product.tree:
            node.forget()
        self._record(product, node, path, parent_path, cov)
        return cov

    def _render_item(
        self,
        product: _Product,
        node: SourceNode,
        path: str,
        parent_path: str,
        effective_parent: str,
        collections: dict[str, str],
    ) -> tuple[bytes, ext.Coverage]:
        """The stored form of a lazy item, read again in full; its local files go to
        ``self.blobs``, its warnings to ``self.outcome``. Runs on workers too (see
        :class:`_Renders`): it must not read the snapshot."""
        source = _reread(node)
        doc = copy.copy(source)
        files = _LocalFiles(path, node)
        doc["links"] = self._links_for(node, source, path, parent_path, product, files)
        self._set_collection(doc, path, effective_parent, collections)
        if doc.get("assets"):
            doc["assets"] = self._copy_assets(node, source, files, product.folder)
        return dumps(doc), ext.item_coverage(doc)

    def _record(
        self, product: _Product, node: SourceNode, path: str, parent_path: str, cov: ext.Coverage
    ) -> None:
        top = node is product.tree
        self.index.put(
            Entry(
                node.id,
                path,
                node.kind.value,
                parent_path,
                product.version if top else None,
                product.processor if top else None,
                coverage_to_json(cov) if node.bucket_key is not None else None,
            )
        )
        self.objects_written += 1
        self._new_objects[path] = node.id

    def _ancestor_collections(self, placement: str) -> dict[str, str]:
        """Stored collections above ``placement`` (itself included): id -> path, nearest last."""
        chain: list[tuple[str, str]] = []
        path: str | None = placement
        while path is not None:
            doc = self.doc(path)
            if identify(doc, file=path) is StacType.COLLECTION:
                chain.append((str(doc["id"]), path))
            path = self.parent_path(path)
        return dict(reversed(chain))

    def _links_for(
        self,
        node: SourceNode,
        source: dict[str, Any],
        path: str,
        parent_path: str,
        product: _Product,
        files: _LocalFiles,
    ) -> list[dict[str, Any]]:
        """Structural links computed from the stored layout; other links kept, with local
        targets rewritten: to the stored document when part of the product, else copied in
        like an asset. A local target outside the product's folders is dropped (never read)."""
        links: list[dict[str, Any]] = [
            {"rel": "root", "href": self._href_out(path, ROOT_PATH), "type": JSON},
            {"rel": "parent", "href": self._href_out(path, parent_path), "type": JSON},
        ]
        for child in node.children:
            original = node.link_of_child.get(id(child), {})
            link = {k: v for k, v in original.items() if k not in ("href", "rel")}
            link = {
                "rel": "item" if child.kind is StacType.ITEM else "child",
                "href": relative_href(path, product.paths[id(child)]),
                **link,
            }
            link.setdefault("type", JSON)
            links.append(link)
        links.extend(node.remote_children)
        for link in source.get("links", []):
            if link.get("rel") in STRUCTURAL_RELS:
                continue
            target = local_path(link["href"], node.filename)
            if target is not None:
                resolved = self._paths.resolve(target)
                real = resolved.real
                stored = product.by_file.get(real)
                if stored is not None:
                    link = {**link, "href": relative_href(path, stored)}
                elif not resolved.present:
                    self.outcome.warnings.append(
                        f"{node.id}: {link.get('rel')} link {link['href']!r}: no such local file; "
                        "kept as given"
                    )
                    link = {**link, "href": link["href"].replace("\\", "/")}
                elif resolved.is_file and self._may_read(real, product.folder):
                    link = {**link, "href": files.add(self, link["href"], real)}
                else:
                    self.outcome.warnings.append(
                        f"{node.id}: {link.get('rel')} link {link['href']!r} points outside the product's "
                        "folders; link dropped"
                    )
                    continue
            links.append(link)
        return links

    def _href_out(self, path: str, target: str) -> str:
        """``relative_href(path, target)`` for a ``target`` outside ``path``'s folder (its root,
        parent or collection): the same from every folder of one parent folder, so computed once
        per parent folder and target (a bulk product's items ask for three each)."""
        folder = folder_of(path)
        if not folder or target.startswith(f"{folder}/"):
            return relative_href(path, target)
        key = (folder_of(folder), target)
        href = self._hrefs_out.get(key)
        if href is None:
            href = self._hrefs_out[key] = relative_href(path, target)
        return href

    def _may_read(self, target: str, product_folder: Path) -> bool:
        """May this local file be read? ``target`` must have its symbolic links resolved."""
        if self.allow_outside_assets:
            return True
        prefixes = self._readable.get(product_folder)
        if prefixes is None:  # asked for every asset of a product: the folders' prefixes once
            roots = {os.fspath(r).rstrip("/") for r in self.asset_roots | {product_folder}}
            prefixes = self._readable[product_folder] = tuple(f"{r}/" for r in roots)
        return target.startswith(prefixes) or f"{target}/".startswith(prefixes)

    def _set_collection(
        self, doc: dict[str, Any], path: str, parent_path: str, collections: dict[str, str]
    ) -> None:
        """An item's collection field and link name a collection it is stored under, or are absent.

        That is its parent when the parent is a collection, else the ancestor collection the
        item declares; an item stored outside its declared collection loses the field.
        """
        declared = doc.get("collection")
        target = None
        if parent_path in collections.values():
            target = next(cid for cid, cpath in collections.items() if cpath == parent_path)
        elif isinstance(declared, str) and declared in collections:
            target = declared
        if target is None:
            if "collection" in doc:
                self.outcome.warnings.append(
                    f"{doc['id']}: not stored under its collection {declared!r}; collection field removed"
                )
                del doc["collection"]
            return
        doc["collection"] = target
        href = self._href_out(path, collections[target])
        doc["links"].insert(2, {"rel": "collection", "href": href, "type": JSON})

    def _copy_assets(
        self, node: SourceNode, source: dict[str, Any], files: _LocalFiles, product_folder: Path
    ) -> dict[str, Any]:
        assets: dict[str, Any] = {}
        self._paths.known(os.path.dirname(node.filename))
        for key, asset in source["assets"].items():
            href = asset.get("href")
            target = local_path(href, node.filename) if isinstance(href, str) else None
            if target is None:  # remote, or an asset definition without a file
                assets[key] = asset
                continue
            resolved = self._paths.resolve(target)
            if not resolved.present:
                where = f"{node.file}: assets.{key}"
                self.outcome.warnings.append(f"{where}: local file {href!r} is missing; href kept as given")
                assets[key] = {**asset, "href": href.replace("\\", "/")}
                continue
            real = resolved.real
            if not self._may_read(real, product_folder):
                folders = ", ".join(sorted(str(r) for r in self.asset_roots | {product_folder}))
                raise InvalidStac(
                    f"asset href {href!r} points outside the product's folders ({folders}); "
                    "allow it with: stac-repository config assets.allow_outside true",
                    file=str(node.file),
                    field=f"assets.{key}.href",
                )
            if resolved.stat is None:
                raise InvalidStac(
                    f"asset {href!r} is a broken symbolic link",
                    file=str(node.file),
                    field=f"assets.{key}.href",
                )
            if not resolved.is_file:
                raise InvalidStac(
                    f"asset {href!r} is not a regular file", file=str(node.file), field=f"assets.{key}.href"
                )
            assets[key] = {**asset, "href": files.add(self, href, real)}
        return assets

    def _link_into_parent(self, parent_path: str, path: str, tree: SourceNode, old_path: str | None) -> None:
        doc = self.doc(parent_path)
        links = doc.setdefault("links", [])
        rel = "item" if tree.kind is StacType.ITEM else "child"
        href = relative_href(parent_path, path)
        new = {"rel": rel, "href": href, "type": JSON}
        title = tree.doc.get("title")
        if isinstance(title, str):
            new["title"] = title
        for n, link in enumerate(links):
            if link.get("rel") in ("child", "item") and resolve_href(parent_path, link.get("href", "")) in (
                old_path,
                path,
            ):
                links[n] = {**link, **new}
                break
        else:
            links.append(new)
        self._touch(parent_path)

    # -- prune ----------------------------------------------------------------------------

    def prune(self, selector: str) -> Entry:
        entry = self.select(selector)
        if entry.parent is None:
            raise UsageError("the root catalog cannot be pruned")
        removed_cov = self._coverage(entry.path, entry.type)
        self._remove_subtree(entry, keep_link=False)
        self._refresh_extents(entry.parent, removed_cov, None)
        self.outcome.removed.append(entry.id)
        return entry

    def subtree(self, entry: Entry) -> list[tuple[str, str]]:
        """(id, path) of the object and every stored descendant."""
        out, stack = [], [entry.path]
        while stack:
            path = stack.pop()
            doc = self.doc(path)
            out.append((str(doc.get("id")), path))
            if identify(doc, file=path) is not StacType.ITEM:
                stack.extend(
                    p for p in self.children_paths(path) if p.startswith(folder_of(entry.path) + "/")
                )
        return out

    def _remove_subtree(self, entry: Entry, *, keep_link: bool) -> None:
        for ident, path in self.subtree(entry):
            self.index.remove(ident, path)
            self._old_objects[path] = ident
        folder = folder_of(entry.path)
        self.deletes.add(folder)
        for path in list(self._docs):
            if path.startswith(folder + "/"):
                del self._docs[path]
                self._dirty.discard(path)
        if not keep_link and entry.parent is not None:
            parent = self.doc(entry.parent)
            parent["links"] = [
                link
                for link in parent.get("links", [])
                if not (
                    link.get("rel") in ("child", "item")
                    and resolve_href(entry.parent, link.get("href", "")) == entry.path
                )
            ]
            self._touch(entry.parent)

    # -- extents --------------------------------------------------------------------------

    def _coverage(self, path: str, kind: str) -> ext.Coverage:
        """What a stored object covers; for a catalog, what its descendants cover."""
        doc = self.doc(path)
        if kind == StacType.ITEM:
            return ext.item_coverage(doc)
        if kind == StacType.COLLECTION:
            return ext.collection_coverage(doc)
        if is_partition(path):
            return coverage_from_json(self._entry_at(path).coverage)
        return self._recompute(path)

    def _recompute(self, path: str) -> ext.Coverage:
        return ext.union(
            self._coverage(p, identify(self.doc(p), file=p).value) for p in self.children_paths(path)
        )

    def _refresh_extents(
        self, path: str | None, removed: ext.Coverage | None, added: ext.Coverage | None
    ) -> None:
        """Propagate a change of coverage up through collections and partition catalogs.

        Stops at the first ancestor whose extent does not change. An extent is recomputed
        from the direct children only when the removed coverage touched its boundary.
        """
        while path is not None:
            doc = self.doc(path)
            collection = identify(doc, file=path) is StacType.COLLECTION
            partition = not collection and is_partition(path)
            if collection or partition:
                if collection:
                    current = ext.collection_coverage(doc)
                else:
                    current = coverage_from_json(self._entry_at(path).coverage)
                if removed is not None and ext.touches_boundary(current, removed):
                    new = self._recompute(path)
                    if collection and new.bbox is None and new.start is None and new.end is None:
                        new = current  # nothing left below: keep the declared extent
                    if added is not None:
                        new = ext.union([new, added])
                else:
                    new = ext.union([current, added]) if added is not None else current
                if collection:
                    if not ext.apply_coverage(doc, new):
                        return
                    self._touch(path)
                else:
                    if new == current:
                        return
                    self.index.put(replace(self._entry_at(path), coverage=coverage_to_json(new)))
                removed, added = current, new
            path = self.parent_path(path)

    # -- result ---------------------------------------------------------------------------

    def changeset(self, message: str, summary: dict[str, Any] | None = None) -> ChangeSet:
        writes: dict[str, bytes | Callable[[], bytes]] = {
            path: dumps(self._docs[path]) for path in sorted(self._dirty)
        }
        for path, content in self.index.changes():
            if content is None:
                self.deletes.add(path)
            else:
                writes[path] = content
        writes.update(self._spooled)
        deletes = set()
        for path in self.deletes:
            if path in writes or path in self.blobs:
                continue
            survivors = [p for p in [*writes, *self.blobs] if p.startswith(path + "/")]
            if not survivors:
                deletes.add(path)
                continue
            keep = set(survivors)
            deletes.update(p for p in self.snapshot.walk(path) if p not in keep)
        # Unchanged documents and assets need no write. Index shards are taken as changed: they
        # are rendered when written, one at a time, and rewriting one as it was is harmless.
        for path in list(writes):
            if self._in_fresh_folder(path) or path.startswith(f"{INDEX_DIR}/"):
                continue
            try:
                stored = self.snapshot.read(path)
            except NotFound:
                continue
            data = writes[path]
            if stored == (data() if callable(data) else data):  # an update: render once to compare
                del writes[path]

        # Filtered in place: a bulk ingest copies hundreds of thousands of files.
        for path in [path for path, src in self.blobs.items() if self._same_file(path, src)]:
            del self.blobs[path]
        blobs = self.blobs
        full = {**(summary or {}), **self._object_summary(writes, blobs)}
        return ChangeSet(
            message=message, writes=writes, blobs=blobs, deletes=deletes, summary=full, folders=self.folders
        )

    def _in_fresh_folder(self, path: str) -> bool:
        if len(self._fresh_prefixes) != len(self._fresh_folders):  # asked for every path written
            self._fresh_prefixes = tuple(f"{folder}/" for folder in self._fresh_folders)
        return path.startswith(self._fresh_prefixes)

    def _same_file(self, path: str, source: str) -> bool:
        """Is the stored file at ``path`` byte-identical to ``source``? (streamed comparison)"""
        if self._in_fresh_folder(path) or not self.snapshot.exists(path):
            return False
        try:
            with self.snapshot.open(path) as stored, open(source, "rb") as new:
                while True:
                    a, b = stored.read(1 << 20), new.read(1 << 20)
                    if a != b:
                        return False
                    if not a:
                        return True
        except OSError:
            return False

    def _object_summary(self, writes: dict[str, Any], blobs: Mapping[str, str]) -> dict[str, Any]:
        """STAC ids added, updated (content changed) and removed, with counts; lists capped."""

        def top_down(objects: dict[str, str]) -> dict[str, str]:
            return dict(sorted(objects.items(), key=lambda kv: (kv[0].count("/"), kv[0])))

        old, new = top_down(self._old_objects), top_down(self._new_objects)
        added = [i for p, i in new.items() if p not in old]
        removed = [i for p, i in old.items() if p not in new]
        updated = []
        if old:  # else nothing is updated: a bulk ingest need not list every folder it writes
            changed_folders = {folder_of(p) for p in [*writes, *blobs]}
            updated = [
                i for p, i in new.items() if p in old and (p in writes or folder_of(p) in changed_folders)
            ]
        cap = SUMMARY_IDS
        return {
            "added": added[:cap],
            "updated": updated[:cap],
            "removed": removed[:cap],
            "counts": {"added": len(added), "updated": len(updated), "removed": len(removed)},
        }


MAX_PATH = 1024
"""Longest stored path (bytes): deeper or longer would break file systems (4,096 on Linux, less
elsewhere, once the repository's own location is added) and most tools."""


def _checked_length(path: str, node: SourceNode) -> str:
    if len(path.encode()) > MAX_PATH:
        raise InvalidStac(
            f"{node.id!r} would be stored at a path of {len(path.encode())} bytes (limit {MAX_PATH}): "
            "ids or nesting too long",
            file=str(node.file),
        )
    return path


class _LocalFiles:
    """Local files one stored object brings along (assets, linked files): each copied once into
    the object's folder under a unique name."""

    def __init__(self, path: str, node: SourceNode) -> None:
        self.folder = folder_of(path)
        self.taken = {posixpath.basename(path).lower()}
        self.taken.update(segment(c.id).lower() for c in node.children)
        self.by_source: dict[str, str] = {}

    def add(self, planner: Planner, href: str, real: str) -> str:
        """``real``: the source with its symbolic links resolved."""
        if real not in self.by_source:
            name = asset_name(href, self.taken)
            self.by_source[real] = name
            planner.blobs[f"{self.folder}/{name}" if self.folder else name] = real
        return f"./{self.by_source[real]}"


_RenderTask = tuple[SourceNode, str, str, str, dict[str, str]]
"""A lazy item, its stored path, its parent's, the parent a user sees, the collections above."""
_Rendered = tuple[bytes, ext.Coverage, list[tuple[str, str]], list[str], bytes | None]
"""A lazy item's stored form, coverage, local files (stored path, source) and warnings; or,
when a worker stored the item's new folder whole, the folder's id (and no form or files)."""


class _Renders:
    """The stored forms of a large product's lazy items, rendered ahead by forked workers.

    Rendering an item (reading it again, its links, its assets' files, its coverage) is most
    of planning a bulk product and does not depend on the other items. The workers fork once
    the product's paths are assigned, so they plan from the same state as the parent; the
    parent takes their answers in the order it reaches the items, and renders itself any
    item a worker had no answer for (so errors are exactly those of the sequential plan).

    With the transaction's :class:`~..backends.base.FolderWriting`, a worker also stores the
    folder of each item that goes into a new folder (its document and local files) and
    answers the folder's id instead: the commit has no per-item work left. Those folders are
    the transaction's once the worker's report is adopted (:meth:`finish`); a worker that died
    before reporting leaves its items to be done again.
    """

    MIN_ITEMS = 1000
    """Below this many lazy items, forking costs more than it saves."""

    def __init__(self, tasks: list[_RenderTask], renders: OrderedForkMap) -> None:
        self._tasks = tasks
        self._map = renders
        self._next = 0
        self._stored_ahead: dict[int, array.array[int]] = {}  # worker -> its tasks stored whole

    @classmethod
    def start(
        cls, planner: Planner, product: _Product, placement: str, collections: dict[str, str]
    ) -> _Renders | None:
        workers = worker_count()
        tasks = _lazy_items(planner, product, placement, collections) if workers else []
        if len(tasks) < cls.MIN_ITEMS:
            return None
        writing = planner.folder_writing
        writer: list[FolderWriter] = []  # the worker's own, once it is forked

        def render(n: int) -> tuple[bytes, tuple[Any, ...], list[tuple[str, str]], list[str], bytes | None]:
            # In a worker: what the parent's plan would add is recorded and sent back.
            node, path, parent_path, effective, inner = tasks[n]
            planner.blobs = recorded = cast(FileMap, {})
            planner.outcome.warnings = warnings = []
            stored, cov = planner._render_item(product, node, path, parent_path, effective, inner)
            coverage = (cov.bbox, cov.start, cov.end)
            if writing is not None and planner._in_fresh_folder(path):
                files = _folder_files(path, stored, recorded)
                if files is not None:
                    if not writer:
                        writer.append(writing.start())
                    return b"", coverage, [], warnings, writer[0].folder(files)
            return stored, coverage, list(recorded.items()), warnings, None

        def finish() -> object:
            return writer[0].finish() if writer else []

        renders = OrderedForkMap(render, len(tasks), workers, finish=finish if writing is not None else None)
        return cls(tasks, renders)

    def take(self, node: SourceNode) -> _Rendered | None:
        """What a worker rendered for ``node`` (the next lazy item), or None: render it here."""
        n, self._next = self._next, self._next + 1
        if n >= len(self._tasks) or self._tasks[n][0] is not node:  # not the order planned
            return None
        answer = self._map.get(n)
        if answer is None:
            return None
        stored, (bbox, start, end), blobs, warnings, folder = cast(tuple[Any, ...], answer)
        if folder is not None:
            self._stored_ahead.setdefault(self._map.worker_of(n), array.array("I")).append(n)
        return stored, ext.Coverage(bbox, start, end), blobs, warnings, folder  # marshal keeps tuples

    def finish(self, writing: FolderWriting | None) -> list[_RenderTask]:
        """Once every item was taken: adopt what each worker stored ahead into the transaction;
        the tasks of the workers that did not report (their folders must be done again)."""
        if writing is None or not self._stored_ahead:
            return []
        lost: list[_RenderTask] = []
        for worker, report in enumerate(self._map.reports()):
            if report is None:
                lost += [self._tasks[n] for n in self._stored_ahead.get(worker, ())]
            else:
                writing.adopt(report)
        return lost

    def close(self) -> None:
        self._map.close()


def _folder_files(
    path: str, stored: bytes, recorded: Mapping[str, str]
) -> list[tuple[str, bytes | str]] | None:
    """The files of a lazy item's folder, by name: its document and the local files it
    brings along; None when any of them lies outside that folder."""
    folder = folder_of(path)
    prefix = f"{folder}/" if folder else ""
    files: list[tuple[str, bytes | str]] = [(path[len(prefix) :], stored)]
    for stored_path, source in recorded.items():
        name = stored_path[len(prefix) :]
        if not stored_path.startswith(prefix) or "/" in name:
            return None
        files.append((name, source))
    return files


def _lazy_items(
    planner: Planner, product: _Product, placement: str, collections: dict[str, str]
) -> list[_RenderTask]:
    """The product's lazy items in the order :meth:`Planner._emit` reaches them, with what
    rendering each needs from its ancestors."""
    tasks: list[_RenderTask] = []
    effective: dict[str, str] = {}
    stack: list[tuple[SourceNode, str, dict[str, str]]] = [(product.tree, placement, collections)]
    while stack:
        node, parent_path, above = stack.pop()
        path = product.paths[id(node)]
        if node.lazy:
            if parent_path not in effective:
                effective[parent_path] = planner.effective_parent(parent_path)
            tasks.append((node, path, parent_path, effective[parent_path], above))
            continue
        inner = {**above, node.id: path} if node.kind is StacType.COLLECTION else above
        stack.extend((child, path, inner) for child in reversed(node.children))
    return tasks


def _reread(node: SourceNode) -> dict[str, Any]:
    """The full document of a lazily loaded item, refused if its file changed since it was
    validated."""
    file = node.filename
    raw = read_json_bytes(file)
    if hashlib.sha256(raw).digest() != node.digest:
        raise InvalidStac("the file changed while it was being ingested; ingest it again", file=file)
    doc: dict[str, Any] = parse_json(raw, file=file)
    return doc


def root_catalog(
    ident: str,
    title: str | None,
    description: str,
    license: str | None = None,  # noqa: A002
) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "Catalog", "stac_version": "1.1.0", "id": ident}
    if title:
        doc["title"] = title
    doc["description"] = description
    doc["links"] = [{"rel": "root", "href": "./catalog.json", "type": JSON}]
    if license:
        doc["license"] = license
    return doc


def init_changeset(root_doc: dict[str, Any], config: dict[str, Any]) -> ChangeSet:
    """The first state of a repository: the root catalog, its index entry and the configuration."""
    index_writes: dict[str, bytes] = {}
    entry = Entry(str(root_doc["id"]), ROOT_PATH, StacType.CATALOG.value, None)
    index_writes[shard_path(entry.id)] = orjson.dumps(
        {entry.id: [entry.to_json()]}, option=orjson.OPT_SORT_KEYS
    )
    return ChangeSet(
        message=f"init: root catalog {root_doc['id']!r}",
        writes={
            ROOT_PATH: dumps(root_doc),
            f"{STATE_DIR}/config.json": dumps(config),
            **index_writes,
        },
        summary={"added": [root_doc["id"]]},
    )

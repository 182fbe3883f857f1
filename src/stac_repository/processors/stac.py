"""The built-in ``stac`` processor: products that are already STAC.

A product is a root document (catalog, collection or item file not referenced by another
document of the same folder tree), or one feature of an ItemCollection / ndjson file,
named ``<file>#<n>``. Its id and version come from the document: the ``version`` field
(top level, or ``properties.version`` for items) when present, else a hash of the
product's documents and asset files, so unchanged products are skipped and changed ones
updated.
"""

from __future__ import annotations

import hashlib
import operator
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..errors import InvalidStac
from ..stac.document import MAX_DOCUMENT_BYTES, StacType, canonical, dumps, identify, read_json_file
from ..stac.source import RealPaths, SourceNode, Validate, load_tree, local_path, local_target

__version__ = "1.0.0"

_SUFFIXES = (".json", ".geojson")
_CATALOG_NAMES = ("catalog.json", "collection.json")


def _split(product: str) -> tuple[Path, int | None]:
    """A product is a file path, or ``<file>#<n>`` for the n-th feature of a collection file."""
    path = Path(product)
    if not os.path.lexists(path) and "#" in product:
        file, _, n = product.rpartition("#")
        if n.isdigit():
            return Path(file), int(n)
    return path, None


def _features(file: Path) -> Iterator[tuple[int, Any]]:
    if file.suffix == ".ndjson":
        if file.stat().st_size > 16 * MAX_DOCUMENT_BYTES:
            raise InvalidStac("ndjson file too large", file=str(file))
        with open(file, "rb") as fh:
            for n, line in enumerate(fh):
                if line.strip():
                    try:
                        yield n, orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        raise InvalidStac(f"line {n + 1} is not valid JSON ({exc})", file=str(file)) from None
        return
    doc = read_json_file(file)
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise InvalidStac("an ItemCollection needs a features list", file=str(file), field="features")
    yield from enumerate(features)


def _kind(file: Path) -> StacType | None:
    """The STAC type of a file, or None when it is not a STAC document at all."""
    if file.suffix == ".ndjson":
        return StacType.ITEM_COLLECTION
    try:
        doc = read_json_file(file)
        return identify(doc, file=str(file))
    except InvalidStac:
        return None


def discover(source: str) -> Iterator[str]:
    path = Path(source).absolute()
    if path.is_dir():
        yield from _discover_folder(path)
        return
    if not os.path.lexists(path):
        raise InvalidStac("no such file or folder", file=source)
    kind = _kind(path)
    if kind is StacType.ITEM_COLLECTION:
        for n, _ in _features(path):
            yield f"{path}#{n}"
    else:
        # Even a file that is no STAC is yielded: ingest then says why it is refused.
        yield str(path)


def _discover_folder(folder: Path) -> Iterator[str]:
    """The roots under ``folder``: the documents no other document links to as a child or item.

    A file linked as an item is not opened: it belongs to the catalog that links it, and a
    folder of a collection and its 10,000 items is then one parse, not 10,001. Catalogs are
    read first (shallower files first, ``catalog.json`` and ``collection.json`` first in their
    folder) so that their items are known before they are reached.
    """
    files, feature_files = _candidates(folder)
    known = {real for *_, real in files}
    paths = RealPaths()
    documents: dict[str, dict[str, Any]] = {}
    linked: set[str] = set()
    items: set[str] = set()
    for _, _, order, real in sorted(files):
        if real in items or real in documents:
            continue
        try:
            doc = read_json_file(real)
            kind = identify(doc, file=real)
        except InvalidStac:
            continue
        if kind is StacType.ITEM_COLLECTION:
            feature_files.append((order, real))
            continue
        documents[real] = doc
        for link in doc.get("links") or []:
            if not isinstance(link, dict) or (rel := link.get("rel")) not in ("child", "item"):
                continue
            href = link.get("href")
            target = local_path(href, real) if isinstance(href, str) else None
            if target is not None:
                # A target spelled as a candidate's real path is that file (no ".." to resolve).
                plain = os.path.normpath(target) if ".." not in target else None
                real_target = plain if plain in known else paths.resolve(target).real
                (items if rel == "item" else linked).add(real_target)
    roots = [f for f in documents if f not in linked and f not in items]
    # Catalogs and collections first, so standalone items can find their collection.
    roots.sort(key=lambda f: (documents[f].get("type") == "Feature", f))
    yield from roots
    for _, file in sorted(feature_files):
        for n, _ in _features(Path(file)):
            yield f"{file}#{n}"


_name = operator.attrgetter("name")


def _candidates(folder: Path) -> tuple[list[tuple[int, int, int, str]], list[tuple[int, str]]]:
    """The JSON files under ``folder`` as (depth, 0 for a catalog's usual name, walk order,
    real path), and its ndjson files as (walk order, real path); hidden folders skipped.

    A folder is reached through real folders only (links to folders are not followed), so a
    file's real path is its folder's plus its name, unless the file itself is a link.
    """
    files: list[tuple[int, int, int, str]] = []
    feature_files: list[tuple[int, str]] = []
    stack = [(os.path.realpath(folder), 0)]
    order = 0
    while stack:
        here, depth = stack.pop()
        try:
            with os.scandir(here) as listing:
                entries = sorted(listing, key=_name)
        except OSError:
            continue  # unreadable: as os.walk, skipped
        folders = []
        for entry in entries:
            name = entry.name
            if entry.is_dir(follow_symlinks=False):
                if not name.startswith("."):
                    folders.append(entry.path)
                continue
            suffix = os.path.splitext(name)[1]
            if suffix != ".ndjson" and suffix not in _SUFFIXES:
                continue
            try:
                if not entry.is_file():
                    continue
            except OSError:
                continue
            real = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
            order += 1
            if suffix == ".ndjson":
                feature_files.append((order, real))
            else:
                files.append((depth, name not in _CATALOG_NAMES, order, real))
        stack.extend((path, depth + 1) for path in reversed(folders))
    return files, feature_files


def _load(product: str) -> tuple[Path, Any]:
    file, n = _split(product)
    if n is None:
        return file, read_json_file(file)
    for m, feature in _features(file):
        if m == n:
            return file, feature
    raise InvalidStac(f"no feature #{n}", file=str(file))


def id(product: str) -> str:  # noqa: A001 - the protocol's name
    _, doc = _load(product)
    ident = doc.get("id") if isinstance(doc, dict) else None
    if not isinstance(ident, str) or not ident:
        raise InvalidStac("missing or empty id", file=product, field="id")
    return ident


def version(product: str) -> str:
    return version_and_tree(product)[0]


def version_and_tree(product: str, validate: Validate | None = None) -> tuple[str, SourceNode | None]:
    """:func:`version`, plus the product's tree when computing it meant loading the tree.

    Not part of the processor protocol: ingest uses it when a processor has it, so that a
    product is read and checked once instead of twice. ``validate`` is called on every document
    (see :func:`~stac_repository.stac.source.load_tree`) and must not raise: an exception would
    only change how the version is computed.
    """
    file, doc = _load(product)
    if isinstance(doc, dict):
        declared = doc.get("version")
        props = doc.get("properties")
        if declared is None and isinstance(props, dict):
            declared = props.get("version")
        if isinstance(declared, str | int | float) and not isinstance(declared, bool):
            return str(declared), None
    if _split(product)[1] is not None:
        return "sha256:" + _document_hash(doc), None
    del doc  # a large collection's links would otherwise be held twice while the tree loads
    try:
        tree = load_tree(file, validate=validate, lazy_items=True, stamp_assets=True)
    except InvalidStac:  # reported by the validate step, with the file and field
        return "sha256:" + _document_hash(_load(product)[1]), None
    return "sha256:" + _tree_hash(tree), tree


def _document_hash(doc: Any) -> str:
    return hashlib.sha256(canonical(doc)).hexdigest()[:32]


def _tree_hash(tree: SourceNode) -> str:
    """A hash of every document of the tree and the size and time of its local asset files."""
    digest = hashlib.sha256()
    top = os.path.dirname(tree.filename)
    below = len(top) + 1 if top != "/" else 1
    for node in tree.walk():
        file = node.filename  # a real path: below ``top`` it is ``top`` and a relative rest
        inner = file.startswith(top) and file[below - 1 : below] == "/" and ".." not in file
        digest.update((file[below:] if inner else os.path.relpath(file, top)).encode())
        digest.update(b"None" if node.digest is None else node.digest.hex().encode())
        if node.stamp is not None:  # taken when the item was read
            digest.update(node.stamp)
            node.stamp = None
            continue
        for asset in (node.doc.get("assets") or {}).values():
            href = asset.get("href") if isinstance(asset, dict) else None
            target = local_path(href, node.filename) if isinstance(href, str) else None
            if target is not None:
                try:
                    st = os.stat(target)
                    digest.update(f"{target}:{st.st_size}:{st.st_mtime_ns}".encode())
                except OSError:
                    digest.update(f"{target}:missing".encode())
    return digest.hexdigest()[:32]


def process(product: str) -> str:
    file, n = _split(product)
    if n is None:
        return str(Path(file).absolute())
    _, feature = _load(product)
    out = Path(tempfile.mkdtemp(prefix="stac-repository-feature-"))
    if isinstance(feature, dict):
        feature = dict(feature)
        assets = feature.get("assets")
        if isinstance(assets, dict):
            # Local hrefs were relative to the collection file: make them absolute.
            feature["assets"] = {
                key: (
                    {**a, "href": str(local_target(a["href"], file))}
                    if isinstance(a, dict)
                    and isinstance(a.get("href"), str)
                    and local_target(a["href"], file)
                    else a
                )
                for key, a in assets.items()
            }
        feature["links"] = [
            link
            for link in feature.get("links") or []
            if not (isinstance(link, dict) and link.get("rel") in ("self", "root", "parent"))
        ]
    target = out / "item.json"
    target.write_bytes(dumps(feature))
    return str(target)

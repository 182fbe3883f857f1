"""Validation of STAC documents before anything is written.

Two layers:

* structural checks, for every STAC version: what this tool relies on (ids, types, links,
  item geometry/bbox/datetime, asset hrefs, collection extents), each failure naming the
  field;
* JSON schemas, where available offline: the STAC 1.1.0 core schemas bundled with
  pystac-core, plus any schema found in a local schema folder (``schema_dir``), laid out
  as ``<schema_dir>/<host>/<path>`` (``schemas.stacspec.org/v1.0.0/item-spec/json-schema/item.json``).

Schemas are compiled once per validator (see :class:`SchemaValidator`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import marshal
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

from ..errors import InvalidStac
from .document import V1, StacType, identify, version_tuple

BANDS_AS_OBJECTS = version_tuple("1.0.0-beta.1")

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_CORE = {
    StacType.ITEM: "item-spec/json-schema/item.json",
    StacType.CATALOG: "catalog-spec/json-schema/catalog.json",
    StacType.COLLECTION: "collection-spec/json-schema/collection.json",
}
_GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
}


def is_rfc3339(value: Any) -> bool:
    if not isinstance(value, str) or not _RFC3339.match(value):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def _fail(file: str | None, field: str, reason: str) -> None:
    raise InvalidStac(reason, file=file, field=field)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_structure(doc: Any, *, file: str | None = None) -> StacType:
    """Raise InvalidStac naming the field when ``doc`` is not a usable STAC object."""
    kind = identify(doc, file=file)
    if kind is StacType.ITEM_COLLECTION:
        return kind
    ident = doc.get("id")
    if not isinstance(ident, str) or not ident.strip():
        _fail(file, "id", "missing or empty id" if not ident else "id is not a string")
    if "\x00" in ident:
        _fail(file, "id", "id contains a NUL character")
    version = doc.get("stac_version")
    if not isinstance(version, str) or not version:
        _fail(file, "stac_version", "missing stac_version")
    extensions = doc.get("stac_extensions", [])
    if not isinstance(extensions, list) or not all(isinstance(e, str) for e in extensions):
        _fail(file, "stac_extensions", "stac_extensions must be a list of schema URLs")
    links = doc.get("links", [] if kind is StacType.ITEM else None)
    if not isinstance(links, list):
        _fail(file, "links", "links must be a list")
    for n, link in enumerate(links):
        if not isinstance(link, dict):
            _fail(file, f"links[{n}]", "a link must be an object")
        if not isinstance(link.get("href"), str) or not link["href"]:
            _fail(file, f"links[{n}].href", "a link needs a non-empty href")
        if "\x00" in link["href"]:
            _fail(file, f"links[{n}].href", "href contains a NUL character")
        if not isinstance(link.get("rel"), str) or not link["rel"]:
            _fail(file, f"links[{n}].rel", "a link needs a rel")
    assets = doc.get("assets")
    if assets is not None:
        if not isinstance(assets, dict):
            _fail(file, "assets", "assets must be an object")
        for key, asset in assets.items():
            if not isinstance(asset, dict):
                _fail(file, f"assets.{key}", "an asset must be an object")
            if (not isinstance(asset.get("href"), str) or not asset["href"]) and not _asset_definitions(doc):
                _fail(file, f"assets.{key}.href", "an asset needs a non-empty href")
            if "\x00" in str(asset.get("href", "")):
                _fail(file, f"assets.{key}.href", "href contains a NUL character")
    if kind is StacType.ITEM:
        if not isinstance(assets, dict):
            _fail(file, "assets", "an item needs an assets object (it may be empty)")
        _check_item(doc, file, version_tuple(version))
    else:
        if not isinstance(doc.get("description"), str):
            _fail(file, "description", "a catalog or collection needs a description")
        if kind is StacType.COLLECTION:
            _check_collection(doc, file)
    return kind


def _check_item(doc: Mapping[str, Any], file: str | None, version: tuple[int, ...]) -> None:
    if "geometry" not in doc:
        _fail(file, "geometry", "an item needs a geometry (null is allowed)")
    geometry = doc["geometry"]
    if geometry is not None:
        if not isinstance(geometry, dict) or geometry.get("type") not in _GEOMETRY_TYPES:
            _fail(file, "geometry", "not a GeoJSON geometry")
        bbox = doc.get("bbox")
        if not isinstance(bbox, list) or len(bbox) not in (4, 6) or not all(map(_is_number, bbox)):
            _fail(file, "bbox", "an item with a geometry needs a bbox of 4 or 6 numbers")
    elif "bbox" in doc and version >= V1:
        _fail(file, "bbox", "an item without geometry must not have a bbox")
    props = doc.get("properties")
    if not isinstance(props, dict):
        _fail(file, "properties", "an item needs a properties object")
    when = props.get("datetime")
    if when is None:
        start, end = props.get("start_datetime"), props.get("end_datetime")
        if start is None or end is None:
            _fail(
                file,
                "properties.datetime",
                "datetime is null and start_datetime/end_datetime are not both set",
            )
    for key in ("datetime", "start_datetime", "end_datetime", "created", "updated"):
        value = props.get(key)
        if value is not None and not is_rfc3339(value):
            _fail(file, f"properties.{key}", f"{value!r} is not an RFC 3339 date-time with a time zone")
    _check_eo_band_indices(doc, file, version)
    if version >= V1:
        has_link = any(link.get("rel") == "collection" for link in doc.get("links", []))
        if "collection" in doc and not has_link:
            _fail(file, "collection", "collection is set but there is no link with rel=collection")
        if has_link and not isinstance(doc.get("collection"), str):
            _fail(file, "collection", "there is a link with rel=collection but no collection id")


def _asset_definitions(doc: Mapping[str, Any]) -> bool:
    """A pre-1.0 collection using the "asset" extension: its assets are definitions, no files."""
    exts = doc.get("stac_extensions")
    exts = exts if isinstance(exts, list) else []
    return "extent" in doc and "asset" in exts and version_tuple(str(doc.get("stac_version"))) < V1


def _check_eo_band_indices(doc: Mapping[str, Any], file: str | None, version: tuple[int, ...]) -> None:
    """Before 1.0.0-beta.1 an asset's eo:bands were indices into the item's eo:bands (which a
    0.x item may inherit from its collection, "commons"); since, they are band objects."""
    bands = doc["properties"].get("eo:bands")
    for key, asset in (doc.get("assets") or {}).items():
        indices = asset.get("eo:bands")
        if not isinstance(indices, list) or not indices or not all(isinstance(i, int) for i in indices):
            continue
        if version >= BANDS_AS_OBJECTS:
            _fail(
                file,
                f"assets.{key}.eo:bands",
                "lists band indices; since STAC 1.0.0-beta.1 bands are objects",
            )
        if bands is None:
            continue  # inherited from the collection (commons): checked with it, not here
        if not isinstance(bands, list) or any(not 0 <= i < len(bands) for i in indices):
            _fail(file, f"assets.{key}.eo:bands", "refers to a band that properties.eo:bands does not list")
        if any(not isinstance(bands[i], dict) for i in indices):
            _fail(file, "properties.eo:bands", "a band must be an object")


def _check_collection(doc: Mapping[str, Any], file: str | None) -> None:
    if not isinstance(doc.get("license"), str):
        _fail(file, "license", "a collection needs a license")
    extent = doc.get("extent")
    if not isinstance(extent, dict):
        _fail(file, "extent", "a collection needs an extent")
    spatial, temporal = extent.get("spatial"), extent.get("temporal")
    boxes = spatial.get("bbox") if isinstance(spatial, dict) else None
    if not isinstance(boxes, list) or not boxes:
        _fail(file, "extent.spatial.bbox", "needs a list of bounding boxes")
    for n, box in enumerate(boxes):
        if not isinstance(box, list) or len(box) not in (4, 6) or not all(map(_is_number, box)):
            _fail(file, f"extent.spatial.bbox[{n}]", "a bounding box is 4 or 6 numbers")
    intervals = temporal.get("interval") if isinstance(temporal, dict) else None
    if not isinstance(intervals, list) or not intervals:
        _fail(file, "extent.temporal.interval", "needs a list of intervals")
    for n, interval in enumerate(intervals):
        if not isinstance(interval, list) or len(interval) != 2:
            _fail(file, f"extent.temporal.interval[{n}]", "an interval is [start, end]")
        for value in interval:
            if value is not None and not is_rfc3339(value):
                _fail(
                    file,
                    f"extent.temporal.interval[{n}]",
                    f"{value!r} is not an RFC 3339 date-time with a time zone",
                )


_CACHE_FORMAT = 4  # bump when the way validators are generated changes


def schema_cache_dir() -> Path:
    base = os.environ.get("STAC_REPOSITORY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stac-repository"
    )
    return Path(base) / "schemas"


def _store(path: Path, data: bytes) -> None:
    """Best effort: an unwritable cache only costs the compile time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        pass


def _pystac_schemas() -> Path:
    """pystac's offline copies of the core and GeoJSON schemas, found without importing
    ``pystac.validation``: that imports all of pystac and python-jsonschema when installed,
    most of a single-item ingest's start-up."""
    spec = importlib.util.find_spec("pystac")
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise ModuleNotFoundError("pystac is not installed: its bundled STAC schemas are needed")
    return Path(next(iter(locations))) / "validation" / "jsonschemas"


class SchemaValidator:
    """Validates documents against their own version's core schema and cached extension schemas.

    The verdict is jsonschema-rs's (the engine of rustac's validation, about fifteen times
    faster than generated Python code on an item), with JSON Schema's own rules, as pystac's
    validation applies them: ``format`` is an annotation, and ``1.0`` is an integer. A document
    that fails is explained by fastjsonschema's detailed validator, whose messages name the
    field and the rule; where that one finds nothing to say, by jsonschema-rs's first error.
    Validators are compiled lazily, once per schema.
    """

    def __init__(self, schema_dir: Path | None = None) -> None:
        self.schema_dir = schema_dir
        self._compiled: dict[str, Any] = {}
        self._explainers: dict[str, Callable[[Any], Any] | None] = {}
        self._bundled = _pystac_schemas()

    def _load(self, url: str) -> Any:
        parsed = urlparse(url)
        if self.schema_dir is not None:
            local = self.schema_dir / parsed.netloc / parsed.path.lstrip("/")
            if local.is_file():
                return orjson.loads(local.read_bytes())
        name = parsed.path.rsplit("/", 1)[-1]
        if parsed.netloc == "schemas.stacspec.org" and parsed.path.startswith("/v1.1.0/"):
            return orjson.loads((self._bundled / "stac-spec" / "v1.1.0" / name).read_bytes())
        if parsed.netloc == "geojson.org":
            return orjson.loads((self._bundled / "geojson" / name).read_bytes())
        if parsed.netloc == "json-schema.org":
            return {}
        raise FileNotFoundError(url)

    def _validator(self, url: str) -> Any:
        """The compiled schema at ``url``; None when it (or a schema it refers to) is not
        available offline."""
        if url not in self._compiled:
            import jsonschema_rs

            try:
                schema = self._load(url)
                compiled = jsonschema_rs.validator_for(schema, retriever=self._load, validate_formats=False)
            except (OSError, ValueError, jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError):
                compiled = None
            self._compiled[url] = compiled
        return self._compiled[url]

    def validate(self, doc: Mapping[str, Any], kind: StacType, *, file: str | None = None) -> list[str]:
        """Raise InvalidStac on a schema failure; return the schemas that could not be checked."""
        version = doc.get("stac_version")
        urls = [f"https://schemas.stacspec.org/v{version}/{_CORE[kind]}"]
        extensions = doc.get("stac_extensions")
        for ext in extensions if isinstance(extensions, list) else []:  # else the core schema says why
            if isinstance(ext, str) and ext.startswith(("http://", "https://")):
                urls.append(ext)
        unchecked = []
        for url in urls:
            validator = self._validator(url)
            if validator is None:
                unchecked.append(url)
            elif not validator.is_valid(doc):
                self._explain(url, validator, doc, file)
        return unchecked

    def validate_stored_form(
        self, doc: Mapping[str, Any], kind: StacType, *, file: str | None = None
    ) -> list[str]:
        """:meth:`validate` the document as it will be stored (see :func:`with_posix_hrefs`)."""
        return self.validate(with_posix_hrefs(doc), kind, file=file)

    def _explain(self, url: str, validator: Any, doc: Mapping[str, Any], file: str | None) -> None:
        """Raise the error that names the field, for a document the schema at ``url`` refused."""
        import fastjsonschema

        explainer = self._explainer(url)
        try:
            if explainer is not None:
                explainer(doc, custom_formats=_ANY_FORMAT)
        except fastjsonschema.JsonSchemaValueException as exc:
            where = (exc.name or "data").removeprefix("data").lstrip(".") or "(document)"
            raise InvalidStac(f"{exc.message} (schema {url})", file=file, field=where) from None
        error = max(validator.iter_errors(doc), key=lambda e: len(e.instance_path), default=None)
        if error is None:  # cannot happen: the validator refused the document
            raise InvalidStac(f"does not match the schema {url}", file=file, field="(document)")
        where = ".".join(str(step) for step in error.instance_path) or "(document)"
        message = error.message if len(error.message) <= 200 else f"{error.message[:197]}..."
        raise InvalidStac(f"{message} (schema {url})", file=file, field=where)

    def _explainer(self, url: str) -> Callable[[Any], Any] | None:
        if url not in self._explainers:
            try:
                schema = self._load(url)
                self._explainers[url] = self._compile_explainer(url, schema)
            except Exception:  # explaining is best effort: jsonschema-rs explains then
                self._explainers[url] = None
        return self._explainers[url]

    def _compile_explainer(self, url: str, schema: Any) -> Callable[[Any], Any]:
        """Compile with fastjsonschema, keeping the generated code in a cache folder (~50 ms
        saved for each command that has a document to explain). Every ``format`` is handed to
        a custom check (:data:`_ANY_FORMAT` passes them all), so that the explanation never
        names a rule the verdict ignores. ``use_default=False``: validation must never fill
        defaults into documents."""
        import fastjsonschema

        formats = dict.fromkeys(_known_formats(), _any_value)

        handlers = {"https": self._load, "http": self._load}
        key = hashlib.sha256(
            orjson.dumps(
                [_CACHE_FORMAT, url, fastjsonschema.VERSION, str(self.schema_dir), sorted(formats), schema],
                option=orjson.OPT_SORT_KEYS,
            )
        ).hexdigest()[:32]
        cached = schema_cache_dir() / f"{key}-{sys.implementation.cache_tag}.bin"
        try:
            name, code = marshal.loads(cached.read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            source = fastjsonschema.compile_to_code(
                schema, handlers=handlers, formats=formats, use_default=False
            )
            entry = re.search(r"^def (validate\w*)\(", source, re.MULTILINE)
            if entry is None:
                raise RuntimeError(f"fastjsonschema generated no validator for {url}") from None
            name, code = entry.group(1), compile(source, f"<schema {url}>", "exec")
            _store(cached, marshal.dumps((name, code)))
        namespace: dict[str, Any] = {}
        exec(code, namespace)  # validator code generated by fastjsonschema from the schema
        validate: Callable[[Any], Any] = namespace[name]
        return validate


class Checks:
    """Schema validation of one product's documents: the schemas that could not be checked
    offline, and the first failure, raised at once or, with ``defer``, kept for
    :meth:`raise_first` (a product whose version is being computed is not judged yet).

    Called like a plain validate function; :func:`~.source.load_tree` also hands its
    ``validator`` to worker processes and reports their documents through :meth:`passed`.
    """

    def __init__(self, validator: SchemaValidator, *, defer: bool = False) -> None:
        self.validator = validator
        self.defer = defer
        self.unchecked: dict[str, int] = {}
        self.error: BaseException | None = None

    def __call__(self, doc: dict[str, Any], kind: StacType, file: Path) -> None:
        if self.error is not None:
            return
        try:
            self.passed(self.validator.validate_stored_form(doc, kind, file=str(file)))
        except Exception as exc:
            if not self.defer:
                raise
            self.error = exc

    def passed(self, unchecked: Iterable[str]) -> None:
        """A document validated elsewhere, with the schemas that could not be checked."""
        for url in unchecked:
            self.unchecked[url] = self.unchecked.get(url, 0) + 1

    def raise_first(self) -> None:
        if self.error is not None:
            raise self.error


def _any_value(value: Any) -> bool:
    return True


def _known_formats() -> set[str]:
    """Every format fastjsonschema would check itself."""
    import fastjsonschema

    generators = (
        fastjsonschema.CodeGeneratorDraft04,
        fastjsonschema.CodeGeneratorDraft06,
        fastjsonschema.CodeGeneratorDraft07,
        fastjsonschema.CodeGeneratorDraft2019,
    )
    return {"regex"}.union(*(g.FORMAT_REGEXS for g in generators))


class _AnyFormat(dict[str, Callable[[Any], bool]]):
    """The explainers' format checks: every value passes (``format`` is an annotation)."""

    def __missing__(self, key: str) -> Callable[[Any], bool]:
        return _any_value


_ANY_FORMAT = _AnyFormat()


def with_posix_hrefs(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The document with Windows separators in local link and asset hrefs made POSIX (a copy;
    ``doc`` itself when it has none, as nearly every document).

    Those hrefs are rewritten when stored (or, for missing files, stored this way), so the
    schema is asked about the form that will be written.
    """

    def windows(obj: Any) -> bool:
        href = obj.get("href") if isinstance(obj, dict) else None
        return isinstance(href, str) and "\\" in href and "://" not in href

    def fix(obj: Any) -> Any:
        return {**obj, "href": obj["href"].replace("\\", "/")} if windows(obj) else obj

    links = doc.get("links")
    links = links if isinstance(links, list) else []
    assets = doc.get("assets")
    assets = assets if isinstance(assets, dict) else {}
    if not any(map(windows, links)) and not any(map(windows, assets.values())):
        return doc
    out = dict(doc)
    if links:
        out["links"] = [fix(link) for link in links]
    if assets:
        out["assets"] = {key: fix(asset) for key, asset in assets.items()}
    return out

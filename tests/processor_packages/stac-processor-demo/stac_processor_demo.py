"""A demo stac-repository processor: ``.point`` files to STAC Items.

A product is a small text file of ``key: value`` lines::

    id: station-1
    lon: 5.72
    lat: 45.19
    datetime: 2024-05-01T10:00:00Z

It becomes one Item with a Point geometry; the product file itself is the item's ``source``
asset (a file in the product's folder, which ingest copies) and a GeoJSON of the point, written
next to the item in the processor's temporary output folder, is its ``data`` asset.

Test hooks, so that one ingest can hold products that fail in every way a processor can:

* ``fail: id`` / ``fail: version`` / ``fail: process``: that step raises;
* ``fail: missing-output``: ``process`` returns a path that does not exist;
* ``fail: invalid-stac``: the item's datetime is not a date;
* ``fail: outside-link``: ``process`` writes a collection whose item lives in another folder;
* ``asset: PATH``: one more asset pointing to PATH (relative to the product file).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__version__ = "0.1.0"

SUFFIX = ".point"


def _fields(product: str) -> dict[str, str]:
    """The ``key: value`` lines of a product file."""
    fields = {}
    for line in Path(product).read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.lstrip().startswith("#"):
            fields[key.strip()] = value.strip()
    return fields


def _check(fields: dict[str, str], step: str) -> None:
    if fields.get("fail") == step:
        raise RuntimeError(f"demo processor told to fail at {step}")


def discover(source: str) -> Iterator[str]:
    """The ``.point`` files below the folder ``source`` (sorted), or the file ``source`` itself."""
    path = Path(source)
    if not path.is_dir():
        yield str(path)
        return
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(SUFFIX):
                yield os.path.join(dirpath, name)


def id(product: str) -> str:  # noqa: A001 - the protocol's name
    fields = _fields(product)
    _check(fields, "id")
    return fields.get("id") or Path(product).stem


def version(product: str) -> str:
    """A hash of the product file: any edit makes a new version."""
    fields = _fields(product)
    _check(fields, "version")
    return hashlib.sha256(Path(product).read_bytes()).hexdigest()[:16]


def process(product: str) -> str:
    """Write the item (and its GeoJSON asset) to a new temporary folder; return the item's path."""
    fields = _fields(product)
    _check(fields, "process")
    out = Path(tempfile.mkdtemp(prefix="stac-processor-demo-"))
    ident = id(product)
    point = {"type": "Point", "coordinates": [float(fields["lon"]), float(fields["lat"])]}
    (out / f"{ident}.geojson").write_text(json.dumps(point), encoding="utf-8")
    assets: dict[str, Any] = {
        "data": {"href": f"./{ident}.geojson", "type": "application/geo+json", "roles": ["data"]},
        "source": {"href": str(Path(product).absolute()), "type": "text/plain", "roles": ["metadata"]},
    }
    if "asset" in fields:
        assets["extra"] = {"href": str(Path(product).parent / fields["asset"])}
    item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": ident,
        "geometry": point,
        "bbox": [*point["coordinates"], *point["coordinates"]],
        "properties": {"datetime": fields["datetime"]},
        "links": [],
        "assets": assets,
    }
    mode = fields.get("fail")
    if mode == "invalid-stac":
        item["properties"]["datetime"] = "the day before yesterday"
    elif mode == "missing-output":
        return str(out / "nothing-here.json")
    elif mode == "outside-link":
        elsewhere = Path(tempfile.mkdtemp(prefix="stac-processor-demo-elsewhere-"))
        (elsewhere / "item.json").write_text(json.dumps({**item, "assets": {}}), encoding="utf-8")
        collection = {
            "type": "Collection",
            "stac_version": "1.1.0",
            "id": ident,
            "description": "a collection whose item is outside the processor's output folder",
            "license": "proprietary",
            "extent": {
                "spatial": {"bbox": [item["bbox"]]},
                "temporal": {"interval": [[fields["datetime"], None]]},
            },
            "links": [{"rel": "item", "href": str(elsewhere / "item.json")}],
        }
        target = out / "collection.json"
        target.write_text(json.dumps(collection), encoding="utf-8")
        return str(target)
    target = out / f"{ident}.json"
    target.write_text(json.dumps(item, indent=2), encoding="utf-8")
    return str(target)

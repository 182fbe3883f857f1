"""Generate realistic STAC 1.1.0 items for the benchmarks, streamed to disk.

A generated collection is laid out as a static STAC collection::

    <out>/collection.json              links to every item (written last, streamed)
    <out>/<id>/<id>.json               one item
    <out>/<id>/<id>.tif                a tiny local "raster" (a few hundred bytes)
    <out>/<id>/<id>_metadata.xml|json  a tiny local metadata file
    <out>/<id>/<id>_qa.txt             sometimes: a third local file

Items carry the eo, projection and view extensions, a small polygon footprint somewhere
on Earth (bbox computed from it), a UTC datetime between 2018 and 2024, and 2 to 5 assets
mixing local files and remote hrefs. Everything derives from ``seed`` and the item's
number, so runs are reproducible and no list of items is ever held in memory.

Usage: ``python bench/generate.py OUT N [--seed S] [--raster-bytes B]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

STAC_VERSION = "1.1.0"
EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
]
_START = dt.datetime(2018, 1, 1, tzinfo=dt.UTC)
_SPAN_SECONDS = int((dt.datetime(2025, 1, 1, tzinfo=dt.UTC) - _START).total_seconds())
_PLATFORMS = [
    ("sentinel-2a", "sentinel-2", "msi"),
    ("sentinel-2b", "sentinel-2", "msi"),
    ("landsat-9", "landsat", "oli"),
]
_BANDS = [
    ("B02", "blue", 0.490, 0.098),
    ("B03", "green", 0.560, 0.045),
    ("B04", "red", 0.665, 0.038),
    ("B08", "nir", 0.842, 0.145),
    ("B11", "swir16", 1.610, 0.143),
]
_JSON = "application/json"


def _dumps(doc: Any) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def item_id(collection_id: str, n: int) -> str:
    """The id of item number ``n`` of a generated collection."""
    return f"{collection_id}-item-{n:07d}"


def _footprint(rng: random.Random) -> list[list[float]]:
    """A closed, slightly rotated quadrilateral of 5-100 km, away from the poles and antimeridian."""
    lon0 = rng.uniform(-178.0, 178.0)
    lat0 = math.degrees(math.asin(rng.uniform(-0.93, 0.93)))  # uniform on the sphere, |lat| < ~68
    half_h = rng.uniform(0.025, 0.45)  # degrees of latitude
    half_w = min(half_h / max(math.cos(math.radians(lat0)), 0.2), 1.5)
    angle = math.radians(rng.uniform(-12.0, 12.0))
    ring = []
    for dx, dy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x, y = dx * half_w, dy * half_h
        xr = x * math.cos(angle) - y * math.sin(angle)
        yr = x * math.sin(angle) + y * math.cos(angle)
        ring.append([round(lon0 + xr, 6), round(lat0 + yr, 6)])
    ring.append(list(ring[0]))
    return ring


def _bbox(ring: list[list[float]]) -> list[float]:
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    return [min(xs), min(ys), max(xs), max(ys)]


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _utm_code(lon: float, lat: float) -> str:
    zone = int((lon + 180) // 6) % 60 + 1
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def _tiff_bytes(rng: random.Random) -> bytes:
    """A few hundred bytes that start like a little-endian TIFF."""
    return b"II*\x00\x08\x00\x00\x00" + rng.randbytes(rng.randint(200, 600))


@dataclass
class Extent:
    """Running spatial and temporal extent of the items written so far."""

    bbox: list[float] = field(default_factory=lambda: [180.0, 90.0, -180.0, -90.0])
    start: str | None = None
    end: str | None = None

    def add(self, item: dict[str, Any]) -> None:
        b = item["bbox"]
        self.bbox = [
            min(self.bbox[0], b[0]),
            min(self.bbox[1], b[1]),
            max(self.bbox[2], b[2]),
            max(self.bbox[3], b[3]),
        ]
        when = item["properties"]["datetime"]
        self.start = when if self.start is None or when < self.start else self.start
        self.end = when if self.end is None or when > self.end else self.end


def make_item(
    folder: Path,
    ident: str,
    rng: random.Random,
    *,
    collection_id: str | None = None,
    changed: int = 0,
) -> dict[str, Any]:
    """Write the local asset files of one item into ``folder`` and return its document.

    With ``collection_id`` the item links to ``../collection.json``; without, it is standalone.
    ``changed`` > 0 makes a different version of the same item (other cloud cover, ``updated``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    ring = _footprint(rng)
    lon, lat = ring[0]
    when = _START + dt.timedelta(seconds=rng.randrange(_SPAN_SECONDS), milliseconds=rng.randrange(1000))
    platform, constellation, instrument = rng.choice(_PLATFORMS)
    cloud = round(rng.uniform(0, 100), 2)
    if changed:
        cloud = round((cloud + 7.3 * changed) % 100, 2)
    props: dict[str, Any] = {
        "datetime": _iso(when),
        "created": _iso(when + dt.timedelta(hours=rng.uniform(1, 48))),
        "platform": platform,
        "constellation": constellation,
        "instruments": [instrument],
        "gsd": rng.choice([10, 20, 30, 60]),
        "eo:cloud_cover": cloud,
        "eo:snow_cover": round(rng.uniform(0, 10), 2),
        "proj:code": _utm_code(lon, lat),
        "proj:shape": [10980, 10980],
        "view:off_nadir": round(rng.uniform(0, 12), 3),
        "view:incidence_angle": round(rng.uniform(0, 15), 3),
        "view:azimuth": round(rng.uniform(0, 360), 3),
        "view:sun_azimuth": round(rng.uniform(0, 360), 3),
        "view:sun_elevation": round(rng.uniform(5, 85), 3),
    }
    if changed:
        props["updated"] = _iso(when + dt.timedelta(days=changed))
    bands = rng.sample(_BANDS, rng.randint(1, 3))
    (folder / f"{ident}.tif").write_bytes(_tiff_bytes(rng))
    assets: dict[str, Any] = {
        "data": {
            "href": f"./{ident}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": "Reflectance",
            "roles": ["data"],
            "eo:bands": [
                {"name": n, "common_name": c, "center_wavelength": w, "full_width_half_max": f}
                for n, c, w, f in bands
            ],
        }
    }
    if rng.random() < 0.5:
        meta = {
            "id": ident,
            "processing_level": "L2A",
            "baseline": "05.10",
            "quality": rng.choice(["PASSED", "DEGRADED"]),
        }
        (folder / f"{ident}_metadata.json").write_bytes(_dumps(meta))
        assets["metadata"] = {"href": f"./{ident}_metadata.json", "type": _JSON, "roles": ["metadata"]}
    else:
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<product id="{ident}">\n'
            f"  <level>L2A</level>\n  <sensing>{props['datetime']}</sensing>\n"
            f"  <cloud>{cloud}</cloud>\n</product>\n"
        )
        (folder / f"{ident}_metadata.xml").write_text(xml)
        assets["metadata"] = {
            "href": f"./{ident}_metadata.xml",
            "type": "application/xml",
            "roles": ["metadata"],
        }
    extras = rng.randint(0, 3)
    if extras >= 1:
        assets["thumbnail"] = {
            "href": f"https://data.example.com/{platform}/{when:%Y/%m/%d}/{ident}/thumbnail.jpg",
            "type": "image/jpeg",
            "roles": ["thumbnail"],
        }
    if extras >= 2:
        assets["visual"] = {
            "href": f"s3://example-bucket/{platform}/{when:%Y/%m/%d}/{ident}/TCI.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["visual"],
        }
    if extras >= 3:
        (folder / f"{ident}_qa.txt").write_text(f"{ident} quality report\nmask: ok\n")
        assets["qa"] = {"href": f"./{ident}_qa.txt", "type": "text/plain", "roles": ["metadata"]}
    links: list[dict[str, Any]] = [
        {
            "rel": "license",
            "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice",
        }
    ]
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": EXTENSIONS,
        "id": ident,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": _bbox(ring),
        "properties": props,
        "links": links,
        "assets": assets,
    }
    if collection_id is not None:
        item["collection"] = collection_id
        links[:0] = [
            {"rel": "root", "href": "../collection.json", "type": _JSON},
            {"rel": "parent", "href": "../collection.json", "type": _JSON},
            {"rel": "collection", "href": "../collection.json", "type": _JSON},
        ]
    return item


def _item_rng(seed: int, n: int) -> random.Random:
    return random.Random(f"{seed}:{n}")


def iter_items(out: Path, n_items: int, seed: int, collection_id: str) -> Iterator[dict[str, Any]]:
    """Write items one at a time under ``out``; yield each document after writing it."""
    for n in range(n_items):
        ident = item_id(collection_id, n)
        folder = out / ident
        item = make_item(folder, ident, _item_rng(seed, n), collection_id=collection_id)
        (folder / f"{ident}.json").write_bytes(_dumps(item))
        yield item


def generate_collection(out: Path, n_items: int, seed: int = 0, collection_id: str = "bench") -> Path:
    """Write an ``n_items`` collection under ``out`` (new or empty); return its collection.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    extent = Extent()
    for item in iter_items(out, n_items, seed, collection_id):
        extent.add(item)
    if n_items == 0:
        extent = Extent(bbox=[-180.0, -90.0, 180.0, 90.0])
    head = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": EXTENSIONS[:2],
        "id": collection_id,
        "title": f"Benchmark collection ({n_items} items)",
        "description": "Synthetic optical scenes generated for stac-repository benchmarks.",
        "license": "CC-BY-4.0",
        "keywords": ["benchmark", "optical", "synthetic"],
        "providers": [
            {"name": "Example Space Agency", "roles": ["producer", "licensor"], "url": "https://example.com"}
        ],
        "extent": {
            "spatial": {"bbox": [extent.bbox]},
            "temporal": {"interval": [[extent.start, extent.end]]},
        },
        "summaries": {"platform": sorted({p for p, _, _ in _PLATFORMS}), "gsd": [10, 20, 30, 60]},
    }
    target = out / "collection.json"
    with open(target, "wb") as fh:
        # Stream the links: a list of every item is never built in memory.
        fh.write(orjson.dumps(head)[:-1])
        fh.write(b',"links":[')
        fh.write(orjson.dumps({"rel": "root", "href": "./collection.json", "type": _JSON}))
        for n in range(n_items):
            ident = item_id(collection_id, n)
            fh.write(b",\n")
            fh.write(orjson.dumps({"rel": "item", "href": f"./{ident}/{ident}.json", "type": _JSON}))
        fh.write(b"]}\n")
    return target


def write_item(
    folder: Path,
    ident: str | None = None,
    *,
    seed: int = 0,
    n: int = 10_000_000,
    changed: int = 0,
    collection_id: str = "bench",
) -> Path:
    """Write ONE standalone item (no collection links) as ``<folder>/<id>/<id>.json``; return it.

    With the defaults it is a new item; with ``n`` (and ``ident``) of an item of a generated
    collection and ``changed`` > 0 it is a changed version of that item.
    """
    ident = ident or item_id(collection_id, n)
    item_folder = Path(folder) / ident
    item = make_item(item_folder, ident, _item_rng(seed, n), changed=changed)
    target = item_folder / f"{ident}.json"
    target.write_bytes(_dumps(item))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path, help="new or empty folder")
    parser.add_argument("n", type=int, help="number of items")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--id", default="bench", help="collection id")
    parser.add_argument(
        "--raster-bytes",
        type=int,
        default=0,
        help="make each item's .tif this large (seeded random bytes): assets of a real size",
    )
    args = parser.parse_args(argv)
    path = generate_collection(args.out, args.n, args.seed, args.id)
    if args.raster_bytes > 0:
        for n in range(args.n):
            ident = item_id(args.id, n)
            rng = random.Random(f"{args.seed}:{n}:raster")
            (args.out / ident / f"{ident}.tif").write_bytes(rng.randbytes(args.raster_bytes))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

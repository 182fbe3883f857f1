"""A demo stac-repository processor registered by entry point: rows of CSV files to STAC Items.

A CSV file with the columns ``id,lon,lat,datetime`` (and optionally ``fail``) holds one
product per row, named ``<file>#<row>``; its version is a hash of that row only, so editing
one row re-ingests one product. ``fail=process`` makes ``process`` raise (a test hook).

The processor is an object, not a module: the entry point names ``demo_ep_processor:processor``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class CsvPointProcessor:
    __version__ = "0.2.0"

    @staticmethod
    def _rows(file: Path) -> list[dict[str, str]]:
        with open(file, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def _row(self, product: str) -> dict[str, str]:
        file, _, n = product.rpartition("#")
        return self._rows(Path(file))[int(n)]

    def discover(self, source: str) -> Iterator[str]:
        path = Path(source)
        files = [path]
        if path.is_dir():
            files = sorted(Path(d) / f for d, _, names in os.walk(path) for f in names if f.endswith(".csv"))
        for file in files:
            for n in range(len(self._rows(file))):
                yield f"{file}#{n}"

    def id(self, product: str) -> str:
        return self._row(product)["id"]

    def version(self, product: str) -> str:
        row = self._row(product)
        return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:16]

    def process(self, product: str) -> str:
        row = self._row(product)
        if row.get("fail") == "process":
            raise ValueError(f"demo_ep told to fail on row {row['id']}")
        lon, lat = float(row["lon"]), float(row["lat"])
        item = {
            "type": "Feature",
            "stac_version": "1.1.0",
            "id": row["id"],
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "bbox": [lon, lat, lon, lat],
            "properties": {"datetime": row["datetime"]},
            "links": [],
            "assets": {},
        }
        out = Path(tempfile.mkdtemp(prefix="stac-processor-demo-ep-"))
        target = out / "item.json"
        target.write_text(json.dumps(item), encoding="utf-8")
        return str(target)


processor = CsvPointProcessor()

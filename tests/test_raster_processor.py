"""The built-in ``raster`` processor through the real CLI: GeoTIFFs made with rasterio, ingested
under a collection, checked against rasterio's own reading of the same files."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.warp
from affine import Affine

from .conftest import run_cli, walk_list

COLLECTION = {
    "type": "Collection",
    "stac_version": "1.1.0",
    "id": "rasters",
    "description": "GeoTIFFs ingested with the raster processor",
    "license": "CC-BY-4.0",
    "extent": {
        "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
        "temporal": {"interval": [[None, None]]},
    },
    "links": [],
}


def from_origin(west: float, north: float, xres: float, yres: float) -> Affine:
    """A north-up geotransform (rasterio's own helper warns about a deprecated operator)."""
    return Affine(xres, 0.0, west, 0.0, -yres, north)


def make_geotiff(
    path: Path,
    *,
    crs: str | None,
    transform: Any,
    bands: int,
    dtype: str,
    nodata: float | None,
    size: tuple[int, int] = (24, 16),
    seed: int = 0,
    tags: dict[str, str] | None = None,
) -> Path:
    """A small real GeoTIFF (width, height = ``size``) with varying data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    data = ((np.arange(bands * width * height) + seed) % 200 + 1).astype(dtype)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=bands,
        dtype=dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as ds:
        ds.write(data.reshape(bands, height, width))
        if tags:
            ds.update_tags(**tags)
    return path


@pytest.fixture
def rasters(tmp_path: Path) -> Path:
    """Three GeoTIFFs in two CRSs, a sub-folder, and files the processor must ignore."""
    folder = tmp_path / "rasters"
    make_geotiff(
        folder / "alps.tif",
        crs="EPSG:4326",
        transform=from_origin(6.5, 46.2, 0.01, 0.01),
        bands=2,
        dtype="uint8",
        nodata=0,
    )
    make_geotiff(
        folder / "utm" / "vienna.tif",
        crs="EPSG:32633",
        transform=from_origin(600000, 5340000, 30, 30),
        bands=3,
        dtype="float32",
        nodata=-9999.0,
    )
    make_geotiff(
        folder / "utm" / "graz.tiff",
        crs="EPSG:32633",
        transform=from_origin(530000, 5210000, 10, 10),
        bands=1,
        dtype="int16",
        nodata=None,
        tags={"TIFFTAG_DATETIME": "2023:07:14 10:20:30"},
    )
    (folder / "README.txt").write_text("not a raster")
    (folder / ".hidden").mkdir()
    make_geotiff(
        folder / ".hidden" / "skipped.tif",
        crs="EPSG:4326",
        transform=from_origin(0, 1, 0.1, 0.1),
        bands=1,
        dtype="uint8",
        nodata=None,
    )
    return folder


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    """A repository holding the (empty) collection ``rasters``."""
    path = tmp_path / "repo"
    run_cli("-r", path, "init", "--yes", "--id", "root", "--description", "d", check=True)
    collection = tmp_path / "collection" / "collection.json"
    collection.parent.mkdir()
    collection.write_text(json.dumps(COLLECTION))
    run_cli("-r", path, "ingest", collection, check=True)
    return path


def ingest(repo: Path, *sources: Path, expect: int = 0) -> dict[str, Any]:
    proc = run_cli("-r", repo, "ingest", "--json", "--processor", "raster", "--parent", "rasters", *sources)
    assert proc.returncode == expect, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {p.get("id") or p["product"]: p["status"] for p in report["products"]}


def show(repo: Path, ident: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(run_cli("-r", repo, "show", ident, check=True).stdout)
    return out


def check_item(repo: Path, ident: str, source: Path) -> dict[str, Any]:
    """The stored item of ``source`` agrees with rasterio's reading of the file."""
    stored = show(repo, ident)
    doc = stored["document"]
    props = doc["properties"]
    assert stored["parent"] == show(repo, "rasters")["path"]
    assert doc["stac_version"] == "1.1.0" and doc["collection"] == "rasters"
    assert any("/projection/" in ext for ext in doc["stac_extensions"])
    assert any("/raster/" in ext for ext in doc["stac_extensions"])
    with rasterio.open(source) as ds:
        left, bottom, right, top = ds.bounds
        lons, lats = rasterio.warp.transform(
            ds.crs, "EPSG:4326", [left, right, right, left], [bottom, bottom, top, top]
        )
        expected_bbox = [min(lons), min(lats), max(lons), max(lats)]
        assert doc["bbox"] == pytest.approx(expected_bbox, abs=1e-7)
        assert doc["geometry"]["type"] == "Polygon"
        ring = doc["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) == 5
        for corner in zip(lons, lats, strict=True):
            assert any(vertex == pytest.approx(list(corner), abs=1e-7) for vertex in ring), corner
        epsg = ds.crs.to_epsg()
        assert props.get("proj:code") == f"EPSG:{epsg}" or props.get("proj:epsg") == epsg
        assert props["proj:shape"] == [ds.height, ds.width]
        assert props["proj:transform"][:6] == pytest.approx(list(ds.transform)[:6])
        asset = doc["assets"]["data"]
        assert asset["type"].startswith("image/tiff; application=geotiff")
        assert "data" in asset["roles"]
        bands = asset["raster:bands"]
        assert [b["data_type"] for b in bands] == list(ds.dtypes)
        for band in bands:
            if ds.nodata is None:
                assert "nodata" not in band
            else:
                assert band["nodata"] == ds.nodata
    # The asset was copied into the repository, next to the item.
    assert asset["href"] == f"./{source.name}"
    copied = repo / Path(stored["path"]).parent / source.name
    assert copied.read_bytes() == source.read_bytes()
    return doc


def test_ingest_geotiffs_under_a_collection(repo_path: Path, rasters: Path, tmp_path: Path) -> None:
    alps, vienna, graz = rasters / "alps.tif", rasters / "utm" / "vienna.tif", rasters / "utm" / "graz.tiff"
    report = ingest(repo_path, rasters)
    assert statuses(report) == {"alps": "added", "vienna": "added", "graz": "added"}
    for ident, source in (("alps", alps), ("vienna", vienna), ("graz", graz)):
        check_item(repo_path, ident, source)
    # datetime: the TIFF DATETIME tag when present, else the file's modification time.
    assert show(repo_path, "graz")["document"]["properties"]["datetime"].startswith("2023-07-14T10:20:30")
    mtime = dt.datetime.fromtimestamp(alps.stat().st_mtime, tz=dt.UTC)
    assert show(repo_path, "alps")["document"]["properties"]["datetime"].startswith(
        f"{mtime:%Y-%m-%dT%H:%M:%S}"
    )
    # The collection lists its three items; the exported catalog is self-contained.
    links = show(repo_path, "rasters")["document"]["links"]
    assert sorted(link["href"].split("/")[-1] for link in links if link["rel"] == "item") == [
        "alps.json",
        "graz.json",
        "vienna.json",
    ]
    run_cli("-r", repo_path, "export", tmp_path / "export", check=True)
    walked = walk_list(tmp_path / "export" / "catalog.json")
    assert ("Item", "vienna", 1) in walked and ("Collection", "rasters", 0) in walked

    # Unchanged files: everything skipped, nothing written.
    assert set(statuses(ingest(repo_path, rasters)).values()) == {"skipped"}

    # Rewriting one file (new data, new mtime) updates exactly that product.
    version_before = show(repo_path, "vienna")["version"]
    make_geotiff(
        vienna,
        crs="EPSG:32633",
        transform=from_origin(610000, 5350000, 30, 30),
        bands=3,
        dtype="float32",
        nodata=-9999.0,
        size=(32, 8),
        seed=7,
    )
    st = vienna.stat()
    os.utime(vienna, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert statuses(ingest(repo_path, rasters)) == {"alps": "skipped", "vienna": "updated", "graz": "skipped"}
    assert show(repo_path, "vienna")["version"] != version_before
    check_item(repo_path, "vienna", vienna)

    # Touching a file is a new version too (the version is size + modification time).
    st = alps.stat()
    os.utime(alps, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert statuses(ingest(repo_path, rasters)) == {"alps": "updated", "vienna": "skipped", "graz": "skipped"}
    check_item(repo_path, "alps", alps)


def test_unreadable_rasters_fail_one_by_one(repo_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    good = make_geotiff(
        folder / "good.tif",
        crs="EPSG:4326",
        transform=from_origin(10, 50, 0.1, 0.1),
        bands=1,
        dtype="uint16",
        nodata=65535,
    )
    (folder / "garbage.tif").write_bytes(b"II*\x00 this is not a tiff")
    make_geotiff(
        folder / "nocrs.tif",
        crs=None,
        transform=from_origin(0, 10, 1, 1),
        bands=1,
        dtype="uint8",
        nodata=None,
    )
    proc = run_cli("-r", repo_path, "ingest", "--processor", "raster", "--parent", "rasters", folder)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    failed = sorted(line for line in proc.stderr.splitlines() if line.startswith("failed"))
    assert len(failed) == 2
    assert failed[0].startswith(f"failed  {folder / 'garbage.tif'}: [process]")
    assert "not a readable raster" in failed[0]
    assert failed[1].startswith(f"failed  {folder / 'nocrs.tif'}: [process]")
    assert "no coordinate reference system" in failed[1]
    assert "added   good" in proc.stdout
    check_item(repo_path, "good", good)


def test_stac_processor_steps(rasters: Path) -> None:
    def step(*args: str | Path) -> str:
        return run_cli("--processor", "raster", *args, command="stac-processor", check=True).stdout

    found = json.loads(step("discover", "--json", rasters))
    assert found == [
        str(rasters / "alps.tif"),
        str(rasters / "utm" / "graz.tiff"),
        str(rasters / "utm" / "vienna.tif"),
    ]
    vienna = rasters / "utm" / "vienna.tif"
    assert step("id", vienna).strip() == "vienna"
    st = vienna.stat()
    assert step("version", vienna).strip() == f"{st.st_size}-{st.st_mtime_ns}"
    out = json.loads(step("process", "--json", vienna))
    try:
        assert out["document"]["id"] == "vienna"
        assert out["document"]["assets"]["data"]["href"] == str(vienna)
        assert Path(out["path"]).parent.name.startswith("stac-repository-raster-")
    finally:
        for leftover in Path(out["path"]).parent.iterdir():
            leftover.unlink()
        Path(out["path"]).parent.rmdir()
    proc = run_cli("--processor", "raster", "discover", rasters / "nope", command="stac-processor")
    assert proc.returncode == 1 and "no such file or folder" in proc.stderr


def test_listing_processors_never_imports_rasterio() -> None:
    rows = json.loads(run_cli("show-processors", "--json", check=True).stdout)
    assert {
        "name": "raster",
        "origin": "entry point stac_repository.processors.raster",
        "version": "1.0.0",
    } in rows
    code = (
        "import sys\n"
        "from stac_repository.processors import registry\n"
        "from stac_repository.cli.repository_app import _processor_rows\n"
        "_processor_rows(); registry.load('raster')\n"
        "print(sorted(m for m in ('rasterio', 'rio_stac', 'pystac') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("entry", "args"),
    [
        ("stac_repository.cli.repository_app", ["-r", "{repo}", "ingest", "--processor", "raster", "{tif}"]),
        ("stac_repository.cli.processor_app", ["--processor", "raster", "process", "{tif}"]),
    ],
)
def test_missing_extra_is_a_one_line_error(
    repo_path: Path, rasters: Path, entry: str, args: list[str]
) -> None:
    """Without rasterio (as if the extra were not installed): one clear line, exit 1."""
    argv = [a.format(repo=repo_path, tif=rasters / "alps.tif") for a in args]
    code = (
        "import sys\n"
        "sys.modules['rasterio'] = None  # import rasterio now raises ImportError\n"
        f"from {entry} import main_entry\n"
        f"sys.argv = ['cli', *{argv!r}]\n"
        "main_entry()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "install stac-repository[raster]" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr

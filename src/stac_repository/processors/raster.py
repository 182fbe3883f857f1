"""The ``raster`` processor: GeoTIFF / Cloud Optimized GeoTIFF files to STAC 1.1.0 Items.

Installed with the ``raster`` extra (``pip install 'stac-repository[raster]'``), which brings
rasterio and rio-stac; they are imported only when a product is discovered or processed, so
listing processors never loads GDAL.

* ``discover(source)``: a raster file, or every ``.tif``/``.tiff`` file below a folder
  (recursively, hidden folders skipped), streamed in sorted order.
* ``id(product)``: the file name without its suffix. Files with the same stem in different
  sub-folders would share an id: give them distinct names, or ingest them under distinct parents.
* ``version(product)``: ``<size>-<mtime in ns>`` of the file. It is O(1) per product, so a
  re-ingest of a large archive checks every file for free (a content hash would read every
  byte of every COG on each run); a rewritten or touched file is re-processed, and a copy that
  does not keep modification times is re-processed once, to the same item.
* ``process(product)``: one Item per file, with the projection and raster extensions
  (``proj:*`` in the item properties, ``raster:bands`` on the asset), written to a fresh
  temporary folder. The item's ``datetime`` is the TIFF ``DATETIME`` tag when the file has
  one, else the file's modification time. The ``data`` asset points to the source file by
  absolute path: ingest copies it into the repository. Items are grouped under a collection
  with ``stac-repository ingest --processor raster --parent COLLECTION``.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import NotFound, ProcessorError

__version__ = "1.0.0"

SUFFIXES = (".tif", ".tiff")
_MISSING_EXTRA = "the raster processor needs rasterio and rio-stac: install stac-repository[raster]"


def _libraries() -> tuple[Any, Any]:
    """rasterio and rio_stac, or a one-line error naming the extra to install."""
    try:
        import rasterio
        import rio_stac
    except ImportError as exc:
        raise ProcessorError(f"{_MISSING_EXTRA} ({exc})") from None
    return rasterio, rio_stac


def discover(source: str) -> Iterator[str]:
    """The raster file ``source``, or the ``.tif``/``.tiff`` files below the folder ``source``."""
    _libraries()  # fail once per source, not once per product, when the extra is missing
    path = Path(source).absolute()
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                file = Path(dirpath) / name
                if file.suffix.lower() in SUFFIXES and not name.startswith(".") and file.is_file():
                    yield str(file)
    elif path.is_file():
        yield str(path)  # named explicitly: any format GDAL reads is tried
    else:
        raise NotFound(f"{source}: no such file or folder")


def id(product: str) -> str:  # noqa: A001 - the protocol's name
    return Path(product).stem


def version(product: str) -> str:
    st = os.stat(product)
    return f"{st.st_size}-{st.st_mtime_ns}"


def _datetime(dataset: Any, file: Path) -> dt.datetime:
    tag = dataset.tags().get("TIFFTAG_DATETIME", "")
    try:
        return dt.datetime.strptime(tag.strip(), "%Y:%m:%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return dt.datetime.fromtimestamp(file.stat().st_mtime, tz=dt.UTC)


def process(product: str) -> str:
    """Write the product's Item to a new temporary folder; return the item file's path."""
    rasterio, rio_stac = _libraries()
    import orjson

    file = Path(product).absolute()
    try:
        with rasterio.open(file) as dataset:
            if dataset.crs is None:
                raise ProcessorError(f"{file}: the raster has no coordinate reference system")
            item = rio_stac.create_stac_item(
                dataset,
                id=id(product),
                input_datetime=_datetime(dataset, file),
                asset_name="data",
                asset_href=str(file),
                asset_roles=["data"],
                asset_media_type="auto",
                with_proj=True,
                with_raster=True,
            )
    except rasterio.errors.RasterioError as exc:
        raise ProcessorError(f"{file}: not a readable raster ({exc})") from None
    doc = item.to_dict(include_self_link=False, transform_hrefs=False)
    folder = Path(tempfile.mkdtemp(prefix="stac-repository-raster-"))
    target = folder / f"{item.id}.json"
    target.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    return str(target)

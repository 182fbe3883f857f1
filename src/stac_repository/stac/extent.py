"""Spatial and temporal extents: what an item covers, and unions for ancestor collections.

Bounding boxes are [w, s, e, n] or [w, s, zmin, e, n, zmax]; a box with w > e crosses the
antimeridian, and a union involving one widens to the full longitude range (a superset is
correct, a wrong narrow box is not). Intervals are [start, end] with None meaning open,
and an open end stays open in any union.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Bbox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Coverage:
    """What one object covers. Any part may be unknown (None)."""

    bbox: Bbox | None
    start: str | None  # RFC 3339, or None: open/unknown
    end: str | None
    open_start: bool = False
    open_end: bool = False


def _bbox2d(values: Any) -> Bbox | None:
    if not isinstance(values, Sequence) or isinstance(values, str):
        return None
    if len(values) == 4:
        w, s, e, n = values
    elif len(values) == 6:
        w, s, _, e, n, _ = values
    else:
        return None
    try:
        box = (float(w), float(s), float(e), float(n))
    except (TypeError, ValueError):
        return None
    if any(v != v for v in box):  # NaN
        return None
    return box


def union_bbox(a: Bbox | None, b: Bbox | None) -> Bbox | None:
    if a is None:
        return b
    if b is None:
        return a
    s, n = min(a[1], b[1]), max(a[3], b[3])
    if a[0] > a[2] or b[0] > b[2]:
        return (-180.0, s, 180.0, n)
    return (min(a[0], b[0]), s, max(a[2], b[2]), n)


def contains_strictly(outer: Bbox, inner: Bbox) -> bool:
    """True when ``inner`` touches no edge of ``outer`` (removing it cannot shrink the union)."""
    if outer[0] > outer[2] or inner[0] > inner[2]:
        return False
    return outer[0] < inner[0] and outer[1] < inner[1] and inner[2] < outer[2] and inner[3] < outer[3]


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def item_coverage(item: Mapping[str, Any]) -> Coverage:
    props = item.get("properties") or {}
    if not isinstance(props, Mapping):
        props = {}
    start = props.get("start_datetime") or props.get("datetime")
    end = props.get("end_datetime") or props.get("datetime")
    box = _bbox2d(item.get("bbox"))
    return Coverage(box, start if _instant(start) else None, end if _instant(end) else None)


def collection_coverage(collection: Mapping[str, Any]) -> Coverage:
    extent = collection.get("extent") or {}
    if not isinstance(extent, Mapping):
        return Coverage(None, None, None)
    spatial = extent.get("spatial") or {}
    temporal = extent.get("temporal") or {}
    boxes = spatial.get("bbox") if isinstance(spatial, Mapping) else None
    box = _bbox2d(boxes[0]) if isinstance(boxes, list) and boxes else None
    intervals = temporal.get("interval") if isinstance(temporal, Mapping) else None
    start = end = None
    open_start = open_end = False
    if isinstance(intervals, list) and intervals and isinstance(intervals[0], list):
        first = intervals[0]
        if len(first) == 2:
            start, end = first
            open_start, open_end = start is None, end is None
    return Coverage(box, start, end, open_start, open_end)


def union(coverages: Iterable[Coverage]) -> Coverage:
    box: Bbox | None = None
    start = end = None
    open_start = open_end = False
    for c in coverages:
        box = union_bbox(box, c.bbox)
        open_start = open_start or c.open_start
        open_end = open_end or c.open_end
        cs, ce = _instant(c.start), _instant(c.end)
        if cs is not None and (start is None or cs < _instant(start)):  # type: ignore[operator]
            start = c.start
        if ce is not None and (end is None or ce > _instant(end)):  # type: ignore[operator]
            end = c.end
    return Coverage(box, start, end, open_start, open_end)


def touches_boundary(outer: Coverage, inner: Coverage) -> bool:
    """Could removing ``inner`` shrink ``outer``? (False only when it provably cannot.)"""
    if inner.bbox is not None and (outer.bbox is None or not contains_strictly(outer.bbox, inner.bbox)):
        return True
    os_, oe, is_, ie = (_instant(v) for v in (outer.start, outer.end, inner.start, inner.end))
    if is_ is not None and not outer.open_start and (os_ is None or is_ <= os_):
        return True
    return ie is not None and not outer.open_end and (oe is None or ie >= oe)


def apply_coverage(collection: dict[str, Any], cov: Coverage) -> bool:
    """Write ``cov`` as the collection's overall extent; True if anything changed.

    Further bboxes and intervals (sub-extents) are kept as given.
    """
    extent = collection.get("extent")
    if not isinstance(extent, dict):
        return False
    changed = False
    spatial = extent.setdefault("spatial", {})
    if cov.bbox is not None and isinstance(spatial, dict):
        boxes = spatial.get("bbox")
        new = [float(v) for v in cov.bbox]
        if not isinstance(boxes, list) or not boxes:
            spatial["bbox"] = [new]
            changed = True
        elif _bbox2d(boxes[0]) != cov.bbox:
            old = boxes[0]
            if isinstance(old, list) and len(old) == 6:
                new = [new[0], new[1], old[2], new[2], new[3], old[5]]
            boxes[0] = new
            changed = True
    temporal = extent.setdefault("temporal", {})
    if isinstance(temporal, dict):
        intervals = temporal.get("interval")
        start = None if cov.open_start else cov.start
        end = None if cov.open_end else cov.end
        if start is None and end is None and not (cov.open_start or cov.open_end):
            return changed
        if not isinstance(intervals, list) or not intervals:
            temporal["interval"] = [[start, end]]
            changed = True
        elif intervals[0] != [start, end]:
            intervals[0] = [start, end]
            changed = True
    return changed

"""Shortcuts of the planner's hot path against the definitions they stand for: the name an
asset is copied under, the hrefs from a document to its root, parent and collection, a child's
stored path and an item's partition key."""

from __future__ import annotations

import posixpath
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from stac_repository.backends.base import Snapshot
from stac_repository.stac import layout
from stac_repository.stac.document import StacType
from stac_repository.stac.layout import MAX_SEGMENT, asset_name, child_path, relative_href, segment
from stac_repository.stac.partition import key_at, keys
from stac_repository.stac.planner import Planner


def _asset_name_by_definition(href: str, taken: set[str]) -> str:
    """asset_name without its shortcut for plain names."""
    base = posixpath.basename(href.replace("\\", "/").split("?")[0].split("#")[0]) or "asset"
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = segment(stem) if stem else "asset"
    ext = "".join(ch for ch in ext if ch.isascii() and ch.isalnum())[:16]
    name = f"{stem}.{ext}" if ext else stem
    n = 1
    candidate = name
    while candidate.lower() in taken or candidate.lower() in layout._STATE_NAMES:
        n += 1
        candidate = f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}"
    taken.add(candidate.lower())
    return candidate


names = st.one_of(
    st.text(alphabet=["a", "B", "0", "-", "_", ".", " ", "é", "/", "?", "#", "\\"], max_size=20),
    st.sampled_from(["con.tif", "Nul.txt", "lpt1.x", "catalog.json.tif", "collection.json.xml", ".git.x"]),
    st.sampled_from(["a.tif", "a.TIF", "data.tif", "x" * MAX_SEGMENT + ".tif"]),
    st.sampled_from(["x" * (MAX_SEGMENT + 1) + ".tif", "con", "a.b.c", "-a-.t_t"]),
    st.builds(lambda n: f"scene.{'t' * n}", st.integers(0, 20)),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(names, max_size=4))
def test_asset_names_are_those_of_the_definition(hrefs: list[str]) -> None:
    taken, expected = {"item.json"}, {"item.json"}
    for href in hrefs:
        assert asset_name(href, taken) == _asset_name_by_definition(href, expected)
    assert taken == expected


segments = st.sampled_from(["a", "b", "ab", "~1f", "x.json"])
paths = st.lists(segments, min_size=1, max_size=4).map(lambda parts: "/".join([*parts, "doc.json"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(paths | st.just("catalog.json"), paths | st.just("catalog.json")), max_size=12))
def test_hrefs_out_of_a_folder_are_relative_hrefs(pairs: list[tuple[str, str]]) -> None:
    planner = Planner(cast(Snapshot, None))
    for path, target in pairs:
        if target.startswith(posixpath.dirname(path) + "/") or target == path:
            continue  # only asked for targets outside the document's folder
        assert planner._href_out(path, target) == relative_href(path, target)


def _child_path_by_definition(parent: str, child_id: str, kind: StacType, duplicate: int) -> str:
    """child_path with posixpath.join, as first written."""
    name = segment(child_id)
    folder = name if not duplicate else f"{name}-dup{duplicate}"
    base = posixpath.join(posixpath.dirname(parent), folder)
    if kind is StacType.ITEM:
        if f"{name}.json".lower() in layout._STATE_NAMES:
            name = f"{name}-{layout._digest(child_id)}"
        return f"{base}/{name}.json"
    return f"{base}/{layout.FILE_NAMES[kind]}"


parents = st.sampled_from(
    ["catalog.json", "/catalog.json", "a/catalog.json", "a/~1f/catalog.json", "a//b.json"]
)


@settings(max_examples=300, deadline=None)
@given(
    parents, names, st.sampled_from([StacType.ITEM, StacType.CATALOG, StacType.COLLECTION]), st.integers(0, 2)
)
def test_child_paths_are_those_of_the_definition(
    parent: str, child_id: str, kind: StacType, dup: int
) -> None:
    expected = _child_path_by_definition(parent, child_id, kind, dup)
    assert child_path(parent, child_id, kind, duplicate=dup) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12), st.sampled_from(["hash", "datetime"]), st.integers(0, 19))
def test_partition_keys_are_those_of_the_walk(ident: str, scheme: str, level: int) -> None:
    item = {"id": ident, "properties": {"datetime": "2021-03-04T00:00:00Z"}}
    walked = list(keys(item, scheme))
    assert key_at(item, scheme, level) == walked[level]

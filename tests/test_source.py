"""Reading products: href resolution and the compact form of lazily loaded items."""

from __future__ import annotations

import json
import os
import posixpath
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stac_repository.stac.document import read_json_bytes
from stac_repository.stac.layout import folder_of
from stac_repository.stac.source import RealPaths, load_tree, local_path, local_target

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@settings(max_examples=3000, deadline=None)
@given(
    st.tuples(
        st.sampled_from(["", "", "file:", "FILE://", "s3://", "HTTPS://", "c:", "a+b.c-d:"]),
        st.text(st.sampled_from(list("abF3+-./:\\%#?é ")), max_size=14),
    ).map("".join),
    st.sampled_from(["/x/y/item.json", "/item.json", "/a b/c/item.json"]),
)
def test_the_fast_href_join_agrees_with_the_parsing_one(href: str, base: str) -> None:
    expected = local_target(href, Path(base))
    assert local_path(href, base) == (None if expected is None else str(expected))


def test_a_lazy_item_keeps_its_stub_exactly(tmp_path: Path) -> None:
    """Integers beyond 64 bits and unicode survive the packed stub; what planning reads again
    from the file is not kept."""
    item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": "grand-é",
        "title": [-123456789012345678901234567890, "ü"],
        "geometry": {"type": "Point", "coordinates": [0.5, 1.5]},
        "bbox": [0, 0, 1, 2],
        "properties": {"datetime": "2024-01-01T00:00:00Z", "title": "dropped from the stub"},
        "links": [{"rel": "license", "href": "https://example.com/l", "title": "ü"}],
        "assets": {"data": {"href": "./data.tif", "roles": ["data"]}},
    }
    (tmp_path / "item.json").write_text(json.dumps(item))
    collection = json.loads((CORPUS / "rustac/spec-examples/v1.1.0/collection.json").read_text())
    collection["links"] = [{"rel": "item", "href": "./item.json", "type": "application/json"}]
    (tmp_path / "collection.json").write_text(json.dumps(collection))

    tree = load_tree(tmp_path / "collection.json", lazy_items=True)

    [node] = tree.children
    assert node.lazy and node.id == "grand-é"
    assert node.doc == {
        "id": "grand-é",
        "properties": {"datetime": "2024-01-01T00:00:00Z"},
        "title": [-123456789012345678901234567890, "ü"],
        "assets": {"data": {"href": "./data.tif"}},
    }
    assert node.doc is not node.doc  # a fresh copy each time: planning may change it freely
    assert tree.link_of_child[id(node)] == {"type": "application/json"}
    assert not any(link["rel"] == "item" for link in tree.doc["links"])


def _resolved_in_full(name: str) -> str:
    """What RealPaths promises: the file's folder resolved component by component."""
    folder, base = os.path.split(name)
    try:
        is_link = stat.S_ISLNK(os.lstat(name).st_mode)
    except OSError:
        is_link = False
    if base in ("", ".", "..") or is_link:
        return os.path.realpath(name)
    return os.path.join(os.path.realpath(folder), base)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(["a", "b", "c", "d", "lnk", "rel", "broken", "..", ".", "f.json"]),
            min_size=1,
            max_size=6,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_folders_resolved_from_their_parents_match_a_full_resolution(
    links_tree: Path, names: list[list[str]]
) -> None:
    paths = RealPaths()  # one cache across the paths, as a product's load uses it
    for parts in names:
        name = os.path.join(links_tree, *parts)
        assert paths.resolve(name).real == _resolved_in_full(name)


@pytest.fixture(scope="module")
def links_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("links")
    (root / "a/b/c").mkdir(parents=True)
    (root / "d").mkdir()
    (root / "a/b/c/f.json").write_text("{}")
    (root / "d/lnk").symlink_to(root / "a/b")
    (root / "d/rel").symlink_to("../a")
    (root / "d/broken").symlink_to(root / "nowhere")
    return root


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b.json", "", ".", "..", "~x", "é"]), max_size=6).map("/".join))
def test_folder_of_is_dirname(path: str) -> None:
    for candidate in (path, f"/{path}", f"{path}/", f"//{path}"):
        assert folder_of(candidate) == posixpath.dirname(candidate)


def _depth_by_definition(value: object) -> int:
    """Nesting depth as the limit counts it: every value is one level below its container."""
    if isinstance(value, dict):
        return 1 + max(map(_depth_by_definition, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth_by_definition, value), default=0)
    return 1


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=60,
)


@settings(max_examples=500, deadline=None)
@given(_JSON)
def test_the_nesting_depth_visits_only_containers_and_counts_the_same(doc: object) -> None:
    from stac_repository.stac.document import _depth

    assert _depth(doc) == _depth_by_definition(doc)


def _nested(levels: int, inner: object) -> object:
    """``levels`` containers around ``inner``, lists and objects in turn."""
    for n in range(levels):
        inner = [inner] if n % 2 else {"k": inner}
    return inner


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=190, max_value=260),
    st.sampled_from([1, [], {}, "s", None, [1], 2**70]),
    st.integers(min_value=0, max_value=3),
)
def test_too_deep_is_the_depth_over_the_limit(levels: int, inner: object, siblings: int) -> None:
    """The shortcut through orjson answers as the walk would, around the limit, whatever ends the
    deepest path (a scalar, an empty container, an integer orjson cannot write)."""
    from stac_repository.stac.document import MAX_NESTING, _too_deep

    doc = {"wide": [{"a": n} for n in range(siblings)], "deep": _nested(levels, inner)}
    assert _too_deep(doc) == (_depth_by_definition(doc) > MAX_NESTING)


def test_orjson_writes_as_many_nested_containers_as_assumed() -> None:
    """_too_deep relies on orjson's limit: a change in orjson must fail here first."""
    import orjson

    from stac_repository.stac.document import ORJSON_MAX_CONTAINERS

    assert orjson.dumps(_nested(ORJSON_MAX_CONTAINERS, 1))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(_nested(ORJSON_MAX_CONTAINERS + 1, 1))


@pytest.mark.parametrize("extra", [0, 1])
def test_the_nesting_limit_is_exact(extra: int) -> None:
    from stac_repository.errors import InvalidStac
    from stac_repository.stac.document import MAX_NESTING, parse_json

    levels = MAX_NESTING - 1 + extra  # lists around a scalar: one level each, and the scalar's
    data = ("[" * levels + "1" + "]" * levels).encode()
    if extra:
        with pytest.raises(InvalidStac, match="nested deeper"):
            parse_json(data, file="deep.json")
    else:
        assert parse_json(data, file="deep.json") is not None


@pytest.mark.parametrize("change", [-5, 0, 5, 70_000])
def test_a_document_is_read_whole_whatever_its_stat_said(tmp_path: Path, change: int) -> None:
    """The bytes read are the file's, when it grew or shrank since the stat handed in."""
    file = tmp_path / "doc.json"
    file.write_bytes(b'{"a": "' + b"x" * 100 + b'"}')
    st = os.stat(file)
    content = b'{"a": "' + b"y" * (100 + change) + b'"}'
    file.write_bytes(content)
    assert read_json_bytes(file, st) == content
    assert read_json_bytes(file) == content

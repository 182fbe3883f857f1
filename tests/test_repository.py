"""Library behaviour on real repositories: updates, skips, parents, prune, extract, extents, ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stac_repository import Repository
from stac_repository.errors import Conflict, NotFound, UsageError
from stac_repository.stac.layout import segment

from .conftest import tree_digest, walk_list


def item(
    ident: str,
    *,
    bbox: list[float] | None = None,
    when: str = "2020-01-01T00:00:00Z",
    collection: str | None = None,
    **props: Any,
) -> dict[str, Any]:
    w, s, e, n = bbox or [0.0, 0.0, 1.0, 1.0]
    doc: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": ident,
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "bbox": [w, s, e, n],
        "properties": {"datetime": when, **props},
        "links": [],
        "assets": {},
    }
    if collection:
        doc["collection"] = collection
        doc["links"].append({"rel": "collection", "href": "./collection.json"})
    return doc


def collection(ident: str, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": ident,
        "description": f"collection {ident}",
        "license": "CC-BY-4.0",
        "extent": {
            "spatial": {"bbox": [[0.0, 0.0, 1.0, 1.0]]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z"]]},
        },
        "links": [{"rel": "item", "href": f"./{i['id']}.json"} for i in items or []],
    }


def write(folder: Path, name: str, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


def stored(repo: Repository, ident: str) -> dict[str, Any]:
    return repo.show(ident)["document"]


def test_reingest_unchanged_is_a_noop_and_changed_is_an_update(repo: Repository, tmp_path: Path) -> None:
    src = write(tmp_path / "src", "a.json", item("a"))
    assert repo.ingest([str(src)]).count("added") == 1
    shown = repo.show("a")
    assert shown["processor"] == "stac 1.0.0" and shown["version"].startswith("sha256:")
    before = tree_digest(repo.root)
    again = repo.ingest([str(src)])
    assert again.count("skipped") == 1
    assert tree_digest(repo.root) == before
    write(tmp_path / "src", "a.json", item("a", bbox=[5.0, 5.0, 6.0, 6.0]))
    changed = repo.ingest([str(src)])
    assert changed.count("updated") == 1
    assert stored(repo, "a")["bbox"] == [5.0, 5.0, 6.0, 6.0]
    forced = repo.ingest([str(src)], force=True)
    assert forced.count("updated") == 1


def test_version_field_decides_skip(repo: Repository, tmp_path: Path) -> None:
    src = write(tmp_path / "src", "a.json", item("a", version="1"))
    repo.ingest([str(src)])
    write(tmp_path / "src", "a.json", item("a", version="1", title="changed but same version"))
    assert repo.ingest([str(src)]).count("skipped") == 1
    write(tmp_path / "src", "a.json", item("a", version="2"))
    assert repo.ingest([str(src)]).count("updated") == 1


def test_parent_placement_and_extents(repo: Repository, tmp_path: Path) -> None:
    col = write(tmp_path / "c", "collection.json", collection("col"))
    repo.ingest([str(col)])
    far = write(
        tmp_path / "i", "far.json", item("far", bbox=[10.0, 20.0, 11.0, 21.0], when="2024-05-01T00:00:00Z")
    )
    report = repo.ingest([str(far)], parent="col")
    assert report.count("added") == 1, report.results[0].reason
    doc = stored(repo, "col")
    assert doc["extent"]["spatial"]["bbox"][0] == [0.0, 0.0, 11.0, 21.0]
    assert doc["extent"]["temporal"]["interval"][0] == ["2020-01-01T00:00:00Z", "2024-05-01T00:00:00Z"]
    far_doc = stored(repo, "far")
    assert far_doc["collection"] == "col"
    assert {"rel": "collection", "href": "../collection.json", "type": "application/json"} in far_doc["links"]
    # Pruning the item on the boundary shrinks the extent back to what the rest covers.
    near = write(tmp_path / "i", "near.json", item("near", bbox=[0.5, 0.5, 2.0, 2.0]))
    repo.ingest([str(near)], parent="col")
    repo.prune(["far"])
    doc = stored(repo, "col")
    assert doc["extent"]["spatial"]["bbox"][0] == [0.5, 0.5, 2.0, 2.0]
    assert doc["extent"]["temporal"]["interval"][0] == ["2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z"]
    assert not any(link["href"].startswith("./far") for link in doc["links"])


def test_update_keeps_position(repo: Repository, tmp_path: Path) -> None:
    col = write(tmp_path / "c", "collection.json", collection("col"))
    repo.ingest([str(col)])
    for name in ("x", "y", "z"):
        repo.ingest([str(write(tmp_path / "i", f"{name}.json", item(name)))], parent="col")
    order = [link["href"] for link in stored(repo, "col")["links"] if link["rel"] == "item"]
    repo.ingest([str(write(tmp_path / "i", "x.json", item("x", bbox=[0.1, 0.1, 0.2, 0.2])))])
    assert [link["href"] for link in stored(repo, "col")["links"] if link["rel"] == "item"] == order
    assert repo.show("x")["parent"] == "col/collection.json"


def test_same_id_under_different_parents(repo: Repository, tmp_path: Path) -> None:
    """Ids are unique among siblings (as in STAC): the same id under two parents is two objects."""
    for c in ("c1", "c2"):
        repo.ingest([str(write(tmp_path / c, "collection.json", collection(c)))])
    src = write(tmp_path / "i", "dup.json", item("dup"))
    assert repo.ingest([str(src)], parent="c1").count("added") == 1
    assert repo.ingest([str(src)], parent="c2").count("added") == 1
    assert {repo.show("c1/dup/dup.json")["parent"], repo.show("c2/dup/dup.json")["parent"]} == {
        "c1/collection.json",
        "c2/collection.json",
    }
    # Without --parent the id is ambiguous: refused, nothing written.
    before = tree_digest(repo.root)
    report = repo.ingest([str(write(tmp_path / "i", "dup.json", item("dup", title="new")))])
    assert report.count("failed") == 1 and "ambiguous" in (report.results[0].reason or "")
    assert tree_digest(repo.root) == before
    with pytest.raises(Conflict):
        repo.prune(["dup"])
    repo.prune(["c1/dup"])
    assert repo.show("dup")["parent"] == "c2/collection.json"


def test_prune_errors_and_extract(repo: Repository, corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        repo.prune(["nope"])
    with pytest.raises(UsageError):
        repo.prune(["root"])
    repo.ingest([str(corpus / "pystac/catalogs/test-case-1/catalog.json")])
    country = repo.show("country-1")["path"]
    expected = walk_list(repo.root / country)
    repo.prune(["country-1"], extract=tmp_path / "extracted")
    assert walk_list(tmp_path / "extracted" / "catalog.json") == expected
    assert not (repo.root / country).exists()
    with pytest.raises(NotFound):
        repo.show("area-1-1-imagery")
    assert walk_list(repo.root / "catalog.json")  # still a complete tree


def test_prune_of_a_collection_removes_assets(repo: Repository, corpus: Path) -> None:
    repo.ingest([str(corpus / "stactools/data-files/planet-disaster/collection.json")])
    assert list(repo.root.rglob("*.tif"))
    repo.prune(["planet-disaster-data"])
    assert not list(repo.root.rglob("*.tif"))
    assert sorted(p.name for p in repo.root.iterdir()) == [".stac-repository", "catalog.json"]


@pytest.mark.parametrize(
    "ident",
    [
        "a/b",
        "../../escape",
        "..",
        ".",
        ".git",
        "CON",
        "nul.txt",
        "with space",
        "ünïcødé-☃",
        "x" * 300,
        "back\\slash",
        "catalog",
        "collection.json",
        "-rf",
    ],
)
def test_hostile_ids_stay_inside(repo: Repository, tmp_path: Path, ident: str) -> None:
    src = write(tmp_path / "src", "item.json", item(ident))
    report = repo.ingest([str(src)])
    assert report.count("added") == 1, report.results[0].reason
    path = repo.show(ident)["path"]
    target = (repo.root / path).resolve()
    assert repo.root.resolve() in target.parents
    assert target.is_file() and json.loads(target.read_text())["id"] == ident
    assert not (tmp_path / "escape").exists()
    repo.prune([ident])
    assert not target.exists()


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=400))
def test_segment_is_a_safe_single_name(name: str) -> None:
    seg = segment(name)
    assert seg and "/" not in seg and "\\" not in seg and "\x00" not in seg
    assert not seg.startswith(".") and len(seg) <= 120
    assert seg.lower() not in {".git", "catalog.json", "collection.json", ".stac-repository"}


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_segment_is_injective(a: str, b: str) -> None:
    if a != b:
        assert segment(a) != segment(b)


def test_itemcollection_and_ndjson_are_items(repo: Repository, corpus: Path) -> None:
    import tempfile

    scratch = {
        p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith("stac-repository-feature-")
    }
    report = repo.ingest([str(corpus / "pystac/item-collection/sample-item-collection.json")])
    assert report.count("added") == 10, [r.reason for r in report.failed]
    # The processor's scratch output is gone; nothing that existed before is touched.
    after = {
        p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith("stac-repository-feature-")
    }
    assert after <= scratch
    assert repo.ingest([str(corpus / "rustac/crates/core/data/items.ndjson")]).count("failed") == 0
    report = repo.ingest([str(corpus / "pystac/item-collection/sample-item-collection.json")])
    assert report.count("skipped") == 10


def test_directory_discovery_finds_roots_only(repo: Repository, corpus: Path) -> None:
    report = repo.ingest([str(corpus / "pystac/catalogs/test-case-1")])
    assert [r.id for r in report.results] == ["test"]


def test_assets_outside_the_product_are_refused(repo: Repository, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not copy")
    doc = item("leaky")
    doc["assets"] = {"data": {"href": str(secret)}}
    src = write(tmp_path / "product", "leaky.json", doc)
    before = tree_digest(repo.root)
    report = repo.ingest([str(src)])
    assert report.count("failed") == 1 and "outside the product's folders" in (report.results[0].reason or "")
    assert tree_digest(repo.root) == before
    (tmp_path / "product" / "link.txt").symlink_to(secret)
    doc["assets"] = {"data": {"href": "./link.txt"}}
    write(tmp_path / "product", "leaky.json", doc)
    assert repo.ingest([str(src)]).count("failed") == 1
    assert tree_digest(repo.root) == before


def test_asset_name_collisions_are_resolved(repo: Repository, tmp_path: Path) -> None:
    (tmp_path / "p" / "a").mkdir(parents=True)
    (tmp_path / "p" / "b").mkdir()
    (tmp_path / "p" / "a" / "data.tif").write_bytes(b"A")
    (tmp_path / "p" / "b" / "data.tif").write_bytes(b"B")
    doc = item("twins")
    doc["assets"] = {"a": {"href": "./a/data.tif"}, "b": {"href": "./b/data.tif"}}
    repo.ingest([str(write(tmp_path / "p", "twins.json", doc))])
    stored_doc = stored(repo, "twins")
    folder = repo.root / repo.show("twins")["path"].rsplit("/", 1)[0]
    hrefs = {k: a["href"] for k, a in stored_doc["assets"].items()}
    assert hrefs["a"] != hrefs["b"]
    assert (folder / hrefs["a"]).read_bytes() == b"A" and (folder / hrefs["b"]).read_bytes() == b"B"


def test_local_links_are_copied_or_dropped_never_dangling(repo: Repository, tmp_path: Path) -> None:
    (tmp_path / "product").mkdir()
    (tmp_path / "product" / "LICENSE.txt").write_text("licence text")
    (tmp_path / "secret.txt").write_text("outside")
    doc = item("linked")
    doc["links"] = [
        {"rel": "license", "href": "./LICENSE.txt"},
        {"rel": "via", "href": "../secret.txt"},
        {"rel": "about", "href": "https://example.com/about"},
    ]
    report = repo.ingest([str(write(tmp_path / "product", "linked.json", doc))])
    assert report.count("added") == 1
    assert any("link dropped" in w for w in report.results[0].warnings)
    shown = repo.show("linked")
    links = {link["rel"]: link["href"] for link in shown["document"]["links"]}
    assert "via" not in links and links["about"] == "https://example.com/about"
    folder = repo.root / shown["path"].rsplit("/", 1)[0]
    assert (folder / links["license"]).read_text() == "licence text"
    assert not any(p.read_bytes() == b"outside" for p in repo.root.rglob("*") if p.is_file())
    # With assets.allow_outside the outside file is brought in too.
    repo.set_config("assets.allow_outside", "true")
    assert repo.ingest([str(tmp_path / "product" / "linked.json")], force=True).count("updated") == 1
    links = {link["rel"]: link["href"] for link in repo.show("linked")["document"]["links"]}
    assert (folder / links["via"]).read_text() == "outside"

"""Every good corpus root ingests; the repository and its export hold exactly what the source holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stac_repository import Repository
from stac_repository.stac.document import identify, read_json_file
from stac_repository.stac.planner import resolve_href
from stac_repository.stac.validation import SchemaValidator

from .conftest import GOOD_ROOTS, walk_list


def stored_links_resolve(root: Path) -> int:
    """Check every structural link of every stored document; return how many were checked."""
    checked = 0
    for file in root.rglob("*.json"):
        rel = file.relative_to(root).as_posix()
        if rel.startswith(".stac-repository"):
            continue
        doc = json.loads(file.read_bytes())
        if not isinstance(doc, dict) or "links" not in doc:
            continue
        for link in doc["links"]:
            if link["rel"] in ("root", "parent", "child", "item", "collection") and "://" not in link["href"]:
                target = resolve_href(rel, link["href"])
                assert target is not None, f"{rel}: {link} leaves the repository"
                assert (root / target).is_file(), f"{rel}: {link} does not resolve"
                checked += 1
    return checked


@pytest.mark.parametrize("root", GOOD_ROOTS)
def test_good_root_round_trip(root: str, corpus: Path, tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo", id="root", description="corpus")
    report = repo.ingest([str(corpus / root)])
    assert [r.status for r in report.results] == ["added"], [r.reason for r in report.results]
    product = report.results[0].id
    stored = repo.show(product)["path"]

    source_objects = walk_list(corpus / root)
    assert walk_list(tmp_path / "repo" / stored) == source_objects

    repo.export(tmp_path / "export")
    assert walk_list(tmp_path / "export" / stored) == source_objects
    assert stored_links_resolve(tmp_path / "repo") > 0
    assert stored_links_resolve(tmp_path / "export") > 0
    assert not (tmp_path / "export" / ".stac-repository").exists()

    # The whole stored catalog is one tree reachable from the root catalog.
    whole = walk_list(tmp_path / "repo" / "catalog.json")
    assert len(whole) == len(source_objects) + 1

    # STAC 1.1.0 documents are written valid against the core schema.
    validator = SchemaValidator()
    for file in (tmp_path / "repo").rglob("*.json"):
        if ".stac-repository" in file.parts:
            continue
        doc = read_json_file(file)
        if doc.get("stac_version") == "1.1.0":
            validator.validate(doc, identify(doc), file=str(file))


def test_local_assets_are_copied(corpus: Path, tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo", id="root", description="corpus")
    report = repo.ingest([str(corpus / "stactools/data-files/planet-disaster/collection.json")])
    assert report.count("added") == 1
    copied = sorted(p.name for p in (tmp_path / "repo").rglob("*") if p.suffix in (".tif", ".xml"))
    assert len(copied) == 4  # the four asset files present in the source (ten are missing there)
    # Missing local assets are reported, not invented.
    assert any("missing" in w for w in report.results[0].warnings)
    resolved = 0
    for file in (tmp_path / "repo").rglob("*.json"):
        if ".stac-repository" in file.parts:
            continue
        doc = json.loads(file.read_bytes())
        for asset in (doc.get("assets") or {}).values() if isinstance(doc, dict) else []:
            resolved += (file.parent / asset["href"]).is_file()
    assert resolved == 4
    # Items under a sub-catalog of their collection keep their collection field and link.
    item = repo.show("20170831_172754_101c")["document"]
    assert item["collection"] == "planet-disaster-data"
    link = next(link for link in item["links"] if link["rel"] == "collection")
    target = tmp_path / "repo" / repo.show("20170831_172754_101c")["path"]
    assert json.loads((target.parent / link["href"]).read_text())["id"] == "planet-disaster-data"


@pytest.mark.parametrize(
    "root",
    [
        "pystac/catalogs/test-case-1/catalog.json",
        "stactools/data-files/planet-disaster/collection.json",
        "pystac/catalogs/label_catalog-v0.8.1/catalog.json",
    ],
)
def test_fields_are_stored_as_given(root: str, corpus: Path, tmp_path: Path) -> None:
    """Only links, local asset hrefs and collection extents/fields may differ from the source."""
    from stac_repository.stac.source import STRUCTURAL_RELS, load_tree

    repo = Repository.init(tmp_path / "repo", id="root", description="corpus")
    assert repo.ingest([str(corpus / root)]).count("added") == 1
    ignored = ("links", "assets", "collection", "extent")
    for node in load_tree(corpus / root).walk():
        stored = repo.show(node.id)["document"]
        assert {k: v for k, v in stored.items() if k not in ignored} == {
            k: v for k, v in node.doc.items() if k not in ignored
        }
        for key, asset in (node.doc.get("assets") or {}).items():
            assert {k: v for k, v in stored["assets"][key].items() if k != "href"} == {
                k: v for k, v in asset.items() if k != "href"
            }
        others = [
            {k: v for k, v in link.items() if k != "href"}
            for link in node.doc.get("links", [])
            if link["rel"] not in STRUCTURAL_RELS
        ]
        assert [
            {k: v for k, v in link.items() if k != "href"}
            for link in stored["links"]
            if link["rel"] not in STRUCTURAL_RELS
        ] == others
        assert not any("method" in link and "method" not in str(node.doc) for link in stored["links"])

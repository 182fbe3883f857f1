"""Bounded fan-out: full collections spill into partition catalogs, and nothing else changes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from stac_repository import Repository

from .conftest import walk_list
from .test_repository import collection, item, write


def _items(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        w, s = rng.uniform(-170, 160), rng.uniform(-80, 70)
        month = rng.randint(1, 12)
        out.append(
            item(
                f"scene-{i:03d}",
                bbox=[w, s, w + 1, s + 1],
                when=f"20{rng.randint(10, 24)}-{month:02d}-01T00:00:00Z",
            )
        )
    return out


def _folder_sizes(root: Path) -> int:
    return max(
        len(list(p.iterdir())) for p in root.rglob("*") if p.is_dir() and ".stac-repository" not in p.parts
    )


def _check_tree(repo: Repository, docs: list[dict[str, Any]], max_items: int) -> None:
    stored = walk_list(repo.root / "catalog.json")
    assert sorted(i for kind, i, _ in stored if kind == "Item") == sorted(d["id"] for d in docs)
    for file in repo.root.rglob("*.json"):
        if ".stac-repository" in file.parts:
            continue
        doc = json.loads(file.read_text())
        assert sum(1 for link in doc.get("links", []) if link["rel"] == "item") <= max_items
        if doc.get("type") == "Feature":
            assert doc["collection"] == "col"
            link = next(link for link in doc["links"] if link["rel"] == "collection")
            assert json.loads((file.parent / link["href"]).read_text())["id"] == "col"
    # The collection's extent covers exactly its items.
    col = repo.show("col")["document"]
    w = min(d["bbox"][0] for d in docs)
    n = max(d["bbox"][3] for d in docs)
    box = col["extent"]["spatial"]["bbox"][0]
    assert box[0] == pytest.approx(min(w, 0.0)) and box[3] == pytest.approx(max(n, 1.0))


@pytest.mark.parametrize("scheme", ["hash", "datetime"])
def test_single_items_spill_into_partitions(repo: Repository, tmp_path: Path, scheme: str) -> None:
    repo.set_config("layout.max_items", "3")
    repo.set_config("layout.partition", scheme)
    repo.ingest([str(write(tmp_path / "c", "collection.json", collection("col")))])
    docs = _items(40)
    for doc in docs:
        report = repo.ingest([str(write(tmp_path / "i", f"{doc['id']}.json", doc))], parent="col")
        assert report.count("added") == 1, report.results[0].reason
    _check_tree(repo, docs, 3)
    if scheme == "datetime":
        assert any(p.name.startswith("~20") for p in (repo.root / "col").iterdir())
    # Re-ingest: found in its partition and skipped; a change updates it in place.
    target = docs[-1]
    src = write(tmp_path / "i", f"{target['id']}.json", target)
    assert repo.ingest([str(src)], parent="col").count("skipped") == 1
    where = repo.show(target["id"])["path"]
    assert "/~" in where
    changed = {**target, "properties": {**target["properties"], "title": "changed"}}
    assert (
        repo.ingest([str(write(tmp_path / "i", f"{target['id']}.json", changed))], parent="col").count(
            "updated"
        )
        == 1
    )
    assert repo.show(target["id"])["path"] == where
    # Prune the item that holds the collection's western edge: the extent shrinks to the rest.
    west = min(docs, key=lambda d: d["bbox"][0])
    repo.prune([west["id"]])
    rest = [d for d in docs if d is not west]
    box = repo.show("col")["document"]["extent"]["spatial"]["bbox"][0]
    assert box[0] == pytest.approx(min(d["bbox"][0] for d in rest))  # recomputed from what is left
    _check_tree(repo, rest, 3)


def test_a_large_product_is_partitioned_on_ingest(repo: Repository, tmp_path: Path) -> None:
    repo.set_config("layout.max_items", "5")
    docs = _items(60, seed=3)
    src = tmp_path / "product"
    for doc in docs:
        write(src, f"{doc['id']}.json", doc)
    write(src, "collection.json", collection("col", docs))
    report = repo.ingest([str(src / "collection.json")])
    assert report.count("added") == 1, report.results[0].reason
    _check_tree(repo, docs, 5)
    assert _folder_sizes(repo.root) <= 5 + 256 + 1
    # Unchanged: skipped. Export keeps the partitions and stays a valid static catalog.
    assert repo.ingest([str(src / "collection.json")]).count("skipped") == 1
    repo.export(tmp_path / "export")
    assert len([k for k, _, _ in walk_list(tmp_path / "export" / "catalog.json") if k == "Item"]) == 60


def test_partitioning_can_be_turned_off(repo: Repository, tmp_path: Path) -> None:
    repo.set_config("layout.partition", "none")
    repo.set_config("layout.max_items", "2")
    repo.ingest([str(write(tmp_path / "c", "collection.json", collection("col")))])
    for doc in _items(5):
        repo.ingest([str(write(tmp_path / "i", f"{doc['id']}.json", doc))], parent="col")
    links = repo.show("col")["document"]["links"]
    assert sum(1 for link in links if link["rel"] == "item") == 5


def test_export_can_flatten_partitions(repo: Repository, tmp_path: Path) -> None:
    repo.set_config("layout.max_items", "2")
    docs = _items(30, seed=5)
    src = tmp_path / "product"
    (src / "data").mkdir(parents=True)
    (src / "data" / "meta.json").write_text("[1, 2, 3]")  # a JSON asset that is no STAC document
    (src / "data" / "band.tif").write_bytes(b"II*\x00")
    for doc in docs:
        doc["assets"] = {"meta": {"href": "./data/meta.json"}, "band": {"href": "./data/band.tif"}}
        write(src, f"{doc['id']}.json", doc)
    write(src, "collection.json", collection("col", docs))
    assert repo.ingest([str(src / "collection.json")]).count("added") == 1
    repo.export(tmp_path / "kept")
    repo.export(tmp_path / "flat", flatten=True)
    kept = walk_list(tmp_path / "kept" / "catalog.json")
    flat = walk_list(tmp_path / "flat" / "catalog.json")
    assert [o for o in kept if o[0] == "Item"] == [o for o in flat if o[0] == "Item"]
    assert len(kept) > len(flat) == 1 + 1 + 30  # root, collection, items: no partition catalogs
    assert not [p for p in (tmp_path / "flat").rglob("catalog.json") if "~" in str(p)]
    col = json.loads((tmp_path / "flat" / "col" / "collection.json").read_text())
    assert sum(1 for link in col["links"] if link["rel"] == "item") == 30
    for stored in (tmp_path / "flat").rglob("scene-*.json"):
        doc = json.loads(stored.read_text())
        parent = next(link["href"] for link in doc["links"] if link["rel"] == "parent")
        assert json.loads((stored.parent / parent).read_text())["id"] == "col"


def test_index_memory_follows_the_edits(repo: Repository, tmp_path: Path) -> None:
    """The id index reads shards through a bounded cache and renders shards that only gain
    entries when they are written; after the commit every entry is found again, and a prune
    that empties shards deletes them (no empty shard is left)."""
    from stac_repository.stac.index import INDEX_DIR, Entry, IndexView

    docs = [item(f"many-{k}") for k in range(120)]
    for doc in docs:
        write(tmp_path / "src", f"{doc['id']}.json", doc)
    write(tmp_path / "src", "collection.json", collection("many", docs))
    assert not repo.ingest([str(tmp_path / "src" / "collection.json")]).failed
    with repo.backend.snapshot() as snap:
        view = IndexView(snap)
        view.CACHED_SHARDS = 4
        parent = repo.show("many-0")["parent"]
        for k in range(120):
            assert view.find(f"many-{k}", parent) is not None
            assert len(view._shards) <= 4
        assert view.find("absent", None) is None
        view.put(Entry("new", "many/new/new.json", "Item", parent))
        view.remove("many-0", repo.show("many-0")["path"])
        kinds = {type(content).__name__ for _, content in view.changes()}
        assert kinds == {"partial", "bytes"} or kinds == {"partial", "NoneType"}
    assert repo.prune([f"many-{k}" for k in range(120)]) is not None
    with repo.backend.snapshot() as snap:
        shards = [snap.read(path) for path in snap.walk(INDEX_DIR)]
    assert shards and all(shard.strip() not in (b"", b"{}") for shard in shards)
    assert not any(b'"many-' in shard for shard in shards)

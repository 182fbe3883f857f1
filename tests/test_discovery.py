"""Which products the ``stac`` processor finds in a folder (``stac-repository ingest FOLDER``).

Discovery reads only the documents it must: a file linked as an item belongs to the catalog
that links it and is never opened. The tests hold it to the definition, restated here: every JSON
document of the folder read, the roots being those that no document links to.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from stac_repository.errors import InvalidStac
from stac_repository.processors import stac
from stac_repository.stac.document import StacType, identify, read_json_file
from stac_repository.stac.source import local_target

from .conftest import run_cli

CORPUS_FOLDERS = [
    ".",
    "pystac",
    "pystac/catalogs",
    "pystac/catalogs/test-case-4",
    "stac-spec",
    "stactools/data-files",
    "rustac",
    "stac-validator/test_data",
]


def _definition(folder: Path) -> list[str]:
    """Every JSON file read; roots are the documents that no child or item link points to."""
    documents: dict[str, dict[str, Any]] = {}
    features: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            file = os.path.join(dirpath, name)
            if not os.path.isfile(file):
                continue
            if name.endswith(".ndjson"):
                features.append(os.path.realpath(file))
                continue
            if not name.endswith((".json", ".geojson")):
                continue
            try:
                doc = read_json_file(file)
                kind = identify(doc, file=file)
            except InvalidStac:
                continue
            if kind is StacType.ITEM_COLLECTION:
                features.append(os.path.realpath(file))
            else:
                documents[os.path.realpath(file)] = doc
    linked = set()
    for file, doc in documents.items():
        for link in doc.get("links") or []:
            href = link.get("href") if isinstance(link, dict) else None
            if link.get("rel") in ("child", "item") and isinstance(href, str):
                target = local_target(href, Path(file))
                if target is not None:
                    linked.add(os.path.realpath(target))
    roots = sorted((d.get("type") == "Feature", f) for f, d in documents.items() if f not in linked)
    out = [f for _, f in roots]
    for file in features:
        out += [f"{file}#{n}" for n, _ in stac._features(Path(file))]
    return out


@pytest.mark.parametrize("relative", CORPUS_FOLDERS)
def test_discovery_of_corpus_folders_follows_the_definition(corpus: Path, relative: str) -> None:
    folder = corpus / relative
    found = list(stac.discover(str(folder)))
    assert found, "each of these folders holds STAC products"
    assert found == _definition(folder)


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def _item(ident: str, *links: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": ident,
        "geometry": None,
        "properties": {"datetime": "2020-01-01T00:00:00Z"},
        "links": list(links),
        "assets": {},
    }


def _catalog(ident: str, *links: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": ident,
        "description": ident,
        "links": list(links),
    }


def test_items_before_their_catalog_and_beside_it(tmp_path: Path) -> None:
    # "a-item.json" is walked before the catalog that links it, from a deeper folder and with "..".
    _write(tmp_path / "a-item.json", _item("a"))
    _write(
        tmp_path / "sub" / "catalog.json",
        _catalog("sub", {"rel": "item", "href": "../a-item.json"}, {"rel": "item", "href": "./b.json"}),
    )
    _write(tmp_path / "sub" / "b.json", _item("b"))
    _write(tmp_path / "alone.json", _item("alone"))
    _write(
        tmp_path / "top" / "catalog.json", _catalog("top", {"rel": "child", "href": "../sub/catalog.json"})
    )
    _write(tmp_path / ".hidden" / "catalog.json", _catalog("hidden"))
    (tmp_path / "notes.json").write_text("not json")
    found = list(stac.discover(str(tmp_path)))
    assert found == [str(tmp_path / "top" / "catalog.json"), str(tmp_path / "alone.json")]
    assert found == _definition(tmp_path)


def test_links_through_symbolic_links_are_followed_to_their_files(tmp_path: Path) -> None:
    real = tmp_path / "real"
    _write(real / "item.json", _item("x"))
    (tmp_path / "alias").symlink_to(real)  # a link to a folder: not walked, but links may use it
    (real / "linked-item.json").symlink_to(real / "item.json")  # the same file twice
    _write(tmp_path / "catalog.json", _catalog("c", {"rel": "item", "href": "./alias/item.json"}))
    found = list(stac.discover(str(tmp_path)))
    assert found == [str(tmp_path / "catalog.json")]
    assert found == _definition(tmp_path)


def test_feature_files_come_last_in_walk_order(tmp_path: Path) -> None:
    fc = {"type": "FeatureCollection", "features": [_item("f0"), _item("f1")]}
    _write(tmp_path / "b" / "features.json", fc)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "lines.ndjson").write_text(
        json.dumps(_item("n0")) + "\n\n" + json.dumps(_item("n1")) + "\n"
    )
    _write(tmp_path / "c" / "item.json", _item("c"))
    found = list(stac.discover(str(tmp_path)))
    lines, features = tmp_path / "a" / "lines.ndjson", tmp_path / "b" / "features.json"
    assert found == [
        str(tmp_path / "c" / "item.json"),
        f"{lines}#0",
        f"{lines}#2",
        f"{features}#0",
        f"{features}#1",
    ]


def test_a_file_linked_as_an_item_is_not_opened(tmp_path: Path) -> None:
    # What the item link points to is taken to be an item: a catalog there (invalid STAC) is not
    # read, so what it links to is found as roots of its own.
    _write(tmp_path / "catalog.json", _catalog("root", {"rel": "item", "href": "./odd/catalog.json"}))
    _write(tmp_path / "odd" / "catalog.json", _catalog("odd", {"rel": "item", "href": "./x.json"}))
    _write(tmp_path / "odd" / "x.json", _item("x"))
    assert list(stac.discover(str(tmp_path))) == [
        str(tmp_path / "catalog.json"),
        str(tmp_path / "odd" / "x.json"),
    ]


def test_the_cli_ingests_a_folder_by_its_roots(tmp_path: Path, corpus: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("-r", repo, "--backend", "git", "init", "--yes", "--id", "root", "--description", "d", check=True)
    run_cli("-r", repo, "ingest", corpus / "pystac/catalogs/test-case-4", check=True)
    shown = json.loads(run_cli("-r", repo, "show", "train_tier_1", check=True).stdout)
    assert shown["path"] == "train_tier_1/catalog.json"  # test-case-4's root catalog, as a product
    history = json.loads(run_cli("-r", repo, "history", "--json", check=True).stdout)
    assert len(history) == 2  # init, then one product: the items are not products of their own

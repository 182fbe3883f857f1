"""Every other STAC file of the corpus (standalone items of every version, spec examples,
ItemCollections, ndjson) ingests, apart from two deliberate, documented rejections."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from stac_repository import Repository

from .conftest import CORPUS

# Not in INVALID.tsv, refused on purpose (see docs/invalid-inputs.md):
REFUSED = {
    # STAC 0.8 items inherit properties from their collection ("commons"), here a remote one.
    "pystac/examples/0.8.1/item-spec/examples/itemcollection-sample-full.json": "not available locally",
    # Its item link points to a file the corpus does not have.
    "pystac/examples/0.9.0/extensions/label/examples/multidataset/zanzibar/collection.json": "missing file",
}


def _files() -> list[str]:
    with open(CORPUS / "INVALID.tsv", newline="") as fh:
        invalid = {row["path"] for row in csv.DictReader(fh, delimiter="\t")}
    patterns = (
        "pystac/examples/**/*.json",
        "stac-spec/**/examples/*.json",
        "rustac/**/*.json",
        "rustac/**/*.ndjson",
    )
    out = set()
    for pattern in patterns:
        for path in CORPUS.glob(pattern):
            rel = path.relative_to(CORPUS).as_posix()
            if rel in invalid:
                continue
            if path.suffix == ".json":
                try:
                    doc = json.loads(path.read_bytes())
                except ValueError:
                    continue
                if not isinstance(doc, dict) or (
                    "stac_version" not in doc and doc.get("type") != "FeatureCollection"
                ):
                    continue
            out.add(rel)
    return sorted(out)


FILES = _files()


def test_the_sweep_covers_the_corpus() -> None:
    assert len(FILES) > 120


@pytest.mark.parametrize("rel", FILES)
def test_corpus_file_ingests(rel: str, tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo", description="sweep")
    report = repo.ingest([str(CORPUS / rel)])
    reasons = [r.reason or "" for r in report.failed]
    if rel in REFUSED:
        assert reasons and all(REFUSED[rel] in reason for reason in reasons), reasons
    else:
        assert not reasons, reasons
        empty = rel.endswith(".json") and json.loads((CORPUS / rel).read_bytes()).get("features") == []
        assert report.count("added") == 0 if empty else report.count("added") >= 1

"""The quiet schema validators (pass or fail only, run on every document) give the same verdict
as fastjsonschema's detailed ones (run only to explain a failure)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stac_repository.errors import InvalidStac
from stac_repository.stac.document import StacType, identify
from stac_repository.stac.validation import _CORE, SchemaValidator

from .conftest import CORPUS

VALIDATOR = SchemaValidator(None)


def verdict(doc: Any, url: str, *, detailed: bool) -> bool:
    check = VALIDATOR._validator(url, detailed=detailed)
    assert check is not None
    try:
        check(doc)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def schemas(doc: dict[str, Any]) -> list[str]:
    kind = identify(doc, file="x")
    return [f"https://schemas.stacspec.org/v{doc.get('stac_version')}/{_CORE[kind]}"]


def corpus_documents() -> list[Path]:
    out = []
    for path in sorted(CORPUS.rglob("*.json")):
        try:
            doc = json.loads(path.read_bytes())
        except ValueError:
            continue
        if (
            isinstance(doc, dict)
            and doc.get("stac_version") == "1.1.0"
            and doc.get("type")
            in (
                "Feature",
                "Catalog",
                "Collection",
            )
        ):
            out.append(path)
    return out


DOCUMENTS = corpus_documents()


def test_the_corpus_has_1_1_0_documents_of_every_kind() -> None:
    kinds = {json.loads(p.read_bytes())["type"] for p in DOCUMENTS}
    assert kinds == {"Feature", "Catalog", "Collection"} and len(DOCUMENTS) > 50


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.relative_to(CORPUS).as_posix())
def test_quiet_and_detailed_agree_on_the_corpus(path: Path) -> None:
    doc = json.loads(path.read_bytes())
    for url in schemas(doc):
        assert verdict(doc, url, detailed=False) == verdict(doc, url, detailed=True)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for n, value in enumerate(doc):
            out += _paths(value, (*prefix, n))
    return out


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_quiet_and_detailed_agree_on_damaged_documents(data: st.DataObject) -> None:
    """A real document with one value replaced (or removed): both say pass, or both say fail."""
    path = data.draw(st.sampled_from(DOCUMENTS[:40]))
    doc = json.loads(path.read_bytes())
    where = data.draw(st.sampled_from(_paths(doc)))
    damaged = copy.deepcopy(doc)
    holder = damaged
    for step in where[:-1]:
        holder = holder[step]
    if isinstance(holder, dict) and data.draw(st.booleans()):
        del holder[where[-1]]
    else:
        holder[where[-1]] = data.draw(JSON)
    for url in schemas(doc):
        quiet = verdict(damaged, url, detailed=False)
        assert quiet == verdict(damaged, url, detailed=True)
        if not quiet and damaged.get("stac_version") == doc["stac_version"]:  # explained, with the field
            with pytest.raises(InvalidStac, match=r"\(schema https://"):
                VALIDATOR.validate(damaged, identify(doc, file="x"), file="f.json")


def test_a_failure_names_the_field() -> None:
    item = json.loads((CORPUS / "rustac" / "spec-examples" / "v1.1.0" / "simple-item.json").read_bytes())
    item["assets"]["visual"]["roles"] = "visual"
    with pytest.raises(InvalidStac) as caught:
        VALIDATOR.validate(item, StacType.ITEM, file="f.json")
    assert caught.value.field == "assets.visual.roles" and "must be array" in caught.value.reason

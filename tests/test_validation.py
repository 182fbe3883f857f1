"""The schema validator (jsonschema-rs) gives the verdict of python-jsonschema, the validator
pystac uses, on every STAC 1.1.0 document of the corpus and on damaged copies of them; a
failure is explained with the field that is wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from stac_repository.errors import InvalidStac
from stac_repository.stac.document import StacType, identify
from stac_repository.stac.validation import _CORE, SchemaValidator

from .conftest import CORPUS

VALIDATOR = SchemaValidator(None)


REFERENCE: dict[str, Draft7Validator] = {}


def verdict(doc: Any, url: str) -> bool:
    validator = VALIDATOR._validator(url)
    assert validator is not None
    return bool(validator.is_valid(doc))


def reference_verdict(doc: Any, url: str) -> bool:
    """python-jsonschema's verdict, as pystac validates: no format checks."""
    if url not in REFERENCE:
        registry: Registry[Any] = Registry(
            retrieve=lambda uri: Resource.from_contents(VALIDATOR._load(uri), default_specification=DRAFT7)
        )
        REFERENCE[url] = Draft7Validator(VALIDATOR._load(url), registry=registry)
    return bool(REFERENCE[url].is_valid(doc))


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
def test_the_reference_agrees_on_the_corpus(path: Path) -> None:
    doc = json.loads(path.read_bytes())
    for url in schemas(doc):
        assert verdict(doc, url) == reference_verdict(doc, url)


# ASCII text without line breaks: JSON Schema's patterns are ECMA 262 regular expressions,
# where \w and \d are ASCII and $ ends the text; jsonschema-rs follows that, python-jsonschema
# runs them as Python's (Unicode classes, $ also before a final newline).
TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8)
# No infinities either: JSON has none (the parser refuses them), and jsonschema-rs, unlike
# python-jsonschema, does not count one as a number.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
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
def test_the_reference_agrees_on_damaged_documents(data: st.DataObject) -> None:
    """A real document with one value replaced (or removed): both say pass, or both say fail;
    a failure is explained."""
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
        passed = verdict(damaged, url)
        assert passed == reference_verdict(damaged, url)
        if not passed and damaged.get("stac_version") == doc["stac_version"]:  # explained, with the field
            with pytest.raises(InvalidStac, match=r"\(schema https://"):
                VALIDATOR.validate(damaged, identify(doc, file="x"), file="f.json")


def test_a_failure_names_the_field() -> None:
    item = json.loads((CORPUS / "rustac" / "spec-examples" / "v1.1.0" / "simple-item.json").read_bytes())
    item["assets"]["visual"]["roles"] = "visual"
    with pytest.raises(InvalidStac) as caught:
        VALIDATOR.validate(item, StacType.ITEM, file="f.json")
    assert caught.value.field == "assets.visual.roles" and "must be array" in caught.value.reason


def test_a_failure_only_jsonschema_rs_sees_is_explained_by_it() -> None:
    """ECMA 262's \\w is ASCII: a licence with an accented letter fails the collection schema's
    pattern, which fastjsonschema (Python's \\w) would let pass, so jsonschema-rs explains it."""
    collection = json.loads((CORPUS / "rustac" / "spec-examples" / "v1.1.0" / "collection.json").read_bytes())
    collection["license"] = "Licence-é"
    with pytest.raises(InvalidStac) as caught:
        VALIDATOR.validate(collection, StacType.COLLECTION, file="f.json")
    assert caught.value.field == "license" and "does not match" in caught.value.reason


def test_an_integer_may_be_written_as_a_float() -> None:
    """JSON Schema (and pystac's validation) count 2.0 as an integer."""
    item = json.loads((CORPUS / "rustac" / "spec-examples" / "v1.1.0" / "simple-item.json").read_bytes())
    url = f"https://schemas.stacspec.org/v1.1.0/{_CORE[StacType.ITEM]}"
    item["properties"]["statistics"] = {"count": 2.0}  # common metadata: an integer
    assert verdict(item, url) and reference_verdict(item, url)
    item["properties"]["statistics"] = {"count": 2.5}
    assert not verdict(item, url) and not reference_verdict(item, url)
    with pytest.raises(InvalidStac) as caught:
        VALIDATOR.validate(item, StacType.ITEM, file="f.json")
    assert caught.value.field == "properties.statistics.count"


def test_the_explanation_never_names_a_format() -> None:
    """fastjsonschema would first refuse the hrefs (not IRI references: a space), which the
    verdict does not check: the explanation names the real failure."""
    item = json.loads((CORPUS / "rustac" / "spec-examples" / "v1.1.0" / "simple-item.json").read_bytes())
    for asset in item["assets"].values():
        asset["href"] = "s3://bucket/user uploads/scene.tif"
    item["links"][0]["href"] = "s3://bucket/user uploads/catalog.json"
    VALIDATOR.validate(item, StacType.ITEM, file="f.json")  # valid as it is
    item["assets"]["visual"]["roles"] = "visual"
    with pytest.raises(InvalidStac) as caught:
        VALIDATOR.validate(item, StacType.ITEM, file="f.json")
    assert caught.value.field == "assets.visual.roles" and "must be array" in caught.value.reason

"""A bulk plan keeps its items' stored form in a temporary spool, not in memory: the bytes
come back exactly, and an item whose file changes between validation and planning is refused
with nothing stored."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stac_repository import Repository
from stac_repository.stac.spool import Spool

from .conftest import tree_digest
from .test_repository import collection, item, write


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=60), st.integers(min_value=2, max_value=512))
def test_spooled_bytes_come_back_exactly(docs: list[bytes], buffer: int) -> None:
    # Small buffers: documents straddle many flushes to the file.
    with Spool(buffer=buffer) as spool:
        handles = [spool.add(doc) for doc in docs]
        assert [h() for h in reversed(handles)] == list(reversed(docs))
        more = spool.add(b"after reading")  # appending after reads still works
        assert more() == b"after reading"
        assert [h() for h in handles] == docs


MUTATING = textwrap.dedent(
    """
    from pathlib import Path
    from stac_repository.processors.stac import discover, id, version, version_and_tree
    from stac_repository.processors.stac import process as stac_process

    __version__ = "1.0.0"

    def process(product):
        # After the product was loaded and validated (version_and_tree), one item changes.
        changed = Path(product).parent / "b.json"
        changed.write_text(changed.read_text().replace('"cloud": 1', '"cloud": 2'))
        return stac_process(product)
    """
)


@pytest.fixture
def mutating_processor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The processor above, importable as ``mutating`` for the duration of one test."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "stac_processor_mutating.py").write_text(MUTATING)
    monkeypatch.syspath_prepend(str(plugins))
    yield "mutating"
    sys.modules.pop("stac_processor_mutating", None)


@pytest.mark.parametrize("backend", ["file", "git"])
def test_an_item_changed_after_validation_is_refused(
    tmp_path: Path, mutating_processor: str, backend: str
) -> None:
    repo = Repository.init(tmp_path / "repo", backend=backend, id="root", description="d")
    before = tree_digest(tmp_path / "repo", skip_local=True)
    source = tmp_path / "src"
    items = [item("a", cloud=1), item("b", cloud=1)]
    for doc in items:
        write(source, f"{doc['id']}.json", doc)
    root = write(source, "collection.json", collection("c", items))

    report = repo.ingest([str(root)], processor=mutating_processor)

    (result,) = report.results
    assert result.status == "failed"
    assert result.step == "store"
    assert result.reason is not None
    assert result.reason.endswith("b.json: the file changed while it was being ingested; ingest it again")
    assert "\n" not in result.reason
    assert tree_digest(tmp_path / "repo", skip_local=True) == before  # nothing written, not even a blob
    assert repo.show("root")["document"]["links"] == [
        {"rel": "root", "href": "./catalog.json", "type": "application/json"}
    ]
    with pytest.raises(Exception, match="no object"):
        repo.show("c")
    # Ingested again, as the message says, the product goes in with the new content.
    again = repo.ingest([str(root)])
    assert again.results[0].status == "added"
    assert repo.show("b")["document"]["properties"]["cloud"] == 2
    assert json.loads((source / "b.json").read_text())["properties"]["cloud"] == 2

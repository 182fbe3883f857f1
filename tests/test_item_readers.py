"""Worker processes read a large product's items: the loaded tree, the schemas left unchecked,
every error and the stored repository are the same as when the main process reads them all."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stac_repository import Repository
from stac_repository.errors import InvalidStac
from stac_repository.forking import worker_count
from stac_repository.stac import itemreader
from stac_repository.stac.source import SourceNode, load_tree
from stac_repository.stac.validation import Checks, SchemaValidator

from .test_repository import collection, item, write

N = itemreader.MIN_ITEMS + 300
EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"


def product(
    root: Path, *, tweak: Callable[[list[dict[str, Any]], dict[str, Any], Path], None] | None = None
) -> Path:
    """A collection of N items, one folder each, some with an extension schema not cached offline;
    ``tweak(items, collection, root)`` changes it before it is written."""
    items = [item(f"it-{n:05d}", when=f"20{10 + n % 10}-01-01T00:00:00Z", cloud=n) for n in range(N)]
    for n, doc in enumerate(items):
        doc["assets"] = {"data": {"href": f"./it-{n:05d}.tif", "roles": ["data"]}}
        if n % 3 == 0:
            doc["stac_extensions"] = [EO]
    coll = collection("big")
    coll["links"] = [
        {"rel": "item", "href": f"./it-{n:05d}/it-{n:05d}.json", "title": f"n{n}"} for n in range(N)
    ]
    if tweak is not None:
        tweak(items, coll, root)
    for doc in items:
        folder = root / str(doc["id"])
        write(folder, f"{doc['id']}.json", doc)
        (folder / f"{doc['id']}.tif").write_bytes(b"tif " + str(doc["id"]).encode())
    return write(root, "collection.json", coll)


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the items that workers answered for (the real pool runs; only its answers are counted)."""
    counts: list[int] = []
    read = itemreader.ItemReaders.read

    def counting(self: itemreader.ItemReaders, files: Any) -> Iterator[Any]:
        for file, found in read(self, files):
            counts.append(found is not None)
            yield file, found

    monkeypatch.setattr(itemreader.ItemReaders, "read", counting)
    yield counts


def load(
    source: Path, workers: int, monkeypatch: pytest.MonkeyPatch, *, defer: bool = False
) -> tuple[Any, Checks]:
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", str(workers))
    checks = Checks(SchemaValidator(None), defer=defer)
    try:
        tree = load_tree(source, validate=checks, lazy_items=True)
    except InvalidStac as exc:
        return ("error", str(exc)), checks
    return describe(tree), checks


def describe(tree: SourceNode) -> list[tuple[Any, ...]]:
    return [
        (node.kind, node.id, node.filename, node.digest, node.doc, node.lazy, len(node.children))
        for node in tree.walk()
    ]


def test_workers_are_used_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The equivalence tests below mean something only if this machine starts workers."""
    monkeypatch.delenv("STAC_REPOSITORY_WORKERS", raising=False)
    assert threading.active_count() == 1
    assert worker_count() >= 1 or len(__import__("os").sched_getaffinity(0)) == 1
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", "3")
    assert worker_count() == 3
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", "0")
    assert worker_count() == 0


def test_no_workers_while_other_threads_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", "2")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert worker_count() == 0
    finally:
        stop.set()
        other.join()
    assert worker_count() == 2


def test_a_valid_product_loads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answered: list[int]
) -> None:
    def tweak(items: list[dict[str, Any]], coll: dict[str, Any], root: Path) -> None:
        links = coll["links"]
        links.insert(10, dict(links[5]))  # the same item linked twice
        # a nested catalog that also links an item the collection links later
        write(root / "sub", "catalog.json", {
            "type": "Catalog", "stac_version": "1.1.0", "id": "sub", "description": "d",
            "links": [{"rel": "item", "href": f"../it-{N - 1:05d}/it-{N - 1:05d}.json"}],
        })  # fmt: skip
        links.insert(20, {"rel": "child", "href": "./sub/catalog.json"})
        links.insert(30, {"rel": "item", "href": "./sub/catalog.json"})  # an "item" that is a catalog
        links.insert(40, {"rel": "item", "href": "https://example.com/remote.json"})

    source = product(tmp_path / "p", tweak=tweak)
    sequential, seq_checks = load(source, 0, monkeypatch)
    assert not answered
    parallel, par_checks = load(source, 2, monkeypatch)
    assert sum(answered) >= N - 2, "the workers answered for the items"
    assert parallel == sequential
    assert par_checks.unchecked == seq_checks.unchecked == {EO: len(range(0, N, 3))}


@pytest.mark.parametrize(
    "fault",
    ["schema", "structure", "missing", "not json", "leaves the folder", "old commons"],
)
@pytest.mark.parametrize("defer", [False, True])
def test_a_faulty_product_fails_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answered: list[int], fault: str, defer: bool
) -> None:
    def tweak(items: list[dict[str, Any]], coll: dict[str, Any], root: Path) -> None:
        victim = items[700]
        if fault == "schema":
            victim["assets"]["data"]["roles"] = "data"  # the schema wants an array
            items[900]["assets"]["data"]["roles"] = 3  # a later one: the first is reported
        elif fault == "structure":
            victim["properties"]["datetime"] = "yesterday"
        elif fault == "missing":
            coll["links"][700]["href"] = "./nowhere/x.json"
        elif fault == "not json":
            coll["links"][700]["href"] = "./junk.json"
            (root / "junk.json").parent.mkdir(parents=True, exist_ok=True)
            (root / "junk.json").write_text("{not json")
        elif fault == "leaves the folder":
            coll["links"][700]["href"] = "../elsewhere.json"
            write(root.parent, "elsewhere.json", item("elsewhere"))
        elif fault == "old commons":
            victim["stac_version"] = "0.8.0"
            victim["links"] = [{"rel": "collection", "href": "./absent-collection.json"}]

    source = product(tmp_path / "p", tweak=tweak)
    sequential, seq_checks = load(source, 0, monkeypatch, defer=defer)
    parallel, par_checks = load(source, 2, monkeypatch, defer=defer)
    assert sum(answered) >= 600, "the workers answered for the items before the fault"
    assert parallel == sequential
    assert str(par_checks.error) == str(seq_checks.error)
    reported = str(seq_checks.error) if seq_checks.error is not None else sequential[1]
    assert sequential[0] == "error" or seq_checks.error is not None, "the fault is found"
    if fault == "schema":
        assert "it-00700" in reported, "the first invalid item is the one reported"


@pytest.mark.parametrize("backend", ["git", "file"])
def test_the_stored_repository_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answered: list[int], backend: str
) -> None:
    source = product(tmp_path / "p")
    stored = []
    for workers in (0, 2):
        monkeypatch.setenv("STAC_REPOSITORY_WORKERS", str(workers))
        repo = Repository.init(tmp_path / f"r{workers}", backend=backend)
        report = repo.ingest([source])
        assert [r.status for r in report.results] == ["added"], report.results[0].reason
        assert report.results[0].warnings == [
            f"schemas not available offline, not validated: {EO} ({len(range(0, N, 3))})"
        ]
        out = tmp_path / f"export{workers}"
        repo.export(out)
        stored.append(
            {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
        )
    assert sum(answered) == N
    assert len(stored[0]) > 2 * N and stored[0] == stored[1]


def test_a_killed_worker_leaves_the_rest_to_the_main_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed mid-way (out of memory, say): the pool breaks and the main process reads
    the remaining items itself; the tree is the same."""
    source = product(tmp_path / "p")
    sequential, _ = load(source, 0, monkeypatch)
    monkeypatch.setenv("STAC_REPOSITORY_WORKERS", "2")
    read = itemreader._read_chunk

    def dying(files: list[str]) -> list[Any]:
        answers = read(files)
        if files[0].endswith("it-00512.json"):  # the third chunk: its worker dies with it
            os.kill(os.getpid(), signal.SIGKILL)
        return answers

    dying.__module__, dying.__qualname__ = itemreader.__name__, "_read_chunk"  # pickled by name
    monkeypatch.setattr(itemreader, "_read_chunk", dying)  # and inherited by the forked workers
    checks = Checks(SchemaValidator(None))
    tree = load_tree(source, validate=checks, lazy_items=True)
    assert describe(tree) == sequential


def _version_by_definition(source: Path) -> str:
    """The stac processor's version hash as its docstring defines it, from a full (not lazy)
    load: every document's path and sha256, and its local assets' size and mtime."""
    tree = load_tree(source)
    digest = hashlib.sha256()
    top = os.path.dirname(tree.filename)
    for node in tree.walk():
        digest.update(os.path.relpath(node.filename, top).encode())
        digest.update(node.digest.hex().encode())  # type: ignore[union-attr]
        for asset in (node.doc.get("assets") or {}).values():
            if "://" in asset["href"]:
                continue
            target = os.path.normpath(os.path.join(os.path.dirname(node.filename), asset["href"]))
            try:
                st = os.stat(target)
                digest.update(f"{target}:{st.st_size}:{st.st_mtime_ns}".encode())
            except FileNotFoundError:
                digest.update(f"{target}:missing".encode())
    return "sha256:" + digest.hexdigest()[:32]


def test_the_version_hash_is_the_same_with_and_without_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answered: list[int]
) -> None:
    """The items' asset stamps are taken where the items are read: by the workers, or by the
    main process; a missing asset file counts too."""
    from stac_repository.processors.stac import version_and_tree

    def tweak(items: list[dict[str, Any]], coll: dict[str, Any], root: Path) -> None:
        items[7]["assets"]["gone"] = {"href": "./never-written.tif"}
        items[8]["assets"]["remote"] = {"href": "https://example.com/x.tif"}

    source = product(tmp_path / "p", tweak=tweak)
    expected = _version_by_definition(source)
    versions = []
    for workers in (0, 2):
        monkeypatch.setenv("STAC_REPOSITORY_WORKERS", str(workers))
        version, tree = version_and_tree(str(source))
        assert tree is not None and all(node.stamp is None for node in tree.walk())  # taken
        versions.append(version)
    assert sum(answered) >= N - 1, "the workers answered for the items"
    assert versions == [expected, expected]
    (tmp_path / "p" / "it-00003" / "it-00003.tif").write_bytes(b"changed asset, other size")
    assert version_and_tree(str(source))[0] != expected

"""Hostile input: property-based STAC documents, escaping ids and hrefs, outside assets, JSON bombs.

Hypothesis builds products (an item, or a catalog with item children) with random fields and
types, unicode, huge numbers, deep values, and ids and hrefs crafted to escape: ``../``, absolute
paths, ``file://``, percent-encoding, Windows separators, NUL bytes, reserved names (``.git``,
``CON``), symlinks to a secret file outside the product. Each example is ingested into a fresh
repository (both backends) and must end in one of two ways:

* accepted: the stored document is found by id, holds the fields it was given, and every file
  written is a regular file inside the repository;
* rejected: a StacRepositoryError or a failed product with a one-line reason that is not a bare
  Python exception ("KeyError: ...", which means the input reached code that did not expect it).

Always: no write outside the repository (a sentinel folder, the secret's folder, the product's
own folder and the parent folder stay byte-identical), the secret is never copied unless
``assets.allow_outside`` is true, and the repository still exports to a walkable catalog.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from stac_repository import Repository
from stac_repository.errors import Conflict, StacRepositoryError

from .conftest import BIN, walk_list

RAW_EXCEPTION = re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception|Exit|Interrupt): ")
FAST = 100
SLOW = 600

# -- the world around the repository -------------------------------------------------------------


@dataclass
class World:
    root: Path
    secret: Path  # a file outside every product: must never be copied unless allowed
    secret_sha: str
    watched: dict[str, str]  # files outside the repositories that must not change
    counter: list[int]

    def fresh(self, name: str) -> Path:
        self.counter[0] += 1
        path = self.root / "work" / f"{name}-{self.counter[0]}"
        path.mkdir(parents=True)
        return path


def _digest_tree(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def _watched(root: Path) -> dict[str, str]:
    """The sentinel and outside folders, and every name in the world's top folder."""
    out = {f"sentinel/{k}": v for k, v in _digest_tree(root / "sentinel").items()}
    out.update({f"outside/{k}": v for k, v in _digest_tree(root / "outside").items()})
    out.update({f"top/{p.name}": "" for p in root.iterdir()})
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("hostile")
    (root / "work").mkdir()
    for name in ("sentinel", "outside"):
        folder = root / name
        folder.mkdir()
        catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": name, "description": "x", "links": []}
        (folder / "catalog.json").write_text(json.dumps(catalog))
        (folder / "notes.txt").write_text(f"{name}\n")
    secret = root / "outside" / "secret.bin"
    secret.write_bytes(b"SECRET-" + os.urandom(64))
    return World(root, secret, hashlib.sha256(secret.read_bytes()).hexdigest(), _watched(root), [0])


# -- strategies ---------------------------------------------------------------------------------

HOSTILE_IDS = [
    "../x",
    "../../etc/passwd",
    "/etc/passwd",
    "file:///etc/passwd",
    "..",
    ".",
    ".git",
    ".stac-repository",
    ".gitattributes",
    ".gitmodules",
    "CON",
    "con.json",
    "NUL",
    "aux.txt",
    "COM1",
    "LPT9.tif",
    "a/b",
    "a\\b",
    "C:\\x",
    "catalog.json",
    "collection.json",
    "x\x00y",
    " ",
    "\t",
    "\n",
    "~",
    "-rf",
    "$(touch pwned)",
    "%2e%2e%2fx",
    "\u202egnp.exe",
    "😀" * 30,
    "a" * 300,
    "é" * 200,
    "root",
    "Root",
]

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)


@dataclass
class Href:
    """An href and what to create in the product folder for it (``kind`` names the case)."""

    kind: str
    make: Callable[[Path, World], str]


def _inside(p: Path, w: World) -> str:
    (p / "data.bin").write_bytes(b"inside data\n")
    return "./data.bin"


def _dotted_inside(p: Path, w: World) -> str:
    (p / "sub").mkdir(exist_ok=True)
    (p / "data.bin").write_bytes(b"inside data\n")
    return "./sub/../data.bin"


def _symlink_to_secret(p: Path, w: World) -> str:
    if not (p / "link.bin").is_symlink():
        (p / "link.bin").symlink_to(w.secret)
    return "./link.bin"


def _symlinked_folder(p: Path, w: World) -> str:
    if not (p / "dirlink").is_symlink():
        (p / "dirlink").symlink_to(w.secret.parent, target_is_directory=True)
    return "./dirlink/secret.bin"


HREFS = [
    Href("inside", _inside),
    Href("inside-dotted", _dotted_inside),
    Href("inside-windows", lambda p, w: _inside(p, w).replace("/", "\\")),
    Href("absolute-secret", lambda p, w: str(w.secret)),
    Href("file-url-secret", lambda p, w: f"file://{w.secret}"),
    Href("relative-secret", lambda p, w: os.path.relpath(w.secret, p)),
    Href("relative-secret-windows", lambda p, w: os.path.relpath(w.secret, p).replace("/", "\\")),
    Href("percent-secret", lambda p, w: os.path.relpath(w.secret, p).replace(".", "%2e").replace("/", "%2f")),
    Href("symlink-secret", _symlink_to_secret),
    Href("symlinked-folder-secret", _symlinked_folder),
    Href("nul", lambda p, w: _inside(p, w) + "\x00.txt"),
    Href("drive", lambda p, w: "C:\\Windows\\system.ini"),
    Href("unc", lambda p, w: "\\\\server\\share\\x.tif"),
    Href("remote", lambda p, w: "https://example.com/x.tif"),
    Href("s3", lambda p, w: "s3://bucket/key.tif"),
    Href("dot", lambda p, w: "."),
    Href("dotdot", lambda p, w: ".."),
    Href("slash", lambda p, w: "/"),
    Href("etc", lambda p, w: "/etc/hostname"),
    Href("query", lambda p, w: _inside(p, w) + "?x=1#frag"),
]


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``value`` (19 times in 20), sometimes any JSON value at all."""
    return st.integers(0, 19).flatmap(lambda n: JSON_VALUES if n == 0 else value)


LINKS = st.lists(
    st.fixed_dictionaries(
        {
            "rel": st.sampled_from(["related", "license", "via", "alternate"])
            | st.text(min_size=1, max_size=8),
            "href": st.sampled_from(
                ["../outside/catalog.json", "/etc/passwd", "https://example.com/x", "./x"]
            )
            | st.text(min_size=1, max_size=20),
        }
    ),
    max_size=3,
)


@st.composite
def hrefs(draw: st.DrawFn) -> Href:
    """An href of any kind; one in three points at a file inside the product."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        text = draw(st.text(max_size=30))
        return Href("random", lambda p, w: text)
    if choice <= 3:
        return draw(st.sampled_from(HREFS[:3]))
    return draw(st.sampled_from(HREFS))


KNOWN_KEYS = st.sampled_from(["stac_extensions", "collection", "title", "description", "license", "extent"])
"""Extra fields that code reads: given any JSON value (``"stac_extensions": 5`` once raised a
TypeError from validation)."""


@st.composite
def items(draw: st.DrawFn, ident: str | None = None) -> tuple[dict[str, Any], list[Href]]:
    """A near-valid item with random extras; the assets' hrefs are made when it is written."""
    ident = ident or draw(st.sampled_from(HOSTILE_IDS) | st.text(min_size=1, max_size=40))
    props: dict[str, Any] = {"datetime": draw(_maybe(st.just("2020-01-01T00:00:00Z")))}
    props.update(draw(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=4)))
    x = draw(st.floats(-180, 179, allow_nan=False))
    doc: dict[str, Any] = {
        "type": draw(_maybe(st.just("Feature"))),
        "stac_version": draw(_maybe(st.sampled_from(["1.0.0", "1.1.0", "0.9.0"]))),
        "id": ident,
        "geometry": draw(_maybe(st.just({"type": "Point", "coordinates": [x, 0.0]}))),
        "bbox": draw(_maybe(st.just([x, 0.0, x, 0.0]))),
        "properties": draw(_maybe(st.just(props))),
        "links": draw(_maybe(LINKS)),
    }
    doc.update(draw(st.dictionaries(KNOWN_KEYS | st.text(max_size=10), JSON_VALUES, max_size=3)))
    refs = draw(st.lists(hrefs(), max_size=2))
    return doc, refs


@dataclass
class Product:
    root: dict[str, Any]
    root_refs: list[Href]
    children: list[tuple[dict[str, Any], list[Href], str]]  # item, asset hrefs, link href


@st.composite
def products(draw: st.DrawFn) -> Product:
    if draw(st.booleans()):
        doc, refs = draw(items())
        return Product(doc, refs, [])
    ident = draw(st.sampled_from(HOSTILE_IDS) | st.text(min_size=1, max_size=40))
    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": ident,
        "description": draw(_maybe(st.text(max_size=20))),
        "links": [],
    }
    children = []
    for n in range(draw(st.integers(1, 3))):
        child, refs = draw(items())
        link = draw(
            st.sampled_from(
                [f"./c{n}/item.json"] * 3
                + [f"c{n}/item.json", f".\\c{n}\\item.json", "../outside/catalog.json"]
            )
        )
        children.append((child, refs, link))
    return Product(catalog, [], children)


# -- writing a product and checking the outcome ------------------------------------------------


def _with_assets(doc: dict[str, Any], refs: list[Href], folder: Path, world: World) -> dict[str, Any]:
    """Items get an ``assets`` object (required), with one asset per href."""
    if not refs and doc.get("type") != "Feature":
        return doc
    return {**doc, "assets": {f"a{n}": {"href": ref.make(folder, world)} for n, ref in enumerate(refs)}}


def write_product(product: Product, folder: Path, world: World) -> Path:
    """The product's files under ``folder``; the path of its root document."""
    root = _with_assets(product.root, product.root_refs, folder, world)
    for n, (child, refs, link) in enumerate(product.children):
        sub = folder / f"c{n}"
        sub.mkdir()
        (sub / "item.json").write_text(json.dumps(_with_assets(child, refs, sub, world)))
        root["links"].append({"rel": "item", "href": link})
    name = "catalog.json" if product.children else "item.json"
    (folder / name).write_text(json.dumps(root))
    return folder / name


def _one_line(reason: str) -> None:
    assert "\n" not in reason.strip(), f"reason spans lines: {reason!r}"
    assert not RAW_EXCEPTION.search(reason), f"unwrapped exception: {reason}"


def _files_inside(repo: Path) -> list[Path]:
    files = []
    for path in repo.rglob("*"):
        assert not path.is_symlink(), f"symlink in the repository: {path}"
        assert repo in Path(os.path.realpath(path)).parents
        if path.is_file():
            files.append(path)
    return files


def _same(stored: Any, given: Any) -> bool:
    """Equal as JSON values with their types: 2**70 is not 1.1805916207174113e+21."""
    if isinstance(given, dict):
        return (
            isinstance(stored, dict)
            and stored.keys() == given.keys()
            and all(_same(stored[k], given[k]) for k in given)
        )
    if isinstance(given, list):
        return isinstance(stored, list) and len(stored) == len(given) and all(map(_same, stored, given))
    return type(stored) is type(given) and bool(stored == given)


def check_stored(repo: Repository, source: Path) -> None:
    """The accepted root document is found by id and holds the fields it was given."""
    given = json.loads(source.read_text())  # Python's parser: exact integers
    try:
        shown = repo.show(given["id"])
    except Conflict as exc:  # the same id stored twice (e.g. a product called "root")
        assert "ambiguous" in str(exc)
        return
    stored = shown["document"]
    assert stored["id"] == given["id"]
    rewritten = {"links", "assets", "collection", "extent"}
    for key, value in given.items():
        if key not in rewritten:
            assert key in stored and _same(stored[key], value), f"{key!r} stored as {stored.get(key)!r}"


def ingest_and_check(
    world: World, backend: str, product: Product, *, allow_outside: bool = False
) -> tuple[str, bool]:
    """Ingest ``product`` into a fresh repository and check every invariant; returns the outcome
    (accepted, rejected or refused) and whether the secret was copied."""
    work = world.fresh(backend)
    folder = work / "product"
    folder.mkdir()
    source = write_product(product, folder, world)
    product_before = _digest_tree(folder)
    repo = Repository.init(
        work / "repo", backend=backend, id="root", description="hostile", options={"fsync": False}
    )
    repo.set_config("fsync", "false")
    if allow_outside:
        repo.set_config("assets.allow_outside", "true")
    try:
        report = repo.ingest([str(source)])
    except StacRepositoryError as exc:
        _one_line(str(exc))
        outcome = "refused"
    except Exception as exc:
        raise AssertionError(f"ingest raised {type(exc).__name__}: {exc}") from exc
    else:
        (result,) = report.results
        assert result.status in ("added", "failed"), result
        if result.status == "failed":
            assert result.reason
            _one_line(result.reason)
            outcome = "rejected"
        else:
            check_stored(repo, source)
            outcome = "accepted"
    assert _watched(world.root) == world.watched, "something outside the repository changed"
    assert _digest_tree(folder) == product_before, "the product's own folder changed"
    copied = [f for f in _files_inside(work / "repo") if f.stat().st_size == world.secret.stat().st_size]
    leaked = [f for f in copied if hashlib.sha256(f.read_bytes()).hexdigest() == world.secret_sha]
    if not allow_outside:
        assert not leaked, f"the outside secret was copied into the repository: {leaked}"
    # Never a corrupted repository: it exports to a catalog that walks with no dangling link.
    reopened = Repository.open(work / "repo")
    reopened.export(work / "export")
    walk_list(work / "export" / "catalog.json")
    reopened.backend.close()
    repo.backend.close()
    shutil.rmtree(work)
    return outcome, bool(leaked)


SETTINGS: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "phases": [Phase.explicit, Phase.generate],  # no shrinking: it costs minutes per failure
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@pytest.mark.parametrize("backend", ["file", "git"])
@settings(max_examples=FAST, derandomize=True, **SETTINGS)
@given(product=products())
def test_hostile_products(world: World, backend: str, product: Product) -> None:
    event(ingest_and_check(world, backend, product)[0])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["file", "git"])
@settings(max_examples=SLOW, **SETTINGS)
@given(product=products())
def test_hostile_products_slow(world: World, backend: str, product: Product) -> None:
    event(ingest_and_check(world, backend, product)[0])


# -- deterministic cases ------------------------------------------------------------------------


def _item(ident: str, **extra: Any) -> dict[str, Any]:
    doc = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": ident,
        "geometry": None,
        "properties": {"datetime": "2020-01-01T00:00:00Z"},
        "links": [],
        "assets": {},
    }
    return {**doc, **extra}


@pytest.mark.parametrize("backend", ["file", "git"])
@pytest.mark.parametrize("href", [h for h in HREFS if "secret" in h.kind], ids=lambda h: h.kind)
def test_outside_assets_are_never_read(world: World, backend: str, href: Href) -> None:
    """Every way to point an asset at the secret outside the product: refused and not copied."""
    outcome, _ = ingest_and_check(world, backend, Product(_item("outside"), [href], []))
    assert outcome == "rejected"


@pytest.mark.parametrize("backend", ["file", "git"])
def test_outside_assets_are_copied_when_allowed(world: World, backend: str) -> None:
    """The control: with assets.allow_outside the secret is copied (so the checks above can see it)."""
    href = next(h for h in HREFS if h.kind == "absolute-secret")
    outcome, copied = ingest_and_check(
        world, backend, Product(_item("allowed"), [href], []), allow_outside=True
    )
    assert outcome == "accepted" and copied


@pytest.mark.parametrize("backend", ["file", "git"])
def test_huge_integers_are_stored_exactly_or_refused(world: World, backend: str) -> None:
    """JSON integers beyond 64 bits (valid JSON, found by the property test): stored as given, or
    rejected with a clear reason, never silently rounded to a float."""
    doc = _item("big-number", properties={"datetime": "2020-01-01T00:00:00Z", "count": 2**70 + 1})
    ingest_and_check(world, backend, Product(doc, [], []))


@pytest.mark.parametrize("backend", ["file", "git"])
@pytest.mark.parametrize("where", ["asset", "link"])
def test_nul_bytes_in_hrefs(world: World, backend: str, where: str) -> None:
    """An href with a NUL byte (valid JSON: "\\u0000", found by the property test): rejected
    with a clear reason, or kept as a remote-looking string, never a ValueError."""
    folder_href = "./data.bin\x00.txt"
    if where == "asset":
        product = Product(_item("nul-asset"), [Href("nul", lambda p, w: _inside(p, w) + "\x00.txt")], [])
    else:
        product = Product(_item("nul-link", links=[{"rel": "related", "href": folder_href}]), [], [])
    ingest_and_check(world, backend, product)


@pytest.mark.parametrize("backend", ["file", "git"])
@pytest.mark.parametrize(
    "fields",
    [
        {"stac_extensions": 5},
        {"stac_extensions": "https://stac-extensions.github.io/eo/v1.1.0/schema.json"},
        {"stac_extensions": [5, None]},
        {"stac_extensions": {"asset": True}, "stac_version": "0.9.0"},
        {"collection": ["c"]},
    ],
    ids=lambda f: json.dumps(f)[:40],
)
def test_wrongly_typed_known_fields(world: World, backend: str, fields: dict[str, Any]) -> None:
    """``"stac_extensions": 5`` reached validation code that iterated it: 'TypeError: 'int'
    object is not iterable'. Now the schema says what is wrong (or the field is ignored)."""
    ingest_and_check(world, backend, Product(_item("typed", **fields), [], []))


@pytest.mark.parametrize("backend", ["file", "git"])
def test_item_without_assets_in_a_pre_1_0_version(world: World, backend: str) -> None:
    """A STAC 0.9.0 item with eo:bands but without ``assets`` (a required field; found by the
    property test): rejected, or stored so that the exported catalog still loads in pystac."""
    doc = _item(
        "no-assets",
        stac_version="0.9.0",
        geometry={"type": "Point", "coordinates": [1.0, 0.0]},
        bbox=[1.0, 0.0, 1.0, 0.0],
        properties={"datetime": "2020-01-01T00:00:00Z", "eo:bands": [{"name": "b1"}]},
    )
    ingest_and_check(world, backend, Product(doc, [], []))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("backend", ["file", "git"])
@pytest.mark.parametrize("depth", [200, 300, 1000, 100_000])
def test_deep_nesting(world: World, backend: str, depth: int) -> None:
    """A property nested ``depth`` levels deep: stored, or rejected with a clear limit."""
    text = json.dumps(_item(f"deep-{depth}")).replace('"links"', f'"deep": {_nested(depth)}, "links"')
    folder = world.fresh("deep")
    (folder / "item.json").write_text(text)
    repo = Repository.init(folder / "repo", backend=backend, description="deep", options={"fsync": False})
    (result,) = repo.ingest([str(folder / "item.json")]).results
    if result.status == "failed":
        assert result.reason
        _one_line(result.reason)
        assert "nest" in result.reason or "depth" in result.reason, result.reason
    else:
        assert result.status == "added"
        stored = repo.show(f"deep-{depth}")["document"]["deep"]
        n = 0
        while stored:
            stored, n = stored[0], n + 1
        assert n == depth - 1
    repo.export(folder / "export")


def _peak_rss(
    *args: str | os.PathLike[str], timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the CLI under a small Python parent whose only child it is: its peak RSS in KiB."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr)\n"
        "sys.stderr.write(f'\\nPEAK {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n')\n"
        "sys.exit(p.returncode)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, str(BIN / "stac-repository"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    peak = int(proc.stderr.rsplit("PEAK ", 1)[1].split()[0])
    proc.stderr = proc.stderr.rsplit("\nPEAK ", 1)[0]
    return proc, peak


def _giant_item(path: Path, links: int) -> int:
    hrefs = [{"rel": "related", "href": f"https://example.com/{n}"} for n in range(links)]
    path.write_text(json.dumps(_item("giant", links=hrefs)))
    return path.stat().st_size


def _large_document(tmp_path: Path, links: int, max_rss_mib: int) -> None:
    repo = tmp_path / "repo"
    Repository.init(repo, description="large")
    size = _giant_item(tmp_path / "item.json", links)
    proc, peak = _peak_rss("-r", repo, "ingest", tmp_path / "item.json")
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    print(f"{size / 2**20:.1f} MiB document, {links} links: exit {proc.returncode}, peak {peak // 1024} MiB")
    assert peak < max_rss_mib * 1024, f"peak RSS {peak // 1024} MiB for a {size / 2**20:.1f} MiB document"


def test_oversized_document_is_refused_cheaply(tmp_path: Path) -> None:
    """Over the 64 MiB document limit: refused before parsing, in little memory and time."""
    repo = tmp_path / "repo"
    Repository.init(repo, description="large")
    with open(tmp_path / "item.json", "wb") as fh:
        fh.truncate(65 * 2**20)
    proc, peak = _peak_rss("-r", repo, "ingest", tmp_path / "item.json", timeout=30)
    assert proc.returncode == 1 and "document limit" in proc.stderr, proc.stdout + proc.stderr
    assert peak < 200 * 1024


def test_large_document_memory_is_bounded(tmp_path: Path) -> None:
    """A 16 MiB document (280k links): handled within 512 MiB."""
    _large_document(tmp_path, 280_000, 512)


@pytest.mark.slow
def test_document_at_the_limit_memory_is_bounded(tmp_path: Path) -> None:
    """A document just under the 64 MiB limit (1.1M links): handled within 1.5 GiB."""
    _large_document(tmp_path, 1_100_000, 1536)


@pytest.mark.parametrize("backend", ["file", "git"])
def test_deep_catalog_with_long_ids(world: World, backend: str) -> None:
    """45 nested catalogs with 90-character ids: a stored path longer than PATH_MAX. Accepted and
    usable, or refused with one line; never a repository that no command can open afterwards."""
    work = world.fresh("longpath")
    path = work / "product"
    for n in range(45):
        path.mkdir(parents=True)
        doc = {"type": "Catalog", "stac_version": "1.0.0", "id": f"{n:02d}" + "x" * 88, "description": "d"}
        doc["links"] = [{"rel": "child", "href": "./c/catalog.json"}] if n < 44 else []
        (path / "catalog.json").write_text(json.dumps(doc))
        path = path / "c"
    repo = Repository.init(work / "repo", backend=backend, description="long", options={"fsync": False})
    (result,) = repo.ingest([str(work / "product" / "catalog.json")]).results
    if result.status == "failed":
        assert result.reason
        _one_line(result.reason)
    after = Repository.open(work / "repo")  # the next commands work
    after.set_config("layout.max_items", "10")
    after.export(work / "export")
    assert _watched(world.root) == world.watched


def test_item_collection_features_cannot_reach_outside(world: World) -> None:
    """Features of an ItemCollection (``file#n`` products) with hostile ids and asset hrefs
    relative to the collection file: nothing outside is copied, no temporary is left behind."""
    work = world.fresh("features")
    (work / "data.bin").write_bytes(b"inside\n")
    features = [
        _item("../f0", assets={"a": {"href": os.path.relpath(world.secret, work)}}),
        _item(".git", assets={"a": {"href": str(world.secret)}}),
        _item("f2", assets={"a": {"href": "./data.bin"}}),
    ]
    (work / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    repo = Repository.init(work / "repo", description="features", options={"fsync": False})
    scratch = set(Path(tempfile.gettempdir()).glob("stac-repository-feature-*"))
    results = repo.ingest([str(work / "items.json")]).results
    assert [r.status for r in results] == ["failed", "failed", "added"], [r.to_json() for r in results]
    for result in results:
        if result.reason:
            _one_line(result.reason)
    assert set(Path(tempfile.gettempdir()).glob("stac-repository-feature-*")) <= scratch
    assert _watched(world.root) == world.watched
    hashes = {hashlib.sha256(f.read_bytes()).hexdigest() for f in _files_inside(work / "repo")}
    assert world.secret_sha not in hashes


def test_hostile_ids_through_the_cli(world: World) -> None:
    """Every hostile id as an item, in one run of the real CLI (each product its own transaction):
    each is added, or fails with one line; exit 1 when any failed; no traceback."""
    work = world.fresh("cli")
    repo = work / "repo"
    Repository.init(repo, description="cli", options={"fsync": False})
    sources = []
    for n, ident in enumerate(HOSTILE_IDS):
        folder = work / f"p{n}"
        folder.mkdir()
        (folder / "item.json").write_text(json.dumps(_item(ident)))
        sources.append(str(folder / "item.json"))
    env = {k: v for k, v in os.environ.items() if k != "STAC_REPOSITORY"}
    proc = subprocess.run(
        [str(BIN / "stac-repository"), "-r", str(repo), "ingest", *sources],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed ")]
    added = [line for line in proc.stdout.splitlines() if line.startswith("added ")]
    assert len(failed) + len(added) == len(HOSTILE_IDS), proc.stdout + proc.stderr
    assert proc.returncode == (1 if failed else 0)
    for line in failed:
        _one_line(line)
    assert _watched(world.root) == world.watched
    _files_inside(repo)
    Repository.open(repo).export(work / "export")
    assert len(walk_list(work / "export" / "catalog.json")) == 1 + len(added)

"""Third-party processors through the real CLI.

Two tiny distributions under ``tests/processor_packages`` are built and installed by the
session fixture into a folder of their own (put on ``PYTHONPATH`` of the commands under test,
so the shared virtual environment is never modified):

* ``stac-processor-demo``: the module ``stac_processor_demo`` (found by its name, as the
  original tool found processors) and ``stac_processor_broken``, which fails at import;
* ``stac-repository-demo-ep``: the object ``demo_ep_processor:processor`` registered in the
  ``stac_repository.processors`` entry-point group as ``demo_ep``, and ``demo_ep_broken``,
  an entry point whose module fails at import.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_cli, walk_list

PACKAGES = Path(__file__).parent / "processor_packages"
DEMO_PREFIX = "stac-processor-demo-"

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo distributions, built from source and installed into a folder of their own."""
    site = tmp_path_factory.mktemp("plugin-site")
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-input", "--target", str(site)]
    if importlib.util.find_spec("hatchling") is not None:
        command.append("--no-build-isolation")  # else pip fetches hatchling from the index
    command += [str(PACKAGES / "stac-processor-demo"), str(PACKAGES / "demo-ep")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"installing the demo processors failed:\n{proc.stdout}\n{proc.stderr}"
    return site


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """The commands' temporary folder (TMPDIR), to see what processors leave behind."""
    path = tmp_path / "scratch"
    path.mkdir()
    return path


@pytest.fixture
def cli(plugin_site: Path, scratch: Path) -> Cli:
    """``run_cli`` with the demo processors installed."""
    path = os.pathsep.join(p for p in (str(plugin_site), os.environ.get("PYTHONPATH")) if p)

    def run(*args: str | os.PathLike[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env={"PYTHONPATH": path, "TMPDIR": str(scratch)}, **kwargs)

    return run


def make_repo(cli: Cli, path: Path, backend: str = "file") -> Path:
    """A repository whose catalog folder can be read as files (git: with a working tree)."""
    layout = ["--worktree"] if backend == "git" else []
    cli(
        "-r",
        path,
        "--backend",
        backend,
        "init",
        "--yes",
        *layout,
        "--id",
        "root",
        "--description",
        "d",
        check=True,
    )
    return path


def point(folder: Path, name: str, *, lon: float = 5.7, lat: float = 45.2, **fields: str) -> Path:
    """A product of the demo processor."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = {"id": name, "lon": str(lon), "lat": str(lat), "datetime": "2024-05-01T10:00:00Z", **fields}
    path = folder / f"{name}.point"
    path.write_text("".join(f"{key}: {value}\n" for key, value in lines.items()))
    return path


def ingest(cli: Cli, repo: Path, *args: str | os.PathLike[str], expect: int = 0) -> dict[str, str]:
    """Ingest with --json; return each product's status by id (or product, when it has no id)."""
    proc = cli("-r", repo, "ingest", "--json", *args)
    assert proc.returncode == expect, proc.stderr
    assert "Traceback" not in proc.stderr
    return {p.get("id") or p["product"]: p["status"] for p in json.loads(proc.stdout)["products"]}


def leftovers(scratch: Path) -> list[str]:
    return sorted(p.name for p in scratch.iterdir() if p.name.startswith(DEMO_PREFIX))


def rows_by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows}


@pytest.mark.parametrize("command", ["stac-repository", "stac-processor"])
def test_show_processors_lists_plugins_and_broken_ones(cli: Cli, command: str) -> None:
    rows = rows_by_name(json.loads(cli("show-processors", "--json", command=command, check=True).stdout))
    assert rows["demo"] == {"name": "demo", "origin": "module stac_processor_demo", "version": "0.1.0"}
    assert rows["demo_ep"] == {
        "name": "demo_ep",
        "origin": "entry point demo_ep_processor:processor",
        "version": "0.2.0",
    }
    assert rows["stac"]["version"] == "1.0.0" and rows["raster"]["version"] == "1.0.0"
    for name in ("broken", "demo_ep_broken"):
        assert "version" not in rows[name]
        assert "ImportError" in rows[name]["error"] and "no_such_dependency" in rows[name]["error"]
    text = cli("show-processors", command=command, check=True).stdout
    lines = {line.split()[0]: line for line in text.splitlines()}
    assert "0.1.0" in lines["demo"] and "0.2.0" in lines["demo_ep"]
    assert "BROKEN" in lines["broken"] and "BROKEN" in lines["demo_ep_broken"]


def test_broken_plugins_break_nothing_else(cli: Cli, tmp_path: Path) -> None:
    repo = make_repo(cli, tmp_path / "repo")
    product = point(tmp_path / "products", "p1")
    assert ingest(cli, repo, "--processor", "demo", product) == {"p1": "added"}
    for name, command, args in (
        ("broken", "stac-repository", ("-r", repo, "ingest", "--processor", "broken", product)),
        (
            "demo_ep_broken",
            "stac-repository",
            ("-r", repo, "ingest", "--processor", "demo_ep_broken", product),
        ),
        ("broken", "stac-processor", ("--processor", "broken", "id", product)),
    ):
        proc = cli(*args, command=command)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.splitlines() == [
            f"error: processor {name!r} failed to load: ImportError: "
            f"{'stac_processor_broken' if name == 'broken' else 'demo_ep_processor.broken'} needs the "
            "library 'no_such_dependency', which is not installed"
        ]
    assert cli("-r", repo, "show", "p1", check=True).stdout


def test_stac_processor_steps(cli: Cli, tmp_path: Path, scratch: Path) -> None:
    products = tmp_path / "products"
    b, a = point(products / "sub", "b"), point(products, "a", lat=-12.5)
    (products / "notes.txt").write_text("not a product")

    def step(processor: str, *args: str | os.PathLike[str]) -> str:
        return cli("--processor", processor, *args, command="stac-processor", check=True).stdout

    assert json.loads(step("demo", "discover", "--json", products)) == [str(a), str(b)]
    assert step("demo", "id", a).strip() == "a"
    version = step("demo", "version", a).strip()
    assert len(version) == 16
    out = json.loads(step("demo", "process", "--json", a))
    assert out["document"]["geometry"] == {"type": "Point", "coordinates": [5.7, -12.5]}
    assert Path(out["path"]).parent.parent == scratch

    table = products / "stations.csv"
    table.write_text("id,lon,lat,datetime\ns1,1.5,2.5,2024-01-01T00:00:00Z\ns2,3,4,2024-01-02T00:00:00Z\n")
    assert step("demo_ep", "discover", products).split() == [f"{table}#0", f"{table}#1"]
    assert step("demo_ep", "id", f"{table}#1").strip() == "s2"
    assert step("demo_ep", "version", f"{table}#1").strip()
    assert json.loads(step("demo_ep", "process", "--json", f"{table}#1"))["document"]["bbox"] == [3, 4, 3, 4]


def test_ingest_skip_and_update_with_a_module_processor(cli: Cli, tmp_path: Path, scratch: Path) -> None:
    repo = make_repo(cli, tmp_path / "repo", backend="git")
    products = tmp_path / "products"
    for n in range(3):
        point(products, f"p{n}", lon=5.0 + n)
    assert ingest(cli, repo, "--processor", "demo", products) == {"p0": "added", "p1": "added", "p2": "added"}
    assert leftovers(scratch) == [], "ingest must remove the processor's temporary output"

    # The product version is recorded: in the id index (show) and in the commit message.
    version = cli("--processor", "demo", "version", products / "p1.point", command="stac-processor")
    stored = json.loads(cli("-r", repo, "show", "p1", check=True).stdout)
    assert stored["version"] == version.stdout.strip()
    assert stored["processor"] == "demo 0.1.0"
    history = cli("-r", repo, "history", check=True).stdout
    assert f"ingest p1 (demo 0.1.0, version {stored['version']})" in history

    # The item as the processor made it, with both local assets copied into the repository.
    doc = stored["document"]
    assert doc["geometry"] == {"type": "Point", "coordinates": [6.0, 45.2]}
    assert {key: a["href"] for key, a in doc["assets"].items()} == {
        "data": "./p1.geojson",
        "source": "./p1.point",
    }
    folder = Path(stored["path"]).parent
    assert (repo / folder / "p1.point").read_bytes() == (products / "p1.point").read_bytes()
    assert json.loads((repo / folder / "p1.geojson").read_text())["type"] == "Point"

    # Same products, same versions: all skipped, no commit.
    assert set(ingest(cli, repo, "--processor", "demo", products).values()) == {"skipped"}
    assert cli("-r", repo, "history", check=True).stdout == history

    # A new version of one product updates exactly that one.
    point(products, "p1", lon=7.25)
    assert ingest(cli, repo, "--processor", "demo", products) == {
        "p0": "skipped",
        "p1": "updated",
        "p2": "skipped",
    }
    updated = json.loads(cli("-r", repo, "show", "p1", check=True).stdout)
    assert updated["version"] != stored["version"]
    assert updated["document"]["geometry"]["coordinates"] == [7.25, 45.2]
    assert (
        cli("-r", repo, "history", check=True)
        .stdout.splitlines()[0]
        .endswith(f"update p1 (demo 0.1.0, version {updated['version']})")
    )
    assert leftovers(scratch) == []


def test_ingest_with_an_entry_point_processor(cli: Cli, tmp_path: Path, scratch: Path) -> None:
    repo = make_repo(cli, tmp_path / "repo")
    table = tmp_path / "products" / "stations.csv"
    table.parent.mkdir()
    header = "id,lon,lat,datetime,fail\n"
    rows = [
        "s1,1.5,2.5,2024-01-01T00:00:00Z,\n",
        "s2,3,4,2024-01-02T00:00:00Z,\n",
        "s3,5,6,2024-01-03T00:00:00Z,\n",
    ]
    table.write_text(header + "".join(rows))
    expected = {"s1": "added", "s2": "added", "s3": "added"}
    assert ingest(cli, repo, "--processor", "demo_ep", table.parent) == expected
    assert set(ingest(cli, repo, "--processor", "demo_ep", table.parent).values()) == {"skipped"}

    # Editing one row is a new version of that product only; a failing row fails alone.
    rows[1] = "s2,3,4.5,2024-01-02T00:00:00Z,\n"
    rows.append("s4,7,8,2024-01-04T00:00:00Z,process\n")
    table.write_text(header + "".join(rows))
    proc = cli("-r", repo, "ingest", "--processor", "demo_ep", table.parent)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"failed  {table}#3: [process] ValueError: demo_ep told to fail on row s4"
    ]
    assert proc.stdout.splitlines()[:3] == ["skipped s1", "updated s2", "skipped s3"]
    assert json.loads(cli("-r", repo, "show", "s2", check=True).stdout)["document"]["bbox"] == [
        3,
        4.5,
        3,
        4.5,
    ]
    assert not [p for p in scratch.iterdir() if p.name.startswith("stac-processor-demo-ep-")]


FAILURES = {
    # product name: (extra fields, step, words of the reason)
    "fails-at-id": ({"fail": "id"}, ("id",), "RuntimeError: demo processor told to fail at id"),
    "fails-at-version": ({"fail": "version"}, ("version",), "told to fail at version"),
    "raises": ({"fail": "process"}, ("process",), "RuntimeError: demo processor told to fail at process"),
    "no-output": ({"fail": "missing-output"}, ("process",), "nothing-here.json', which is not a file"),
    "invalid": ({"fail": "invalid-stac"}, ("validate",), "not an RFC 3339 date-time"),
    "outside-link": ({"fail": "outside-link"}, ("validate",), "leaves the product folder"),
    "outside-asset": ({"asset": "../elsewhere/secret.txt"}, ("plan", "store"), "points outside"),
}


def test_failing_products_fail_alone(cli: Cli, tmp_path: Path, scratch: Path) -> None:
    repo = make_repo(cli, tmp_path / "repo")
    products = tmp_path / "products"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.txt").write_text("not to be copied")
    bad = {name: point(products, name, **fields) for name, (fields, _, _) in FAILURES.items()}
    point(products, "good-1", lon=1.0)
    point(products, "good-2", lon=2.0)

    proc = cli("-r", repo, "ingest", "--processor", "demo", products)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed")]
    assert len(failed) == len(FAILURES), proc.stderr
    for name, (_, steps, reason) in FAILURES.items():
        (line,) = [line for line in failed if line.startswith(f"failed  {bad[name]}: [")]
        step = line.split("[", 1)[1].split("]", 1)[0]
        assert step in steps and reason in line, line
    assert "added   good-1" in proc.stdout and "added   good-2" in proc.stdout
    assert "added: 2  updated: 0  skipped: 0  failed: 7" in proc.stdout

    # The repository holds exactly the good products, is consistent and exports cleanly.
    for name in FAILURES:
        assert cli("-r", repo, "show", name).returncode == 1
    assert not list(repo.rglob("secret.txt"))
    cli("-r", repo, "export", tmp_path / "export", check=True)
    assert walk_list(tmp_path / "export" / "catalog.json") == [
        ("Catalog", "root", 0),
        ("Item", "good-1", 2),
        ("Item", "good-2", 2),
    ]
    # The temporary outputs of failed products are removed too (the demo's extra folder for
    # the outside link is its own business).
    assert [name for name in leftovers(scratch) if "elsewhere" not in name] == []

    # Again: the good ones are skipped, the bad ones fail the same way.
    statuses = ingest(cli, repo, "--processor", "demo", products, expect=1)
    assert statuses["good-1"] == statuses["good-2"] == "skipped"
    assert sorted(s for key, s in statuses.items() if not key.startswith("good")) == ["failed"] * 7

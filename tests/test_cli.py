"""The real commands in subprocesses: exit codes, one-line errors, --json, interactive init."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from .conftest import BIN, run_cli


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    run_cli("-r", path, "init", "--yes", "--id", "root", "--description", "d", check=True)
    return path


def test_version_and_listings() -> None:
    assert run_cli("version", check=True).stdout.strip()
    assert "file" in run_cli("show-backends", check=True).stdout
    rows = json.loads(run_cli("show-processors", "--json", check=True).stdout)
    assert {"name": "stac", "origin": "built-in", "version": "1.0.0"} in rows


def test_ingest_json_history_and_errors(repo_path: Path, corpus: Path) -> None:
    proc = run_cli("-r", repo_path, "ingest", "--json", corpus / "pystac/catalogs/test-case-1/catalog.json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"] == {"added": 1, "updated": 0, "skipped": 0, "failed": 0}
    # One failing product among good ones: exit 1, one line for it, the others ingested.
    proc = run_cli(
        "-r",
        repo_path,
        "ingest",
        corpus / "rustac/crates/cli/data/invalid-item.json",
        corpus / "pystac/catalogs/test-case-2/catalog.json",
    )
    assert proc.returncode == 1
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "missing or empty id" in failed[0]
    assert "added: 1" in proc.stdout and "Traceback" not in proc.stderr
    # The file backend keeps no history, and says so.
    for args in (("history",), ("rollback", "HEAD~1")):
        proc = run_cli("-r", repo_path, *args)
        assert proc.returncode == 1 and "keeps no history" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("prune", "nope"), 1, "no object with id or path 'nope'"),
        (("show", "../../../../etc/passwd"), 1, "no object with id or path"),
        (("prune", "../catalog.json"), 1, "no object with id or path"),
        (("export", "{existing}"), 2, "is not an empty folder"),
        (("config", "no.such.key"), 2, "unknown config key"),
        (("config", "lock.timeout", "soon"), 2, "not a number"),
        (("ingest", "/does/not/exist"), 1, "no such file or folder"),
        (("ingest", "--processor", "nope", "x"), 1, "no processor named 'nope'"),
        (("--backend", "nope", "history"), 1, "no backend named 'nope'"),
        (("frobnicate",), 2, "No such command"),
    ],
)
def test_errors_are_one_line(
    repo_path: Path, tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "file").write_text("x")
    args = tuple(a.format(existing=existing) for a in args)
    proc = run_cli("-r", repo_path, *args)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_debug_shows_traceback(repo_path: Path) -> None:
    proc = run_cli("--debug", "-r", repo_path, "prune", "nope")
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_not_a_repository(tmp_path: Path) -> None:
    proc = run_cli("-r", tmp_path, "history")
    assert proc.returncode == 1 and "is not a stac-repository" in proc.stderr


def test_repository_from_environment(repo_path: Path) -> None:
    proc = run_cli("config", "--json", env={"STAC_REPOSITORY": str(repo_path)})
    assert proc.returncode == 0 and json.loads(proc.stdout)["lock.timeout"] == 30.0


def test_config_round_trip(repo_path: Path) -> None:
    run_cli("-r", repo_path, "config", "lock.timeout", "5", check=True)
    assert run_cli("-r", repo_path, "config", "lock.timeout", check=True).stdout.strip() == "5.0"


def test_init_refuses_existing_and_non_empty(repo_path: Path, tmp_path: Path) -> None:
    assert "already a stac-repository" in run_cli("-r", repo_path, "init", "--yes").stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_text("x")
    assert run_cli("-r", other, "init", "--yes").returncode == 2


def test_init_without_tty_does_not_hang(tmp_path: Path) -> None:
    proc = run_cli("-r", tmp_path / "r", "init", timeout=20)
    assert proc.returncode == 2 and "no terminal" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_init_with_root_catalog(tmp_path: Path, corpus: Path) -> None:
    path = tmp_path / "r"
    run_cli(
        "-r",
        path,
        "init",
        "--yes",
        "--root-catalog",
        corpus / "pystac/catalogs/test-case-1/catalog.json",
        check=True,
    )
    doc = json.loads((path / "catalog.json").read_text())
    assert doc["id"] == "test" and [link["rel"] for link in doc["links"]] == ["root"]


def test_interactive_init_under_a_pty(tmp_path: Path) -> None:
    path = tmp_path / "r"
    child = pexpect.spawn(
        str(BIN / "stac-repository"),
        ["-r", str(path), "init"],
        encoding="utf-8",
        timeout=20,
        env={**os.environ, "TERM": "dumb"},
    )
    child.expect("Catalog id")
    child.sendline("")  # default: root
    child.expect("Title")
    child.sendline("My Title")
    child.expect("Description")
    child.sendline("Scenes from the observatory")
    child.expect("License")
    child.sendline("")  # default: proprietary
    child.expect("Create a 'file' repository")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    doc = json.loads((path / "catalog.json").read_text())
    assert (doc["id"], doc["title"], doc["description"], doc["license"]) == (
        "root",
        "My Title",
        "Scenes from the observatory",
        "proprietary",
    )


def test_interactive_init_can_be_declined(tmp_path: Path) -> None:
    path = tmp_path / "r"
    child = pexpect.spawn(
        str(BIN / "stac-repository"),
        ["-r", str(path), "init", "--id", "x", "--title", "t", "--description", "d", "--license", "MIT"],
        encoding="utf-8",
        timeout=20,
    )
    child.expect("Create a 'file' repository")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and not path.exists()


def test_stac_processor_commands(corpus: Path) -> None:
    item = corpus / "stac-spec/v1.0.0/examples/simple-item.json"
    assert run_cli("id", item, command="stac-processor", check=True).stdout.strip() == "20201211_223832_CS2"
    assert run_cli("version", item, command="stac-processor", check=True).stdout.startswith("sha256:")
    found = json.loads(
        run_cli(
            "discover", "--json", corpus / "pystac/catalogs/test-case-1", command="stac-processor", check=True
        ).stdout
    )
    assert found == [str(corpus / "pystac/catalogs/test-case-1/catalog.json")]
    out = json.loads(run_cli("process", "--json", item, command="stac-processor", check=True).stdout)
    assert out["document"]["id"] == "20201211_223832_CS2"
    proc = run_cli("--processor", "nope", "id", item, command="stac-processor")
    assert proc.returncode == 1 and "no processor named" in proc.stderr


HEAVY = ("pystac", "pygit2", "fastjsonschema", "jsonschema_rs", "rich.progress", "pydantic")


def _modules_loaded_by(argv: list[str] | None, watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` a run of the command (in-process, in a fresh interpreter) imports."""
    run = "rc = 0" if argv is None else f"rc = run(m.app, 'stac-repository', {argv!r})"
    code = (
        "import sys, contextlib, io, stac_repository.cli.repository_app as m\n"
        "from stac_repository.cli.common import run\n"
        f"out = io.StringIO()\nwith contextlib.redirect_stdout(out): {run}\n"
        f"print(rc, ','.join(n for n in {watched!r} if n in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rc, _, loaded = proc.stdout.strip().partition(" ")
    assert rc == "0", proc.stderr
    return [n for n in loaded.split(",") if n]


@pytest.mark.parametrize(
    "argv",
    [None, ["version"], ["--help"], ["ingest", "--help"]],
    ids=["import", "version", "help", "ingest-help"],
)
def test_cli_start_imports_nothing_heavy(argv: list[str] | None) -> None:
    """Start-up time is user-visible: neither the module nor version/--help may pull these in."""
    assert _modules_loaded_by(argv, HEAVY) == []


@pytest.mark.parametrize("backend", ["file", "git"])
def test_single_item_ingest_imports_only_what_it_uses(tmp_path: Path, corpus: Path, backend: str) -> None:
    """pystac (its bundled schemas are read as files), python-jsonschema and pygit2 for the file
    backend would be tens of milliseconds of every ingest's start."""
    repo = tmp_path / "repo"
    run_cli("-r", repo, "--backend", backend, "init", "--yes", check=True)
    item = corpus / "pystac/catalogs/test-case-1/country-1/area-1-1/area-1-1-imagery/area-1-1-imagery.json"
    assert item.is_file()
    loaded = _modules_loaded_by(["-r", str(repo), "ingest", str(item)], (*HEAVY, "jsonschema"))
    expected = ["jsonschema_rs"] + (["pygit2"] if backend == "git" else [])
    assert sorted(loaded) == sorted(expected)
    run_cli("-r", repo, "export", tmp_path / "out", check=True)
    assert any((tmp_path / "out").rglob("area-1-1-imagery.json"))

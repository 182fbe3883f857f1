"""The git backend through the real CLI: history, rollback with its summary, export at refs."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import run_cli, walk_list


def test_history_rollback_and_export_at_refs(tmp_path: Path, corpus: Path) -> None:
    repo = tmp_path / "repo"
    run_cli(
        "-r", repo, "--backend", "git", "init", "--yes", "--worktree", "--description", "git cli", check=True
    )
    run_cli("-r", repo, "ingest", corpus / "pystac/catalogs/test-case-1/catalog.json", check=True)
    run_cli("-r", repo, "ingest", corpus / "pystac/catalogs/test-case-2/catalog.json", check=True)
    history = json.loads(run_cli("-r", repo, "history", "--json", check=True).stdout)
    assert len(history) == 3
    second = json.loads((corpus / "pystac/catalogs/test-case-2/catalog.json").read_text())["id"]
    assert history[0]["added"][0] == second  # newest first, the product before its descendants
    assert history[0]["counts"]["added"] == 6
    verbose = run_cli("-r", repo, "history", "--verbose", check=True).stdout
    assert "+ test" in verbose
    older = json.loads(
        run_cli("-r", repo, "history", "--json", "--ref", "HEAD~1", "-n", "1", check=True).stdout
    )
    assert [c["id"] for c in older] == [history[1]["id"]]
    when = history[1]["time"][:19]  # a date/time names the last commit at or before it
    at = json.loads(run_cli("-r", repo, "history", "--json", "--ref", when, "-n", "1", check=True).stdout)
    assert at[0]["time"] <= history[0]["time"]

    # Export as of the first ingest: only test-case-1 is there.
    run_cli("-r", repo, "export", tmp_path / "then", "--ref", "HEAD~1", check=True)
    ids_then = {i for _, i, _ in walk_list(tmp_path / "then" / "catalog.json")}
    ids_now = {i for _, i, _ in walk_list(repo / "catalog.json")}
    assert ids_then < ids_now

    # Rollback is a new commit that says what it removed; rolling it back restores the rest.
    run_cli("-r", repo, "rollback", "HEAD~1", check=True)
    history = json.loads(run_cli("-r", repo, "history", "--json", check=True).stdout)
    assert len(history) == 4 and history[0]["removed"][0] == second
    assert history[0]["counts"]["removed"] == 6
    assert {i for _, i, _ in walk_list(repo / "catalog.json")} == ids_then
    run_cli("-r", repo, "rollback", "HEAD~1", check=True)
    assert {i for _, i, _ in walk_list(repo / "catalog.json")} == ids_now
    history = json.loads(run_cli("-r", repo, "history", "--json", check=True).stdout)
    assert history[0]["added"]

    bad = run_cli("-r", repo, "rollback", "no-such-ref")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "no-such-ref" in bad.stderr
    bad = run_cli("-r", repo, "export", tmp_path / "x", "--ref", "--upload-pack=evil")
    assert bad.returncode in (1, 2) and not (tmp_path / "x").exists()


def test_bare_by_default_and_lfs_threshold(tmp_path: Path, corpus: Path) -> None:
    repo = tmp_path / "bare"
    run_cli("-r", repo, "--backend", "git", "init", "--yes", "--description", "b", check=True)
    assert (repo / "HEAD").is_file() and not (repo / ".git").exists()
    run_cli("-r", repo, "config", "lfs.threshold", "1000000", check=True)
    run_cli("-r", repo, "ingest", corpus / "stactools/data-files/planet-disaster/collection.json", check=True)
    assert not (repo / "catalog.json").exists()
    run_cli("-r", repo, "export", tmp_path / "export", check=True)
    assert len([k for k, _, _ in walk_list(tmp_path / "export" / "catalog.json") if k == "Item"]) == 5
    assert list((tmp_path / "export").rglob("*.tif"))


def test_git_lfs_sees_a_clean_repository_and_clones_real_bytes(tmp_path: Path, corpus: Path) -> None:
    """With the real git-lfs (installed by scripts/setup.sh and CI): fsck, status, clone."""
    import hashlib
    import shutil
    import subprocess

    assert shutil.which("git-lfs"), "git-lfs is needed for this test: run scripts/setup.sh as root"
    repo = tmp_path / "repo"
    run_cli("-r", repo, "--backend", "git", "init", "--yes", "--worktree", "--description", "lfs", check=True)
    run_cli("-r", repo, "ingest", corpus / "stactools/data-files/planet-disaster/collection.json", check=True)

    def git(cwd: Path, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout

    assert "Git LFS fsck OK" in git(repo, "lfs", "fsck")
    assert git(repo, "status", "--porcelain") == ""
    assert len(git(repo, "lfs", "ls-files").splitlines()) == 4
    git(tmp_path, "clone", "--quiet", str(repo), "clone")
    tifs = sorted((tmp_path / "clone").rglob("*.tif"))
    assert len(tifs) == 3
    for tif in tifs:
        original = next((corpus / "stactools/data-files/planet-disaster").rglob(tif.name))
        assert hashlib.sha256(tif.read_bytes()).digest() == hashlib.sha256(original.read_bytes()).digest()
    assert len([k for k, _, _ in walk_list(tmp_path / "clone" / "catalog.json") if k == "Item"]) == 5

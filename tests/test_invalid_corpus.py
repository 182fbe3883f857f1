"""Every file of the corpus's INVALID.tsv gets its deliberate outcome through the real CLI.

Invalid in their own STAC version (core-schema-invalid, pystac-load-fail, not-identifiable):
rejected, exit 1, a one-line reason, the repository byte-for-byte unchanged. The others
(valid in an older version only, broken local links, duplicate ids, lint-level issues):
accepted or rejected, see docs/invalid-inputs.md; never a traceback or a broken repository.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from .conftest import CORPUS, run_cli, tree_digest

MUST_REJECT = ("core-schema-invalid", "pystac-load-fail", "not-identifiable")


def _rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    with open(CORPUS / "INVALID.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            rows.setdefault(row["path"], []).append(row["category"])
    return rows


ROWS = _rows()

# Deliberate outcomes for the files whose category leaves the choice to us.
ACCEPTED = {
    "pystac/invalid/shared-id/catalog.json",  # duplicate sibling ids: stored apart, with a warning
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pristine") / "repo"
    run_cli("-r", path, "init", "--yes", "--description", "pristine", check=True)
    return path


@pytest.mark.parametrize("path", sorted(ROWS))
def test_invalid_file_outcome(path: str, pristine: Path, tmp_path: Path) -> None:
    categories = ROWS[path]
    repo = shutil.copytree(pristine, tmp_path / "repo")
    before = tree_digest(repo)
    proc = run_cli("-r", repo, "ingest", CORPUS / path)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert proc.returncode in (0, 1)
    failures = [line for line in proc.stderr.splitlines() if line.startswith("failed")]
    if any(c.startswith(MUST_REJECT) for c in categories):
        assert proc.returncode == 1, proc.stdout
        assert len(failures) == 1 and len(failures[0]) < 600, proc.stderr
        assert tree_digest(repo) == before
    elif path in ACCEPTED:
        assert proc.returncode == 0, proc.stderr
    if proc.returncode == 1:
        assert tree_digest(repo) == before
    # Whatever the outcome, the repository still works.
    assert run_cli("-r", repo, "export", tmp_path / "export").returncode == 0


def test_every_category_is_covered() -> None:
    categories = {c.split(" ")[0] for cats in ROWS.values() for c in cats}
    assert {"core-schema-invalid", "pystac-load-fail", "not-identifiable", "broken-local-link"} <= categories

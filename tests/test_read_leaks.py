"""Reading a repository leaks nothing: an export leaves the interpreter's allocated blocks where
the previous one left them. pygit2 1.21's ``tree[name]`` keeps a reference to every name string
it is given; the git snapshot looked each file up that way, and an export of 100k items kept
about 120 MB alive until the process ended."""

from __future__ import annotations

import gc
import shutil
import sys
from pathlib import Path

import pygit2
import pytest

from stac_repository import Repository

from .test_item_readers import product


@pytest.mark.parametrize("backend", ["git", "file"])
def test_a_second_export_allocates_nothing_more(tmp_path: Path, backend: str) -> None:
    repo = Repository.init(tmp_path / "repo", backend=backend)
    assert repo.ingest([product(tmp_path / "p")]).results[0].status == "added"
    files = 0
    blocks = []
    for n in range(3):  # the first export warms caches and imports
        out = tmp_path / f"out{n}"
        repo.export(out)
        files = sum(1 for p in out.rglob("*") if p.is_file())
        shutil.rmtree(out)
        gc.collect()
        blocks.append(sys.getallocatedblocks())
    assert files > 2600
    assert blocks[2] - blocks[1] < 200, f"{blocks[2] - blocks[1]} blocks left by an export of {files} files"
    if backend == "git":
        # libgit2 caches no trees (it held a 100k-item walk's parsed trees: ~90 MB of native memory)
        assert pygit2.settings.cached_memory[0] < 50_000, pygit2.settings.cached_memory

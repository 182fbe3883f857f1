"""Snapshot.walk yields every file in sorted path order without collecting them first (a depth
first walk with folder names sorted as "name/"): the same list as sorting them, on both
backends, for names that sort around "/" ("-", ".", " ", digits, capitals, non-ASCII)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stac_repository.backends import BACKENDS, backend_class
from stac_repository.backends.base import ChangeSet

NAME = st.text(st.sampled_from(list("a-. 0Zé_")), min_size=1, max_size=3).filter(
    lambda n: n not in (".", "..") and not n.startswith(".git")
)
PATHS = st.lists(st.lists(NAME, min_size=1, max_size=4).map("/".join), min_size=1, max_size=25)


def _consistent(paths: list[str]) -> list[str]:
    """Drop paths that would need a file and a folder of the same name."""
    kept: list[str] = []
    for path in paths:
        parts = path.split("/")
        prefixes = {"/".join(parts[:n]) for n in range(1, len(parts))}
        if any(p in prefixes or path == p or p.startswith(path + "/") for p in kept):
            continue
        kept.append(path)
    return kept


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PATHS)
def test_walk_is_sorted_and_complete(raw: list[str]) -> None:
    paths = _consistent(raw)
    for name in BACKENDS:
        cls = backend_class(name)
        root = Path(tempfile.mkdtemp()) / "repo"
        try:
            backend = cls.create(
                root,
                ChangeSet(
                    message="t", writes={".stac-repository/config.json": b"{}", **{p: b"x" for p in paths}}
                ),
                options={},
            )
            with backend.snapshot() as snap:
                walked = [p for p in snap.walk() if not p.startswith(".stac-repository")]
                assert walked == sorted(paths), name
                for folder in {p.rsplit("/", 1)[0] for p in paths if "/" in p}:
                    assert list(snap.walk(folder)) == sorted(
                        p for p in paths if p.startswith(folder + "/")
                    ), name
            backend.close()
        finally:
            shutil.rmtree(root.parent)

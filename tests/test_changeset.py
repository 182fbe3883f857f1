"""ChangeSet.check refuses exactly the contradictory transactions: a path both written and
copied, or written under (or at) a deleted path. Checked against the rule stated naively."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stac_repository.backends.base import ChangeSet
from stac_repository.errors import BackendError

paths = st.lists(st.sampled_from(["a", "b", "ab", "a.json"]), min_size=1, max_size=4).map("/".join)


def _contradictory(writes: set[str], blobs: set[str], deletes: set[str]) -> bool:
    targets = [*writes, *blobs]
    return bool(writes & blobs) or any(t == d or t.startswith(d + "/") for t in targets for d in deletes)


@settings(max_examples=400, deadline=None)
@given(st.sets(paths, max_size=5), st.sets(paths, max_size=5), st.sets(paths, max_size=4))
def test_check_refuses_exactly_the_contradictions(
    writes: set[str], blobs: set[str], deletes: set[str]
) -> None:
    changes = ChangeSet(
        message="m",
        writes=dict.fromkeys(writes, b"{}"),
        blobs=dict.fromkeys(blobs, "/dev/null"),
        deletes=deletes,
    )
    if _contradictory(writes, blobs, deletes):
        with pytest.raises(BackendError, match="both"):
            changes.check()
    else:
        changes.check()

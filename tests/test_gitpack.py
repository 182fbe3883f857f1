"""The pack writer against git itself: for any set of objects (duplicates included, enough to
grow its id table; small and large, random and repetitive contents), git rebuilds exactly the
same index from the pack, verifies it, and every object reads back."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

import pygit2
from hypothesis import given, settings
from hypothesis import strategies as st

from stac_repository.backends.gitpack import PackWriter, _stored

# Small objects (trees, LFS pointers), and larger ones, random or repetitive as documents are.
CONTENT = (
    st.binary(max_size=64)
    | st.binary(min_size=400, max_size=20_000)
    | st.builds(lambda part, n: part * n, st.binary(min_size=1, max_size=40), st.integers(10, 800))
)
OBJECTS = st.lists(
    st.tuples(
        st.sampled_from([pygit2.GIT_OBJECT_BLOB, pygit2.GIT_OBJECT_BLOB, pygit2.GIT_OBJECT_TREE]),
        CONTENT,
    ),
    max_size=40,
)


def _write(
    folder: Path, objects: list[tuple[int, bytes]], expected: int
) -> tuple[list[Path], dict[str, tuple[int, bytes]]]:
    pygit2.init_repository(str(folder), bare=True)
    writer = PackWriter(folder / "objects", expected=expected)
    ids = {}
    for kind, data in objects:
        oid = writer.add(kind, data)
        ids[str(oid)] = (kind, data)
    assert len(writer) == len(ids)
    return writer.finish(fsync=False), ids


@settings(max_examples=40, deadline=None)
@given(OBJECTS, st.integers(0, 4), st.integers(0, 3000), st.integers(0, 600))
def test_git_rebuilds_the_same_index(
    objects: list[tuple[int, bytes]], repeat: int, filler: int, expected: int
) -> None:
    # filler: many distinct blobs, so that the table grows past its first size (1,024 slots)
    objects = objects * repeat + [(pygit2.GIT_OBJECT_BLOB, b"%d" % n) for n in range(filler)] + objects
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "repo.git"
        written, ids = _write(folder, objects, expected)
        if not ids:
            assert written == []
            return
        pack, idx = written
        rebuilt = Path(tmp) / "rebuilt.idx"
        subprocess.run(["git", "index-pack", "-o", str(rebuilt), str(pack)], check=True, capture_output=True)
        assert rebuilt.read_bytes() == idx.read_bytes()
        subprocess.run(["git", "-C", str(folder), "verify-pack", str(idx)], check=True, capture_output=True)
        repo = pygit2.Repository(str(folder))
        for oid, (kind, data) in ids.items():
            assert repo.odb.read(oid) == (kind, data)  # raw: the random trees do not parse
        shutil.rmtree(folder)


def test_a_pack_larger_than_its_buffer_of_objects_of_many_sizes(tmp_path: Path) -> None:
    """Thousands of sizes (more than the writer keeps headers for), stored and deflated, in a
    pack of several megabytes (written through its buffer many times)."""
    random = b"".join(zlib.compress(b"%d" % n) for n in range(3000))  # little to deflate
    objects = [(pygit2.GIT_OBJECT_BLOB, random[n : 2 * n]) for n in range(5000)]
    objects += [(pygit2.GIT_OBJECT_BLOB, random * 3), (pygit2.GIT_OBJECT_TREE, b"")]  # 100 KB; nothing
    written, ids = _write(tmp_path / "repo.git", objects, 0)
    pack, idx = written
    assert pack.stat().st_size > 4 << 20
    rebuilt = tmp_path / "rebuilt.idx"
    subprocess.run(["git", "index-pack", "-o", str(rebuilt), str(pack)], check=True, capture_output=True)
    assert rebuilt.read_bytes() == idx.read_bytes()
    repo = pygit2.Repository(str(tmp_path / "repo.git"))
    for oid, (kind, data) in ids.items():
        assert repo.odb.read(oid) == (kind, data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_objects_stored_whole_are_what_zlib_stores(data: bytes) -> None:
    assert _stored(data) == zlib.compress(data, 0)
    assert zlib.decompress(_stored(data)) == data

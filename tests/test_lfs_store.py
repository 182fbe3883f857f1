"""The LFS object store (backends/lfs.py): what ``Store.add`` writes, and what it leaves alone."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from stac_repository.backends.lfs import Pointer, Store


def _file(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _pointer(data: bytes) -> Pointer:
    return Pointer(hashlib.sha256(data).hexdigest(), len(data))


def _objects(store: Store) -> list[Path]:
    return sorted(p for p in (store.root / "objects").rglob("*") if p.is_file())


def test_add_stores_the_bytes_under_their_sha256_and_leaves_no_temporary(tmp_path: Path) -> None:
    store = Store(tmp_path / "git")
    small, large = b"a small asset", os.urandom(3 << 20)  # in memory, and streamed
    for data in (small, large):
        pointer = store.add(_file(tmp_path, f"{len(data)}.tif", data))
        assert pointer == _pointer(data)
        assert store.path(pointer.oid).read_bytes() == data
    assert [p.name for p in _objects(store)] == sorted(_pointer(d).oid for d in (small, large))
    assert not list((store.root / "tmp").iterdir())


def test_files_under_the_threshold_and_empty_files_stay_plain_blobs(tmp_path: Path) -> None:
    store = Store(tmp_path / "git")
    assert store.add(_file(tmp_path, "small.tif", b"tiny"), threshold=10) is None
    assert store.add(_file(tmp_path, "empty.tif", b"")) is None
    assert store.add(_file(tmp_path, "big.tif", b"large enough"), threshold=10) == _pointer(b"large enough")
    assert len(_objects(store)) == 1


def test_a_stored_object_is_never_written_again(tmp_path: Path) -> None:
    """Another store on the same folder (a later transaction) finds the object and keeps it."""
    data = b"the same asset in two transactions"
    source = _file(tmp_path, "a.tif", data)
    first = Store(tmp_path / "git")
    target = first.path(first.add(source).oid)  # type: ignore[union-attr]
    before = os.stat(target)
    second = Store(tmp_path / "git")
    assert second.add(_file(tmp_path, "copy.tif", data)) == _pointer(data)
    after = os.stat(target)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert second.add(source) == _pointer(data)  # its folder is known now: looked up, not rewritten
    assert os.stat(target).st_ino == before.st_ino


def test_objects_land_even_when_their_folders_are_removed_meanwhile(tmp_path: Path) -> None:
    store = Store(tmp_path / "git")
    one = store.add(_file(tmp_path, "one.tif", b"one"))
    assert one is not None
    shutil.rmtree(store.root / "objects")  # a cleanup between two transactions of one store
    assert store.add(_file(tmp_path, "one-again.tif", b"one")) == one
    assert store.path(one.oid).read_bytes() == b"one"


def test_a_fifo_in_place_of_an_asset_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "src" / "asset.tif"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    with pytest.raises(OSError) as raised:
        Store(tmp_path / "git").add(str(fifo))
    assert raised.value.errno == errno.EINVAL and raised.value.filename == str(fifo)

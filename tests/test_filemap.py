"""FileMap (the plan's stored path -> source file map, packed per folder) behaves exactly like a
dict under any sequence of writes, deletes, lookups and listings."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stac_repository.stac.filemap import FileMap

FOLDERS = st.sampled_from(["", "a", "a/b", "c/d/e"])
NAMES = st.sampled_from(["x.tif", "y.xml", "z", "x.tif.aux"])
SOURCES = st.sampled_from(["/src/a", "/src/a/b", "/other", "/"]).flatmap(
    lambda base: NAMES.map(lambda name: f"{base.rstrip('/')}/{name}" if base != "/" else f"/{name}")
)
PATHS = st.tuples(FOLDERS, NAMES).map(lambda fn: f"{fn[0]}/{fn[1]}" if fn[0] else fn[1])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), PATHS, SOURCES),
        st.tuples(st.just("del"), PATHS, st.none()),
        st.tuples(st.just("get"), PATHS, st.none()),
        st.tuples(st.just("list"), st.none(), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=500, deadline=None)
@given(OPS)
def test_a_filemap_is_a_dict(ops: list[tuple[str, str | None, str | None]]) -> None:
    packed: FileMap = FileMap()
    plain: dict[str, str] = {}
    for op, path, source in ops:
        if op == "set":
            assert path is not None and source is not None
            packed[path] = source
            plain[path] = source
        elif op == "del":
            assert path is not None
            assert (path in packed) == (path in plain)
            if path in plain:
                del packed[path]
                del plain[path]
        elif op == "get":
            assert path is not None
            assert packed.get(path) == plain.get(path)
        else:
            assert sorted(packed.items()) == sorted(plain.items())
        assert len(packed) == len(plain)
    assert dict(packed) == plain
    assert packed.keys() == plain.keys()

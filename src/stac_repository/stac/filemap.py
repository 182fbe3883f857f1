"""Files to copy into the repository, by stored path, held compactly.

A bulk ingest plans a copy for every local asset: two or three per item, each a stored path
and a source path. As a dict of strings that is about 280 bytes per file, the largest part of
what a 100k-item plan holds. Here the files of one stored folder share one entry: the folder
as key, and one string with the source folder and, per file, its stored name and its source
(empty when it is the source folder plus the same name, as it is for almost every asset).
"""

from __future__ import annotations

import os
from collections.abc import ItemsView, Iterator, MutableMapping

_SEP = "\0"  # never in a path


class FileMap(MutableMapping[str, str]):
    """stored path -> source path, a mapping like a dict (insertion order kept per folder).

    The last folder used is kept unpacked (and packed when another one is used): files are
    written, looked up and listed folder by folder, so a folder with many files is not parsed
    or packed again for each of them.
    """

    def __init__(self) -> None:
        self._folders: dict[str, str] = {}
        self._len = 0
        self._open: tuple[str, str, dict[str, str]] | None = None
        self._dirty = False

    def _files(self, folder: str) -> tuple[str, dict[str, str]]:
        """The folder's source folder and its stored names with their sources, in full."""
        if self._open is not None and self._open[0] == folder:
            return self._open[1], self._open[2]
        self._flush()
        packed = self._folders.get(folder)
        if packed is None:
            return "", {}
        parts = packed.split(_SEP)
        base = parts[0]
        files = {name: src or f"{base}/{name}" for name, src in zip(parts[1::2], parts[2::2], strict=True)}
        self._open = (folder, base, files)
        return base, files

    def _changed(self, folder: str, base: str, files: dict[str, str]) -> None:
        self._open, self._dirty = (folder, base, files), True

    def _flush(self) -> None:
        """Pack the open folder if it changed."""
        if self._open is None or not self._dirty:
            return
        folder, base, files = self._open
        self._dirty = False
        if not files:
            self._folders.pop(folder, None)
            return
        parts = [base]
        for name, source in files.items():
            parts += [name, "" if source == f"{base}/{name}" else source]
        self._folders[folder] = _SEP.join(parts)

    def __getitem__(self, path: str) -> str:
        folder, _, name = path.rpartition("/")
        return self._files(folder)[1][name]  # KeyError: not here

    def __setitem__(self, path: str, source: str) -> None:
        if _SEP in path or _SEP in source:
            raise ValueError(f"a path with a NUL character: {path!r} <- {source!r}")
        folder, _, name = path.rpartition("/")
        base, files = self._files(folder)
        if not files:
            base, files = os.path.dirname(source), {}
        if name not in files:
            self._len += 1
        files[name] = source
        self._changed(folder, base, files)

    def __delitem__(self, path: str) -> None:
        folder, _, name = path.rpartition("/")
        base, files = self._files(folder)
        del files[name]  # KeyError: not here
        self._len -= 1
        self._changed(folder, base, files)

    def __iter__(self) -> Iterator[str]:
        for path, _ in self._pairs():
            yield path

    def items(self) -> ItemsView[str, str]:  # type: ignore[override]
        return _Items(self)

    def _pairs(self) -> Iterator[tuple[str, str]]:
        """Every (stored path, source), read straight from the packed strings."""
        self._flush()
        for folder, packed in list(self._folders.items()):
            parts = packed.split(_SEP)
            base, prefix = parts[0], f"{folder}/" if folder else ""
            for name, src in zip(parts[1::2], parts[2::2], strict=True):
                yield prefix + name, src or f"{base}/{name}"

    def __len__(self) -> int:
        return self._len

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        folder, _, name = path.rpartition("/")
        return name in self._files(folder)[1]


class _Items(ItemsView[str, str]):
    """``FileMap.items()`` without a lookup per path."""

    _mapping: FileMap

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return self._mapping._pairs()

"""New folders stored ahead by the planner's workers (the git backend's :class:`FolderWriter`).

A bulk ingest writes a folder per item: its document, an LFS object and pointer per asset, the
folder's ``.gitattributes`` and its tree. Built in the commit, that is five or six objects per
item on one core, while the asset files are added on the other. The planner's workers render
the items in parallel already; each also stores its items' folders, whole: the LFS objects in
the store, the rest in a pack of its own that stays a temporary until the commit adopts it.
The commit then only puts each folder's tree into its parent.

Only new folders are stored so (a folder that exists is merged with what it holds, in the
commit), and the result is the same tree, object for object, as the commit would build.
"""

from __future__ import annotations

from pathlib import Path

import pygit2

from ..errors import BackendError
from . import fsutil, lfs
from .base import check_path
from .gitobjects import BLOB, tree_data
from .gitpack import PackWriter


class FolderPack:
    """One worker's folders: objects in a temporary pack, LFS objects in the store."""

    def __init__(self, git_dir: Path, threshold: int, reserved: frozenset[str]) -> None:
        self._objects = git_dir / "objects"
        self._lfs = lfs.Store(git_dir)
        self._threshold = threshold
        self._reserved = reserved
        self._packer: PackWriter | None = None

    def folder(self, files: list[tuple[str, bytes | str]]) -> bytes:
        if self._packer is None:
            self._packer = PackWriter(self._objects, expected=1 << 16)
        add = self._packer.add
        entries: dict[bytes, tuple[int, bytes]] = {}
        tracked: set[str] = set()
        for name, data in files:
            if "/" in name or name in self._reserved:
                raise BackendError(f"refused file name {name!r} in a folder stored ahead")
            check_path(name)
            if not isinstance(data, bytes):  # a local file: an LFS object, or its bytes
                pointer = self._lfs.add(data, self._threshold) if lfs.can_track(name) else None
                if pointer is not None:
                    tracked.add(name)
                    data = pointer.encode()
                else:
                    with fsutil.open_regular(data) as fh:
                        data = fh.read()
            entries[name.encode()] = (BLOB, add(pygit2.GIT_OBJECT_BLOB, data).raw)
        if tracked:
            entries[lfs.ATTRIBUTES.encode()] = (
                BLOB,
                add(pygit2.GIT_OBJECT_BLOB, lfs.render_attributes(tracked)).raw,
            )
        return add(pygit2.GIT_OBJECT_TREE, tree_data(entries)).raw

    def finish(self) -> list[str]:
        """The temporary pack and its final names (see :func:`.gitpack.land`); none if empty."""
        if self._packer is None:
            return []
        return [str(path) for path in self._packer.finish(fsync=False, rename=False)]

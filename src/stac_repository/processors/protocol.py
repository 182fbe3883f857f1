"""The processor protocol, unchanged from the original stac-repository so that published
processors run as they are: a module (or any object) with these five members."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable


@runtime_checkable
class Processor(Protocol):
    __version__: str

    def discover(self, source: str) -> Iterator[str]:
        """Product sources (paths or URLs) found in ``source``."""
        ...

    def id(self, product: str) -> str: ...

    def version(self, product: str) -> str: ...

    def process(self, product: str) -> str:
        """Path of a STAC json it wrote (or found); descendants live under its folder."""
        ...

"""stac-repository: a STAC catalog kept as a versioned data product.

    from stac_repository import Repository
    repo = Repository.init("my-repo", id="root", description="My catalog")
    repo.ingest(["path/to/catalog.json"])

Imports are lazy so that ``import stac_repository`` (and the CLI's start) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .__about__ import __version__

if TYPE_CHECKING:
    from .repository import IngestReport, ProductResult, Repository

__all__ = ["IngestReport", "ProductResult", "Repository", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Repository", "IngestReport", "ProductResult"):
        from . import repository

        return getattr(repository, name)
    raise AttributeError(name)

"""Storage backends, found by name or detected from an existing repository."""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import NotFound
from .base import Backend

BACKENDS = {
    "file": "stac_repository.backends.file:FileBackend",
    "git": "stac_repository.backends.git:GitBackend",
}


def backend_class(name: str) -> type[Backend]:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise NotFound(f"no backend named {name!r} (available: {', '.join(BACKENDS)})") from None
    module, _, attr = target.partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module), attr)
    return cls


def detect(root: Path) -> type[Backend] | None:
    for name in BACKENDS:
        cls = backend_class(name)
        if cls.detect(root):
            return cls
    return None

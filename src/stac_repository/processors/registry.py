"""Finding processors: the built-in ones, the ``stac_repository.processors`` entry points, and
any installed top-level module named ``stac_processor_<name>`` (how the original tool found
them). Nothing is imported until a processor is asked for by name, so a broken or slow
plugin never affects commands that do not use it.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from ..errors import NotFound, ProcessorError

ENTRY_POINT_GROUP = "stac_repository.processors"
MODULE_PREFIX = "stac_processor_"
BUILTIN = {"stac": "stac_repository.processors.stac"}
_NOT_PROCESSORS = {"stac_processor_cli"}  # the original tool's CLI package


@dataclass(frozen=True)
class ProcessorInfo:
    name: str
    origin: str  # "built-in", "entry point <value>", "module <name>"
    target: str

    def load(self) -> Any:
        try:
            if self.origin.startswith("entry point"):
                (ep,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == self.name]
                processor = ep.load()
            else:
                processor = importlib.import_module(self.target)
        except Exception as exc:  # a plugin may fail in any way: report it, never crash
            raise ProcessorError(
                f"processor {self.name!r} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        missing = [
            m for m in ("discover", "id", "version", "process") if not callable(getattr(processor, m, None))
        ]
        if missing or not isinstance(getattr(processor, "__version__", None), str):
            what = ", ".join(missing) if missing else "__version__"
            raise ProcessorError(f"processor {self.name!r} ({self.target}) lacks {what}")
        return processor


def available() -> dict[str, ProcessorInfo]:
    """Every processor that can be named, without importing any of them."""
    found: dict[str, ProcessorInfo] = {}
    for module in pkgutil.iter_modules():
        if module.name.startswith(MODULE_PREFIX) and module.name not in _NOT_PROCESSORS:
            name = module.name[len(MODULE_PREFIX) :]
            found[name] = ProcessorInfo(name, f"module {module.name}", module.name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ProcessorInfo(ep.name, f"entry point {ep.value}", ep.value)
    for name, target in BUILTIN.items():
        found[name] = ProcessorInfo(name, "built-in", target)
    return dict(sorted(found.items()))


def find(name: str) -> ProcessorInfo | None:
    """One processor by name, looking only where that name can be (no scan of every module:
    that costs tens of milliseconds, paid by every ingest)."""
    if name in BUILTIN:
        return ProcessorInfo(name, "built-in", BUILTIN[name])
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        return ProcessorInfo(name, f"entry point {ep.value}", ep.value)
    module = MODULE_PREFIX + name
    if name.isidentifier() and module not in _NOT_PROCESSORS and importlib.util.find_spec(module) is not None:
        return ProcessorInfo(name, f"module {module}", module)
    return None


def load(name: str) -> Any:
    info = find(name)
    if info is None:
        known = ", ".join(available())
        raise NotFound(f"no processor named {name!r} (available: {known})")
    return info.load()

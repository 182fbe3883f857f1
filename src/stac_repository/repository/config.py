"""Repository configuration: a small JSON document stored (and versioned) in the repository.

Keys are dotted paths (``lock.timeout``); values are checked against the known keys so a
typo is an error, not a silently ignored setting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import UsageError

CONFIG_PATH = ".stac-repository/config.json"
FORMAT = 1


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{value!r} is not a number") from None
    if not number >= 0 or number == float("inf"):
        raise UsageError(f"{value!r} must be a finite number >= 0")
    return number


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{value!r} is not a boolean (true/false)")


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise UsageError(f"{value!r} must be >= 0")
    return number


def _scheme(value: str) -> str:
    if value not in ("hash", "datetime", "none"):
        raise UsageError(f"{value!r} is not a partition scheme (hash, datetime, none)")
    return value


def _optional_path(value: str) -> str | None:
    return value or None


def _remote_url(value: str) -> str | None:
    """A git remote: a URL, or a local path made absolute so it means the same from anywhere
    (the config is versioned and travels with push and pull). Empty unsets it."""
    from .remote import local_path

    value = value.strip()
    if not value:
        return None
    if value.startswith("-"):
        raise UsageError(f"refused remote {value!r}: it would read as an option to git")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise UsageError(f"refused remote {value!r}: control characters")
    path = local_path(value)
    if path is not None and not value.startswith("file://"):
        return str(path.expanduser().absolute())
    return value


KEYS: dict[str, tuple[Callable[[str], Any], Any, str]] = {
    "lock.timeout": (_positive_float, 30.0, "seconds a writer waits for the lock"),
    "fsync": (_bool, True, "fsync every write (durability against power loss)"),
    "schema_dir": (_optional_path, None, "folder of cached JSON schemas (<host>/<path>)"),
    "assets.allow_outside": (_bool, False, "copy local assets from outside the product folder"),
    "lfs.threshold": (_count, 0, "assets of at least this many bytes go to Git LFS (git backend)"),
    "layout.max_items": (_count, 1000, "items listed directly by one catalog/collection before partitioning"),
    "layout.partition": (_scheme, "hash", "how full collections are split: hash, datetime or none"),
    "remote.url": (_remote_url, None, "git remote (path or URL) for push and pull (git backend)"),
}


LOCAL_KEYS = frozenset({"remote.url"})
"""Settings of one copy of a repository, kept out of its history (so setting a remote is no
commit that would make two copies diverge)."""
LOCAL_FILE = "config.json"


def defaults(backend: str) -> dict[str, Any]:
    config: dict[str, Any] = {"format": FORMAT, "backend": backend}
    for key, (_, default, _) in KEYS.items():
        if key not in LOCAL_KEYS:
            set_value(config, key, default)
    return config


def get_value(config: dict[str, Any], key: str) -> Any:
    if key not in KEYS:
        raise UsageError(f"unknown config key {key!r} (known: {', '.join(KEYS)})")
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return KEYS[key][1]
        node = node[part]
    return node


def set_value(config: dict[str, Any], key: str, value: Any) -> None:
    node = config
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def parse(key: str, raw: str) -> Any:
    if key not in KEYS:
        raise UsageError(f"unknown config key {key!r} (known: {', '.join(KEYS)})")
    return KEYS[key][0](raw)


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    return {key: get_value(config, key) for key in KEYS}

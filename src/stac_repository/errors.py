"""One error hierarchy for the whole library.

    StacRepositoryError
    ├── UsageError            bad arguments (exit code 2 in the CLI)
    ├── NotFound              unknown id, ref, path or backend
    ├── InvalidStac           a document fails validation (file, field, reason)
    ├── Conflict              the change contradicts what is stored (duplicate ids, ambiguous ids)
    │   └── Locked            another writer holds the repository lock
    ├── NoHistory             the backend keeps no history
    ├── ProcessorError        a processor raised or returned something unusable
    └── BackendError          storage failed (I/O, corrupt state); foreign errors are wrapped here

The CLI turns each into a one-line message; a traceback is a bug.
"""

from __future__ import annotations


class StacRepositoryError(Exception):
    """Root of every error this library raises on purpose."""

    exit_code = 1


class UsageError(StacRepositoryError):
    exit_code = 2


class NotFound(StacRepositoryError):
    pass


class InvalidStac(StacRepositoryError):
    def __init__(self, reason: str, *, file: str | None = None, field: str | None = None) -> None:
        self.reason = reason
        self.file = file
        self.field = field
        where = ": ".join(part for part in (file, field) if part)
        super().__init__(f"{where}: {reason}" if where else reason)


class Conflict(StacRepositoryError):
    pass


class Locked(Conflict):
    pass


class NoHistory(StacRepositoryError):
    pass


class ProcessorError(StacRepositoryError):
    pass


class BackendError(StacRepositoryError):
    pass

"""Whether to fork worker processes, and how many.

Bulk work that splits into independent parts (reading item files, adding LFS objects) runs
on forked workers when the machine has more than one core. Forking is safe only from a
process with a single thread: a child of a process where other threads may hold locks can
deadlock, and the other start methods run the main module again in each worker. Elsewhere
the work is done in the calling process. ``STAC_REPOSITORY_WORKERS`` sets the number of
workers (``0``: none).
"""

from __future__ import annotations

import os
import threading

MAX_WORKERS = 4


def worker_count() -> int:
    """How many workers to start: none on one core or where forking is not safe."""
    setting = os.environ.get("STAC_REPOSITORY_WORKERS", "").strip()
    if setting:
        try:
            wanted = max(0, int(setting))
        except ValueError:
            wanted = 0
    else:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        wanted = min(cores, MAX_WORKERS) if cores > 1 else 0
    if not wanted or not hasattr(os, "fork"):
        return 0
    return wanted if threading.active_count() == 1 else 0

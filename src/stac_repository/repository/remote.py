"""Remotes for the git backend: ``push`` and ``pull`` of the branch, fast-forward only.

``remote.url`` (config, or the ``url`` argument) names a git remote: a path on this machine (a
bare repository made with ``git init --bare``, or a backup) or a URL git understands. It is a
local setting of each copy (not versioned: setting it is no commit that could diverge). Both verbs
only move a branch forward; when the histories have diverged they refuse with one line and change
nothing, since reconciling two catalogs is a merge, a job for git and a human.

How. The git CLI moves the git objects (``ls-remote``, ``fetch``, ``push``; argument lists, never a
shell; the URL is never an option and follows ``--``). The fast-forward check is local (pygit2
ahead/behind on the fetched commits). LFS objects travel before any branch moves, so no branch
ever points at a commit whose assets are missing on its side. They are copied between the two
``lfs/objects`` stores, hashed on the way, with no git-lfs needed; which objects is found by
diffing each transferred commit against its parent, O(changed) like the commits themselves. A
network URL therefore works only while the transferred commits carry no LFS object (e.g. with a
high ``lfs.threshold``); otherwise it is refused before anything moves.

Pull moves the branch under the writer lock by compare-and-swap and brings the working tree along
path by path, exactly as a commit does; the id index is part of the tree, so it follows. Push takes
no local lock: it sends the commit that was the head when it started, and the remote itself
refuses a non-fast-forward that raced with it. A push that creates the branch in a local
repository whose HEAD names a missing branch (``git init --bare`` says master) points HEAD at it,
so ``git clone`` and ``init --from-backup`` of the remote see the catalog.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..errors import BackendError, Conflict, NotFound, UsageError
from . import config as cfg

if TYPE_CHECKING:
    import pygit2

    from ..backends.git import GitBackend
    from ..backends.lfs import Store
    from . import Repository

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_SCP = re.compile(r"[^/]*:")
"""``host:path`` (and ``transport::address``): git's rule is a colon before any slash."""
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_LOCATION_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
)
"""Inherited from a calling git (a hook), these would point our git at another repository."""


@dataclass(frozen=True)
class SyncResult:
    """What a push or pull did; ``commits`` counts the commits sent, received or (status
    "ahead") the local commits a pull left alone."""

    action: str
    status: str  # pushed, pulled, up-to-date, ahead
    url: str
    branch: str
    local: str
    remote: str | None
    commits: int = 0
    lfs_objects: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.status == "up-to-date":
            return f"{self.branch} is up to date with {self.url} ({self.local[:10]})"
        if self.status == "ahead":
            return f"nothing to pull from {self.url}: local {self.branch} is {_n(self.commits)} ahead"
        verb, where = ("pushed", "to") if self.action == "push" else ("pulled", "from")
        return (
            f"{verb} {_n(self.commits)} and {_n(self.lfs_objects, 'LFS object')} {where} {self.url} "
            f"({self.branch} now {self.local[:10]})"
        )


def local_path(url: str) -> Path | None:
    """The folder a remote names on this machine, or None for a network remote (git's rules:
    paths and ``file://`` URLs are local; ``scheme://…`` and ``host:path`` are not)."""
    if url.startswith("file://"):
        parts = urlsplit(url)
        return Path(unquote(parts.path)) if parts.netloc in ("", "localhost") else None
    if _SCHEME.match(url) or _SCP.match(url):
        return None
    return Path(url)


def push(repo: Repository, *, url: str | None = None) -> SyncResult:
    """Send the branch and its LFS objects to the remote, if that only moves the remote forward."""
    backend = _git_backend(repo)
    url = _url(repo, url)
    branch = backend.branch_name
    head = backend.head()
    local = str(head.id)
    remote = _remote_head(backend, url)
    if remote == local:
        return SyncResult("push", "up-to-date", url, branch, local, remote)
    if remote is not None:
        _fetch(backend, url, remote)
        ahead, behind = backend.repo.ahead_behind(head.id, _commit(backend, remote).id)
        if behind:
            raise Conflict(_refusal("push", branch, ahead, behind))
    else:
        ahead = sum(1 for _ in backend.repo.walk(head.id))
    oids = backend.lfs_objects_added(local, remote)
    copied = backend.copy_lfs(oids, backend.lfs, _remote_store(url, oids)) if oids else 0
    # --no-verify: a git-lfs pre-push hook would try to upload what was just copied
    proc = _git(backend, "push", "--quiet", "--no-verify", "--", url, f"{local}:refs/heads/{branch}")
    if proc.returncode != 0:
        if " ! [rejected]" in proc.stderr:  # not a fast-forward after all: the remote moved meanwhile
            raise Conflict(f"remote {branch} moved during the push (nothing changed): try again")
        raise BackendError(f"cannot push to {url}: {_failure(proc)}")
    path = local_path(url)
    if remote is None and path is not None:
        from ..backends.git import adopt_head

        adopt_head(path, branch)
    return SyncResult("push", "pushed", url, branch, local, local, ahead, copied)


def pull(repo: Repository, *, url: str | None = None) -> SyncResult:
    """Bring the remote's new commits and their LFS objects here, if that only moves us forward."""
    backend = _git_backend(repo)
    url = _url(repo, url)
    branch = backend.branch_name
    remote = _remote_head(backend, url)
    if remote is None:
        raise NotFound(f"{url} has no branch {branch}: nothing to pull (push to it first)")
    _fetch(backend, url, remote)
    target = _commit(backend, remote)
    with backend.transaction(timeout=repo.lock_timeout):
        head = backend.head()
        local = str(head.id)
        if local == remote:
            return SyncResult("pull", "up-to-date", url, branch, local, remote)
        ahead, behind = backend.repo.ahead_behind(head.id, target.id)
        if not behind:
            return SyncResult("pull", "ahead", url, branch, local, remote, ahead)
        if ahead:
            raise Conflict(_refusal("pull", branch, ahead, behind))
        oids = backend.lfs_objects_added(remote, local)
        copied = backend.copy_lfs(oids, _remote_store(url, oids), backend.lfs) if oids else 0
        backend.fast_forward(head, target, f"pull from {url}")
    return SyncResult("pull", "pulled", url, branch, remote, remote, behind, copied)


# -- helpers ------------------------------------------------------------------------------------


def _n(count: int, noun: str = "commit") -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _refusal(action: str, branch: str, ahead: int, behind: int) -> str:
    if not ahead:  # push only: the remote is ahead, we are not
        return f"remote {branch} is {_n(behind)} ahead of local {branch}: push refused; pull first"
    return (
        f"remote {branch} has diverged from local {branch} ({ahead} local, {_n(behind, 'remote commit')}): "
        f"{action} refused; reconcile with git"
    )


def _git_backend(repo: Repository) -> GitBackend:
    from ..backends.git import GitBackend

    if not isinstance(repo.backend, GitBackend):
        raise UsageError(f"push and pull need the git backend (this repository uses {repo.backend.name!r})")
    return repo.backend


def _url(repo: Repository, url: str | None) -> str:
    value = cfg.parse("remote.url", url) if url is not None else cfg.get_value(repo.config, "remote.url")
    if not value:
        raise UsageError("no remote: set one with 'stac-repository config remote.url PATH-OR-URL'")
    return str(value)


def _remote_store(url: str, oids: set[str]) -> Store:
    """The LFS store of a local remote; a network remote cannot take or give LFS objects here."""
    from ..backends.git import local_lfs_store

    path = local_path(url)
    if path is None:
        raise BackendError(
            f"{_n(len(oids), 'LFS object')} must travel and {url} is not a local path: "
            "LFS objects move only between repositories on this machine (nothing changed)"
        )
    return local_lfs_store(path)


def _git(backend: GitBackend, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the git CLI on this repository; ``protocol.ext.allow=never`` bars the transport that
    runs commands, and prompts are off (a command never waits for a terminal)."""
    exe = shutil.which("git")
    if exe is None:
        raise BackendError("push and pull need the git command-line tool, and it is not on PATH")
    env = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARIABLES}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    options = ["-c", "protocol.ext.allow=never", f"--git-dir={backend.git_dir}"]
    if backend.fsync:  # fetched objects durable before the branch points at them (git >= 2.36)
        options += ["-c", "core.fsync=committed", "-c", "core.fsyncMethod=fsync"]
    try:
        return subprocess.run(
            [exe, *options, *args],
            cwd=backend.root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError as exc:
        raise BackendError(f"cannot run git: {exc}") from exc


def _failure(proc: subprocess.CompletedProcess[str]) -> str:
    """git's reason on one line: the first line it wrote that is not a hint or warning."""
    for line in proc.stderr.splitlines():
        line = line.strip()
        if line and not line.startswith(("hint:", "warning:")):
            return line.removeprefix("fatal: ").removeprefix("error: ")
    return f"git exited with status {proc.returncode}"


def _remote_head(backend: GitBackend, url: str) -> str | None:
    """The commit id of the remote's branch; None when the remote has no such branch yet."""
    ref = f"refs/heads/{backend.branch_name}"
    proc = _git(backend, "ls-remote", "--", url, ref)
    if proc.returncode != 0:
        raise BackendError(f"cannot reach the remote {url}: {_failure(proc)}")
    for line in proc.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref and _SHA.fullmatch(sha):
            return sha
    return None


def _fetch(backend: GitBackend, url: str, sha: str) -> None:
    """Fetch the remote branch's objects (no ref, no FETCH_HEAD is written: the commit stays
    unreferenced until a pull moves the branch to it)."""
    if _has_commit(backend, sha):
        return
    ref = f"refs/heads/{backend.branch_name}"
    proc = _git(backend, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", url, ref)
    if proc.returncode != 0:
        raise BackendError(f"cannot fetch from {url}: {_failure(proc)}")
    if not _has_commit(backend, sha):
        raise Conflict(f"remote {backend.branch_name} moved during the fetch (nothing changed): try again")


def _has_commit(backend: GitBackend, sha: str) -> bool:
    import pygit2

    obj = backend.repo.get(sha)
    return isinstance(obj, pygit2.Commit)


def _commit(backend: GitBackend, sha: str) -> pygit2.Commit:
    commit: pygit2.Commit = backend.repo[sha]
    return commit

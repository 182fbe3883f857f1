"""Real I/O faults while writing, on both backends: disk full, file too large, read-only and
immutable folders, a path component that is a file, too many open files, an asset that
disappears or turns into a FIFO mid-ingest, and sources that are broken symlinks or FIFOs.

Every fault is real: a tiny tmpfs (``mount -t tmpfs -o size=...``) for ENOSPC, a read-only bind
mount or ``chattr +i`` for EROFS/EPERM, ``RLIMIT_FSIZE`` and ``RLIMIT_NOFILE`` set in the child
for EFBIG and EMFILE, inotify to remove an asset the moment the writer opens its neighbour. When
a mechanism needs a privilege the machine lacks (mount, chattr) the test falls back to another
real one and says which it used; nothing is skipped.

Outcome every time: a clear one-line reason (exit 1, no traceback, no bare Python exception
name), nothing half-written (the repository byte-identical to before; for git, only unreachable
objects may be added), and the next command works.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import resource
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stac_repository import Repository

from .conftest import BIN, CORPUS
from .git_helpers import catalog_digest, fsck

PLANET = CORPUS / "stactools/data-files/planet-disaster"
TEST_CASE_2 = CORPUS / "pystac/catalogs/test-case-2/catalog.json"
PAGE = 4096
RAW_EXCEPTION = re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception): ")
"""A reason quoting a Python exception class ("OSError: ...") is an unwrapped exception."""

Proc = subprocess.CompletedProcess[str]
Preexec = Callable[[], None] | None

# -- running the CLI ------------------------------------------------------------------------------


def cli(*args: str | os.PathLike[str], preexec: Preexec = None, timeout: float = 60) -> Proc:
    """The real CLI in a child process; ``preexec`` runs in the child before exec (rlimits)."""
    env = {k: v for k, v in os.environ.items() if k != "STAC_REPOSITORY"}
    return subprocess.run(
        [str(BIN / "stac-repository"), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        preexec_fn=preexec,
        check=False,
    )


def fsize_limit(limit: int) -> Callable[[], None]:
    """In the child: writes past ``limit`` bytes fail with EFBIG (Python ignores SIGXFSZ)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def assert_clean_failure(proc: Proc, *needles: str) -> None:
    """Exit 1, one clear reason that mentions one of ``needles`` (an OS message), no traceback."""
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, f"exit {proc.returncode}: {text}"
    assert "Traceback" not in text and "internal error" not in text, text
    reasons = [
        line
        for line in text.splitlines()
        if line.startswith(("error:", "failed")) and not line.startswith("failed: ")
    ]
    assert len(reasons) == 1, text
    assert not RAW_EXCEPTION.search(reasons[0]), f"unwrapped exception in: {reasons[0]}"
    if needles:
        assert any(n in reasons[0] for n in needles), reasons[0]


def assert_next_command_works(root: Path, tmp: Path) -> None:
    """A writer and a reader succeed at once (no lock, journal or temporary left in the way),
    and leave no journal behind."""
    for args in (("config", "layout.max_items", "777"), ("export", tmp / "next-export")):
        proc = cli("-r", root, *args)
        assert proc.returncode == 0, f"{args[0]}: {proc.stderr}"
    shutil.rmtree(tmp / "next-export")
    assert not (root / ".stac-repository/local/journal").exists()


# -- repository states --------------------------------------------------------------------------


PRIVATE_SCRATCH = (
    ".git/objects/",
    ".git/lfs/objects/",
    "objects/",  # a bare git repository
    "lfs/objects/",
    ".stac-repository/local/journal/",
)


def state(root: Path) -> dict[str, str]:
    """Every file with its sha256, except the backends' scratch space: unreachable git objects a
    failed transaction may leave (``git gc`` drops them; fsck checks the rest) and an uncommitted
    journal the fault kept the writer from removing (the next command discards it, checked by
    :func:`assert_next_command_works`)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(PRIVATE_SCRATCH) or not path.is_file():
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_unchanged(root: Path, before: dict[str, str]) -> None:
    after = state(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"half-written: {changed[:10]}"
    if (root / ".git").is_dir() or is_bare(root):
        fsck(root)


def is_bare(root: Path) -> bool:
    return (root / "HEAD").is_file() and (root / "objects").is_dir()


def git_dir(root: Path) -> Path:
    return root if is_bare(root) else root / ".git"


def folder_digest(root: Path) -> dict[str, str] | None:
    """The catalog folder as a command left it; None for a bare repository, which has none."""
    return None if is_bare(root) else catalog_digest(root)


def new_repository(root: Path, backend: str, *sources: Path) -> Path:
    options = {"worktree": True} if backend == "git-worktree" else None
    name = backend.removesuffix("-worktree")
    repo = Repository.init(root, backend=name, id="root", description="faults", options=options)
    for source in sources:
        assert not repo.ingest([str(source)]).failed
    repo.backend.close()
    return root


def writable_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


BACKENDS = pytest.mark.parametrize("backend", ["file", "git", "git-worktree"])
"""git is bare, as by default; git-worktree has its catalog checked out (init --worktree)."""

# -- privileges: mount and chattr, with fallbacks -------------------------------------------------


def _run(*args: str) -> bool:
    exe = shutil.which(args[0])
    if exe is None:
        return False
    return subprocess.run([exe, *args[1:]], capture_output=True, check=False).returncode == 0


@contextlib.contextmanager
def tmpfs(path: Path, size: int) -> Iterator[bool]:
    """A tmpfs of ``size`` bytes at ``path``; False when this machine cannot mount one."""
    path.mkdir(parents=True, exist_ok=True)
    if not _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)):
        yield False
        return
    try:
        yield True
    finally:
        if not _run("umount", str(path)):
            _run("umount", "-l", str(path))


@contextlib.contextmanager
def unwritable(path: Path, *, recursive: bool) -> Iterator[tuple[str, Preexec]]:
    """Make ``path`` unwritable even for root: a read-only bind mount (EROFS) or ``chattr +i``
    (EPERM), else a child RLIMIT_FSIZE of 0 (EFBIG on any write). Yields (mechanism, preexec)."""
    flags = ["-R"] if recursive else []
    # A folder inside: chattr first (a bind mount would make renames into it fail with EXDEV).
    if not recursive and _run("chattr", "+i", str(path)):
        try:
            yield "chattr +i", None
        finally:
            _run("chattr", "-i", str(path))
        return
    if _run("mount", "--bind", str(path), str(path)):
        if _run("mount", "-o", "remount,bind,ro", str(path)):
            try:
                yield "read-only bind mount", None
            finally:
                _run("umount", str(path))
            return
        _run("umount", str(path))
    if _run("chattr", *flags, "+i", str(path)):
        try:
            yield "chattr +i", None
        finally:
            _run("chattr", *flags, "-i", str(path))
        return
    yield "RLIMIT_FSIZE 0", fsize_limit(0)


# -- disk full and file too large --------------------------------------------------------------


def _fill(mount: Path, free: int) -> None:
    """Leave exactly ``free`` bytes (rounded to pages) free on the tmpfs at ``mount``."""
    filler = mount / "filler"
    filler.unlink(missing_ok=True)
    st = os.statvfs(mount)
    available = st.f_bavail * st.f_frsize
    size = max(0, available - free)
    with open(filler, "wb") as fh, contextlib.suppress(OSError):
        fh.write(b"\0" * size)


def _check_success(repo: Path, on_disk: dict[str, str] | None, tmp: Path) -> None:
    """A reported success committed the assets and left the catalog folder (``on_disk``, as the
    command left it; None for a bare repository, which has none) exactly at the committed state:
    for git, the working tree shows the new commit, with no temporary."""
    opened = Repository.open(repo)
    export = tmp / "success-export"
    shutil.rmtree(export, ignore_errors=True)
    opened.export(export)
    opened.backend.close()
    committed = catalog_digest(export)
    assert len([p for p in committed if p.endswith(".tif")]) == 3, "success reported without the assets"
    if on_disk is None:
        return
    stale = sorted(k for k in on_disk.keys() | committed.keys() if on_disk.get(k) != committed.get(k))
    assert not stale, f"reported success, but the catalog folder is not the committed state: {stale[:3]}"


@BACKENDS
def test_disk_full_at_every_page(backend: str, tmp_path: Path) -> None:
    """ENOSPC on a real 4 MiB tmpfs: ingest planet-disaster (800 KiB of assets) with the free space
    found by bisection (the least that suffices), then each of the 6 pages below it and a few
    lower values. Each failure is clean and leaves the repository byte-identical; each success is
    complete at once. Without mount (no CAP_SYS_ADMIN) the sweep runs on RLIMIT_FSIZE (EFBIG).
    """
    pristine = new_repository(tmp_path / "pristine", backend, TEST_CASE_2)
    before = state(pristine)
    mount = tmp_path / "mnt"
    source = PLANET / "collection.json"
    problems: list[str] = []
    with tmpfs(mount, 4 << 20) as mounted:
        repo = mount / "repo" if mounted else tmp_path / "repo"
        outcomes: dict[int, bool] = {}

        def attempt(free: int) -> bool:
            shutil.rmtree(repo, ignore_errors=True)
            (mount / "filler").unlink(missing_ok=True)
            shutil.copytree(pristine, repo, symlinks=True)
            if mounted:
                _fill(mount, free)
            proc = cli("-r", repo, "ingest", source, preexec=None if mounted else fsize_limit(free))
            on_disk = folder_digest(repo)
            (mount / "filler").unlink(missing_ok=True)
            try:
                if proc.returncode == 0:
                    _check_success(repo, on_disk, tmp_path)
                else:
                    assert_clean_failure(proc, "No space left on device", "File too large")
                    assert_unchanged(repo, before)
            except AssertionError as exc:
                problems.append(f"{free} bytes free: {str(exc).splitlines()[0]}")
            outcomes[free] = proc.returncode == 0
            return proc.returncode == 0

        low, high = 0, 3 << 20
        assert attempt(high), f"the ingest does not fit even with 3 MiB free: {problems}"
        while high - low > PAGE:
            middle = (low + high) // 2 // PAGE * PAGE
            low, high = (low, middle) if attempt(middle) else (middle, high)
        for free in [high - k * PAGE for k in range(1, 7)] + [0, high // 2]:
            if max(free, 0) not in outcomes:
                attempt(max(free, 0))
        assert not outcomes[0]
        assert_next_command_works(repo, tmp_path)
    mechanism = "tmpfs" if mounted else "RLIMIT_FSIZE"
    assert not problems, f"{mechanism}, {len(outcomes)} runs:\n" + "\n".join(problems)


@BACKENDS
def test_file_too_large(backend: str, tmp_path: Path) -> None:
    """EFBIG from RLIMIT_FSIZE (works on any machine): assets larger than the limit cannot be
    written; the ingest fails cleanly and the repository is unchanged."""
    repo = new_repository(tmp_path / "repo", backend, TEST_CASE_2)
    before = state(repo)
    for limit in (100_000, 300_000):
        proc = cli("-r", repo, "ingest", PLANET / "collection.json", preexec=fsize_limit(limit))
        assert_clean_failure(proc, "File too large")
        assert_unchanged(repo, before)
    assert_next_command_works(repo, tmp_path)


@pytest.mark.parametrize("worktree", [True, False], ids=["worktree", "bare"])
def test_git_out_of_inodes_while_the_branch_moves(worktree: bool, tmp_path: Path) -> None:
    """ENOSPC from a tmpfs out of inodes, during a rollback whose blobs and trees all exist: only
    the commit object, the working-tree files, the ref lock and the reflog are new, so each
    limit stops a later step of the commit, up to the branch move. Each failure names the full
    disk (never "the branch moved"), leaves every file byte-identical, reflogs included, and
    the next command works; the first limit that suffices gives a complete success."""
    mount = tmp_path / "mnt"
    pristine = tmp_path / "pristine"
    repo = Repository.init(
        pristine, backend="git", id="root", description="inodes", options={"worktree": worktree}
    )
    for source in (TEST_CASE_2, PLANET / "collection.json"):
        assert not repo.ingest([str(source)]).failed
    assert repo.rollback("HEAD~1") is not None  # the planet product goes: rolling back re-adds it
    repo.backend.close()
    # Unreachable objects, and the working-tree marker: a restore that could not rewrite it
    # leaves it naming both trees, and the next command re-checks the paths where they differ.
    scratch = (".git/objects/", ".git/stac-repository/worktree") if worktree else ("objects/",)
    before = {k: v for k, v in state(pristine).items() if not k.startswith(scratch)}
    with tmpfs(mount, 64 << 20) as mounted:
        if not mounted:
            pytest.skip("needs a tmpfs mount (root): inodes cannot run out otherwise")
        target = mount / "repo"
        outcomes = []
        for spare in range(0, 80):
            assert _run("mount", "-o", "remount,nr_inodes=100000", str(mount))
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(pristine, target, symlinks=True)
            st = os.statvfs(mount)
            assert _run("mount", "-o", f"remount,nr_inodes={st.f_files - st.f_ffree + spare}", str(mount))
            proc = cli("-r", target, "rollback", "HEAD~1")
            assert _run("mount", "-o", "remount,nr_inodes=100000", str(mount))
            outcomes.append(proc.returncode)
            if proc.returncode == 0:
                _check_success(target, folder_digest(target), tmp_path)
                break
            assert_clean_failure(proc, "No space left on device", "out of disk space or inodes")
            after = {k: v for k, v in state(target).items() if not k.startswith(scratch)}
            changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
            assert not changed, f"{spare} spare inodes: half-written: {changed[:10]}"
            fsck(target)
            assert_next_command_works(target, tmp_path)
        assert outcomes[0] == 1 and outcomes[-1] == 0, outcomes


# -- permissions --------------------------------------------------------------------------------


@BACKENDS
def test_read_only_repository(backend: str, tmp_path: Path) -> None:
    """The whole repository read-only: every writer fails with one clear line (exit 1), readers
    still work, nothing changes; once writable again the next command works."""
    repo = new_repository(tmp_path / "repo", backend, TEST_CASE_2)
    before = state(repo)
    with unwritable(repo, recursive=True) as (mechanism, preexec):
        for args in (
            ("ingest", PLANET / "collection.json"),
            ("config", "layout.max_items", "5"),
            ("prune", json.loads(TEST_CASE_2.read_text())["id"]),
        ):
            proc = cli("-r", repo, *args, preexec=preexec)
            assert_clean_failure(proc)
        export = cli("-r", repo, "export", tmp_path / "export", preexec=preexec)
        assert export.returncode == 0, f"{mechanism}: reader failed: {export.stderr}"
    assert_unchanged(repo, before)
    assert_next_command_works(repo, tmp_path)


@BACKENDS
@pytest.mark.parametrize("verb", ["export", "backup"])
def test_export_and_backup_to_a_full_disk(backend: str, verb: str, tmp_path: Path) -> None:
    """The destination is a 256 KiB tmpfs (else RLIMIT_FSIZE 100 kB) and the catalog holds 800 KiB
    of assets: one clear line, no partial copy left at the destination, the repository untouched."""
    repo = new_repository(tmp_path / "repo", backend, TEST_CASE_2, PLANET / "collection.json")
    before = state(repo)
    with tmpfs(tmp_path / "small", 256 << 10) as mounted:
        target = tmp_path / "small" / "copy"
        proc = cli("-r", repo, verb, target, preexec=None if mounted else fsize_limit(100_000))
        assert_clean_failure(proc, "No space left on device", "File too large")
        assert not list((tmp_path / "small").iterdir()), "a partial copy was left behind"
    assert_unchanged(repo, before)
    assert_next_command_works(repo, tmp_path)


@BACKENDS
def test_no_file_can_grow(backend: str, tmp_path: Path) -> None:
    """RLIMIT_FSIZE 0 in the child (any machine): every write of a byte fails with EFBIG, also in
    the temporary folders (Python's tempfile finds none usable). Writers and exports fail with
    one clear line and change nothing."""
    repo = new_repository(tmp_path / "repo", backend, TEST_CASE_2)
    before = state(repo)
    for args in (
        ("ingest", PLANET / "collection.json"),
        ("config", "layout.max_items", "5"),
        ("export", tmp_path / "export"),
    ):
        assert_clean_failure(cli("-r", repo, *args, preexec=fsize_limit(0)))
    assert_unchanged(repo, before)
    assert not (tmp_path / "export").exists()
    assert_next_command_works(repo, tmp_path)


@pytest.mark.parametrize("backend", ["file", "git-worktree"])  # bare git has no product folder
def test_unwritable_product_folder_during_an_update(backend: str, tmp_path: Path) -> None:
    """The stored folder of a product cannot be changed (``chattr +i``, or a read-only mount) when
    an update replaces it. The ingest fails with one clear line or succeeds, and what it reports
    stays true: "failed" leaves the old version for good, "updated" the new one. Meanwhile a reader
    works or fails with one clear line."""
    repo = new_repository(tmp_path / "repo", backend, TEST_CASE_2, PLANET / "collection.json")
    v2 = writable_copy(PLANET, tmp_path / "planet-v2")
    doc = json.loads((v2 / "collection.json").read_text())
    doc["description"] = "second version"
    (v2 / "collection.json").write_text(json.dumps(doc))
    Repository.open(repo).export(tmp_path / "old")
    old = catalog_digest(tmp_path / "old")
    folder = next(p.parent for p in repo.glob("*/collection.json"))
    problems = []
    with unwritable(folder, recursive=False) as (mechanism, preexec):
        proc = cli("-r", repo, "ingest", v2 / "collection.json", preexec=preexec)
        reported = "updated" if proc.returncode == 0 else "failed"
        for what, check in (
            ("ingest", lambda: reported == "updated" or assert_clean_failure(proc)),
            ("reader during the fault", lambda: _reader_ok(repo, tmp_path / "during", preexec)),
        ):
            try:
                check()
            except AssertionError as exc:
                problems.append(f"{what}: {str(exc).splitlines()[0]}")
    assert_next_command_works(repo, tmp_path)
    Repository.open(repo).export(tmp_path / "final")
    final = catalog_digest(tmp_path / "final")
    stored = (tmp_path / "final" / folder.name / "collection.json").read_text()
    if reported == "failed" and final != old:
        problems.append("the ingest said failed, but the update landed with the next command")
    if reported == "updated" and "second version" not in stored:
        problems.append("the ingest said updated, but the update is not there")
    if catalog_digest(repo) != final:
        problems.append("the catalog folder differs from the committed state")
    assert not problems, f"{mechanism}:\n" + "\n".join(problems)


def _reader_ok(repo: Path, out: Path, preexec: Preexec) -> None:
    proc = cli("-r", repo, "export", out, preexec=preexec)
    if proc.returncode != 0:
        assert_clean_failure(proc)


@BACKENDS
def test_a_path_component_that_is_a_file(backend: str, tmp_path: Path) -> None:
    """ENOTDIR/EEXIST, no privilege needed: a regular file stands where the backend's private
    folder for new files must be (file: ``local/journal``, git: ``lfs/tmp`` in the git folder)."""
    repo = new_repository(tmp_path / "repo", backend, TEST_CASE_2)
    if backend == "file":
        blocker = repo / ".stac-repository/local/journal"
    else:
        blocker = git_dir(repo) / "lfs/tmp"
        shutil.rmtree(blocker, ignore_errors=True)
        blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("in the way\n")
    before = state(repo)
    proc = cli("-r", repo, "ingest", PLANET / "collection.json")
    assert_clean_failure(proc)
    reader = cli("-r", repo, "config")
    if reader.returncode != 0:
        assert_clean_failure(reader)
    writer = cli("-r", repo, "config", "layout.max_items", "5")
    if writer.returncode != 0:
        assert_clean_failure(writer)
    else:
        before = state(repo)
    assert_unchanged(repo, before)
    blocker.unlink()
    assert_next_command_works(repo, tmp_path)


WORKER = r"""
import os, resource, sys
import stac_repository.backends.file, stac_repository.backends.git, stac_repository.cli.render
import stac_repository.processors.stac, stac_repository.repository
import stac_repository.repository.export, stac_repository.repository.ingest
import stac_repository.stac.planner, stac_repository.stac.validation
from stac_repository.cli.common import run
from stac_repository.cli.repository_app import app
free = min(set(range(1024)) - {int(fd) for fd in os.listdir("/proc/self/fd")})
limit = free + int(os.environ["EXTRA_FDS"])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
sys.exit(run(app, "stac-repository", sys.argv[1:]))
"""


@BACKENDS
def test_too_many_open_files(backend: str, tmp_path: Path) -> None:
    """EMFILE: the writer may open only 0, 1, 2 or 3 more files than it has after start-up
    (RLIMIT_NOFILE set in the child). Each run fails cleanly and changes nothing, or succeeds."""
    pristine = new_repository(tmp_path / "pristine", backend, TEST_CASE_2)
    before = state(pristine)
    outcomes = []
    for extra in range(4):
        repo = tmp_path / f"repo-{extra}"
        shutil.copytree(pristine, repo, symlinks=True)
        proc = subprocess.run(
            [sys.executable, "-c", WORKER, "-r", str(repo), "ingest", str(PLANET / "collection.json")],
            capture_output=True,
            text=True,
            env={**os.environ, "EXTRA_FDS": str(extra)},
            timeout=60,
            check=False,
        )
        outcomes.append(proc.returncode)
        if proc.returncode != 0:
            assert_clean_failure(proc, "Too many open files")
            assert_unchanged(repo, before)
        Repository.open(repo).set_config("layout.max_items", "5")  # the next command works
        assert not (repo / ".stac-repository/local/journal").exists()
    assert_next_command_works(repo, tmp_path)
    assert outcomes[0] == 1 and outcomes[-1] == 0, outcomes


# -- sources that change or are not files ---------------------------------------------------------

IN_OPEN = 0x20


def _watch_open(path: Path, then: Callable[[], None]) -> threading.Thread:
    """Run ``then`` as soon as any process opens ``path`` (inotify)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    assert libc.inotify_add_watch(fd, str(path).encode(), IN_OPEN) >= 0

    def wait() -> None:
        try:
            os.read(fd, 4096)
            then()
        finally:
            os.close(fd)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def _two_asset_item(folder: Path) -> Path:
    """An item whose first asset is big (so copying it takes a while) and second is small."""
    folder.mkdir()
    # 96 MiB: copying it outlasts a watcher that wakes late on a busy machine
    (folder / "a.bin").write_bytes(os.urandom(96 << 20))
    (folder / "b.bin").write_bytes(b"small asset\n")
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "two-assets",
        "geometry": None,
        "properties": {"datetime": "2020-01-01T00:00:00Z"},
        "links": [],
        "assets": {"a": {"href": "./a.bin"}, "b": {"href": "./b.bin"}},
    }
    (folder / "item.json").write_text(json.dumps(item))
    return folder / "item.json"


@BACKENDS
@pytest.mark.parametrize("becomes", ["gone", "fifo"])
def test_asset_changes_while_the_writer_copies_its_neighbour(
    backend: str, becomes: str, tmp_path: Path
) -> None:
    """Asset b disappears (or is replaced by a FIFO) the moment the writer opens asset a, i.e.
    after validation and planning. The ingest fails cleanly within seconds (a FIFO must never
    block the writer, which holds the lock), and nothing is written."""
    repo = new_repository(tmp_path / "repo", backend, TEST_CASE_2)
    before = state(repo)
    item = _two_asset_item(tmp_path / "product")
    b = item.parent / "b.bin"

    def swap() -> None:
        b.unlink()
        if becomes == "fifo":
            os.mkfifo(b)

    watcher = _watch_open(item.parent / "a.bin", swap)
    proc = subprocess.Popen(
        [str(BIN / "stac-repository"), "-r", str(repo), "ingest", str(item)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        out, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(
            f"{backend}: the writer hung on asset b turned into a FIFO, holding the lock (killed after 5 s)"
        )
    finally:
        watcher.join(5)
    assert not watcher.is_alive(), "the writer never opened asset a"
    assert_clean_failure(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    assert_unchanged(repo, before)
    assert_next_command_works(repo, tmp_path)


def _odd_sources(root: Path) -> dict[str, Path]:
    """Products that are, or point at, things that are not regular files."""
    root.mkdir()
    out: dict[str, Path] = {}
    os.mkfifo(root / "fifo.json")
    out["fifo source"] = root / "fifo.json"
    (root / "broken.json").symlink_to(root / "missing" / "x.json")
    out["broken symlink source"] = root / "broken.json"
    (root / "loop.json").symlink_to(root / "loop.json")
    out["symlink loop source"] = root / "loop.json"
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "odd",
        "geometry": None,
        "properties": {"datetime": "2020-01-01T00:00:00Z"},
        "links": [],
    }
    for name, make in {
        "fifo asset": lambda p: os.mkfifo(p),
        "broken symlink asset": lambda p: p.symlink_to(p.parent / "nowhere.bin"),
        "folder asset": lambda p: p.mkdir(),
    }.items():
        folder = root / name.replace(" ", "-")
        folder.mkdir()
        make(folder / "data.bin")
        (folder / "item.json").write_text(json.dumps({**item, "assets": {"d": {"href": "./data.bin"}}}))
        out[name] = folder / "item.json"
    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "odd-catalog",
        "description": "a child that is a FIFO",
        "links": [{"rel": "child", "href": "./child/catalog.json"}],
    }
    folder = root / "fifo-child"
    (folder / "child").mkdir(parents=True)
    os.mkfifo(folder / "child" / "catalog.json")
    (folder / "catalog.json").write_text(json.dumps(catalog))
    out["fifo child link"] = folder / "catalog.json"
    return out


@BACKENDS
def test_sources_that_are_not_regular_files(backend: str, tmp_path: Path) -> None:
    """FIFOs, broken symlinks, symlink loops and folders as sources, assets or children: each
    ingest fails within seconds with one clear line and writes nothing."""
    repo = new_repository(tmp_path / "repo", backend, TEST_CASE_2)
    before = state(repo)
    sources = _odd_sources(tmp_path / "odd")
    assert stat.S_ISFIFO(os.lstat(sources["fifo source"]).st_mode)

    def ingest(source: Path) -> Proc:
        try:
            return cli("-r", repo, "ingest", source, timeout=20)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess([], -1, "", "hung for 20 s")

    with ThreadPoolExecutor(3) as pool:
        procs = dict(zip(sources, pool.map(ingest, sources.values()), strict=True))
    for name, proc in procs.items():
        assert proc.returncode != -1, f"{name}: the writer hung"
        try:
            assert_clean_failure(proc)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    assert_unchanged(repo, before)
    assert_next_command_works(repo, tmp_path)

"""Benchmarks of stac-repository through its public API and CLI.

    python bench/run.py                      # N = 1000 and 10000, every registered backend
    python bench/run.py --quick              # N = 1000 only, fewer repetitions (CI)
    python bench/run.py --sizes 1000 --backends file --json results.json
    python bench/run.py --large --workdir /var/tmp/large --json large.json   # 1M items, file

For each size N and backend: bulk ingest of an N-item collection (one ``repo.ingest`` call,
in a subprocess whose peak RSS is read with ``wait4``), then, on that repository: single-item
ingest (library and CLI), update of one item, prune of one item, export and backup. CLI
start-up (``stac-repository version``) is measured once, and so is ``history`` on a repository
of every backend that keeps history, with ``--history-commits`` (10000) commits appended by
``git fast-import``.

``--large`` builds instead one repository of ``--large-items`` (1,000,000) items out of
products of ``--large-product-items`` (10,000) items, each ingested by its own subprocess
(peak RSS per product), resumable with ``--workdir``, then measures single-item ingest, the
CLI, update and prune on it. See docs/performance.md.

Exit status: 0; 1 on a GROSS regression only (thresholds below); 2 when an operation failed.
POSIX only (``os.wait4``, ``os.sync``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate_collection, item_id, write_item

COLLECTION_ID = "bench"
# Gross-regression thresholds: far above machine noise (medians, 2-core CI runner).
SCALING_FACTOR = 10  # compare single-item ingest at N and at >= 10 x N ...
MAX_SCALING_SLOWDOWN = 5.0  # ... and fail when it is more than 5 x slower
MAX_CLI_STARTUP_MS = 1000.0
PROBE_SIZE = 100  # small N used for the scaling guard when the run has no pair of sizes 10 x apart
MAX_HISTORY_S = 10.0  # reading a 10k-commit history (library) must not take longer than this
HISTORY_COMMITS = 10_000
LARGE_ITEMS = 1_000_000
LARGE_PRODUCT_ITEMS = 10_000


class BenchFailure(Exception):
    """An operation under measure failed (not slow: broken)."""


@dataclass
class SizeResult:
    """Figures for one (backend, N)."""

    backend: str
    n: int
    generate_s: float = 0.0
    bulk_s: float = 0.0
    bulk_items_per_s: float = 0.0
    bulk_peak_rss_mb: float = 0.0
    single_ms: float = 0.0
    single_cli_ms: float = 0.0
    update_ms: float = 0.0
    prune_ms: float = 0.0
    export_s: float = 0.0
    export_items_per_s: float = 0.0
    export_files: int = 0
    backup_s: float = 0.0
    load_start: float = 0.0  # 1-minute load average when the measures of this size began ...
    load_end: float = 0.0  # ... and when they ended: other work on the machine shows up here
    samples: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Reps:
    """How many times each repeated measure runs (the median is reported)."""

    single: int = 7
    cli: int = 5
    update: int = 5
    prune: int = 5
    startup: int = 10


# -- helpers --------------------------------------------------------------------------------


def cli_path() -> str:
    """The ``stac-repository`` script of this interpreter's environment."""
    local = Path(sys.executable).with_name("stac-repository")
    if local.exists():
        return str(local)
    found = shutil.which("stac-repository")
    if found is None:
        raise SystemExit("stac-repository is not installed: pip install -e '.[test]'")
    return found


@contextmanager
def timer() -> Iterator[list[float]]:
    """Yield a one-element list that receives the elapsed seconds."""
    out = [0.0]
    start = time.perf_counter()
    yield out
    out[0] = time.perf_counter() - start


def settle() -> None:
    """Flush dirty pages so that writeback of earlier steps does not land in the next measure."""
    if hasattr(os, "sync"):
        os.sync()


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, Python and library versions."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import stac_repository

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    package = Path(stac_repository.__file__).resolve().parent
    commit = dirty = None
    try:  # which code was measured: the checkout's commit, and whether its src/ had local edits
        git = ["git", "-C", str(package)]
        commit = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                [*git, "--no-optional-locks", "status", "--porcelain", "--", "."],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "nproc": affinity,
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "stac_repository": stac_repository.__version__,
        "stac_repository_path": str(package),
        "commit": commit,
        "src_dirty": dirty,
    }


def print_profile(path: Path, title: str, limit: int = 20) -> None:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(limit)
    print(f"\n--- profile: {title} ({path}) ---")
    print(out.getvalue())


# -- the bulk ingest worker (a subprocess, so its peak RSS is its own) ---------------------


def bulk_worker(
    repo_dir: str, backend: str, collection: str, fsync: str, profile: str, mode: str = "init"
) -> int:
    """Init (``mode`` "init") or open ("open") a repository, ingest ``collection`` in one call,
    print timings as JSON."""
    from stac_repository import Repository

    if mode == "open":
        repo = Repository.open(repo_dir)
    else:
        repo = Repository.init(
            repo_dir, backend=backend, id="root", description="benchmark", license="proprietary"
        )
    if fsync != "default" and mode != "open":
        repo.set_config("fsync", fsync)
        repo = Repository.open(repo_dir)
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    report = repo.ingest([collection])
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    seconds = time.perf_counter() - start
    failed = [r.to_json() for r in report.failed]
    sys.stdout.buffer.write(
        orjson.dumps({"seconds": seconds, "added": report.count("added"), "failed": failed})
    )
    return 1 if failed else 0


def run_bulk(
    repo_dir: Path,
    backend: str,
    collection: Path,
    fsync: str,
    profile: Path | None,
    mode: str = "init",
) -> tuple[float, float]:
    """Run :func:`bulk_worker` in a child; return (seconds, peak RSS in MiB of that child)."""
    cmd = [
        sys.executable,
        __file__,
        "_bulk",
        str(repo_dir),
        backend,
        str(collection),
        fsync,
        str(profile or ""),
        mode,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the max over all children so far.
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchFailure(
            f"bulk ingest failed (exit {proc.returncode}): {out.decode(errors='replace')[:2000]}"
        )
    data = orjson.loads(out)
    rss_kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024
    return float(data["seconds"]), rss_kib / 1024.0


# -- measures on an N-item repository ------------------------------------------------------


def _ingest_one(repo: Any, item: Path, expect: str, parent: str = COLLECTION_ID) -> float:
    with timer() as elapsed:
        report = repo.ingest([str(item)], parent=parent)
    if report.failed or report.count(expect) != 1:
        raise BenchFailure(
            f"ingest of {item} did not report {expect!r}: {orjson.dumps(report.to_json()).decode()}"
        )
    return elapsed[0]


def measure_size(
    backend: str,
    n: int,
    source: Path,
    work: Path,
    reps: Reps,
    *,
    fsync: str,
    profile_dir: Path | None,
    generate_s: float = 0.0,
    full: bool = True,
) -> SizeResult:
    """Every measure for one backend and one N (``full=False``: bulk and single-item ingest only)."""
    from stac_repository import Repository

    res = SizeResult(backend=backend, n=n, generate_s=generate_s, load_start=os.getloadavg()[0])
    base = work / f"{backend}-{n}"
    repo_dir = base / "repo"
    items = base / "items"
    prof = (profile_dir / f"bulk-{backend}-{n}.prof") if profile_dir else None
    settle()
    res.bulk_s, res.bulk_peak_rss_mb = run_bulk(repo_dir, backend, source, fsync, prof)
    res.bulk_items_per_s = n / res.bulk_s
    repo = Repository.open(repo_dir)
    settle()

    # Warm-up: imports, processor registry; not measured.
    _ingest_one(repo, write_item(items / "warmup", n=30_000_000), "added")

    profiler = cProfile.Profile() if profile_dir else None
    single: list[float] = []
    for k in range(reps.single):
        item = write_item(items / f"single-{k}", n=10_000_000 + k)
        if profiler is not None:
            profiler.enable()
        single.append(_ingest_one(repo, item, "added"))
        if profiler is not None:
            profiler.disable()
    if profiler is not None and profile_dir is not None:
        profiler.dump_stats(profile_dir / f"single-{backend}-{n}.prof")
    res.single_ms = median_ms(single)
    res.samples["single"] = single
    if not full:
        res.load_end = os.getloadavg()[0]
        return res

    cli = cli_path()
    cli_samples: list[float] = []
    for k in range(reps.cli):
        item = write_item(items / f"cli-{k}", n=20_000_000 + k)
        cmd = [cli, "-r", str(repo_dir), "ingest", str(item), "--parent", COLLECTION_ID]
        with timer() as elapsed:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchFailure(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
        cli_samples.append(elapsed[0])
    res.single_cli_ms = median_ms(cli_samples)
    res.samples["single_cli"] = cli_samples

    update: list[float] = []
    for k in range(reps.update):
        changed = write_item(items / f"update-{k}", n=k, changed=1)  # item k of the collection, changed
        update.append(_ingest_one(repo, changed, "updated"))
    res.update_ms = median_ms(update)
    res.samples["update"] = update

    prune: list[float] = []
    for k in range(reps.prune):
        ident = item_id(COLLECTION_ID, n // 2 + k)
        with timer() as elapsed:
            commit = repo.prune([ident])
        if commit is None or ident not in commit.summary.get("removed", []):
            raise BenchFailure(f"prune {ident} removed nothing")
        prune.append(elapsed[0])
    res.prune_ms = median_ms(prune)
    res.samples["prune"] = prune

    settle()
    with timer() as elapsed:
        res.export_files = repo.export(base / "export")
    res.export_s = elapsed[0]
    res.export_items_per_s = n / res.export_s
    settle()
    with timer() as elapsed:
        repo.backup(base / "backup")
    res.backup_s = elapsed[0]
    res.load_end = os.getloadavg()[0]
    return res


def cli_startup_ms(runs: int) -> tuple[float, list[float]]:
    """Median wall time of ``stac-repository version`` (after one warm-up run)."""
    cmd = [cli_path(), "version"]
    samples: list[float] = []
    for k in range(runs + 1):
        with timer() as elapsed:
            done = subprocess.run(cmd, capture_output=True, check=False)
        if done.returncode != 0:
            raise BenchFailure(f"stac-repository version exited {done.returncode}")
        if k:
            samples.append(elapsed[0])
    return median_ms(samples), samples


# -- history ---------------------------------------------------------------------------------


@dataclass
class HistoryResult:
    """``history`` on a repository of ``commits`` commits (plus the ones init made)."""

    backend: str
    commits: int
    build_s: float = 0.0
    library_ms: float = 0.0  # repo.history() fully consumed, repository already open
    library_open_ms: float = 0.0  # Repository.open() + history fully consumed
    cli_ms: float = 0.0  # stac-repository -r REPO history --json, whole command
    cli_bytes: int = 0
    samples: dict[str, list[float]] = field(default_factory=dict)


def _history_message(k: int) -> bytes:
    """The message an ingest of one new item would write (the git backend's own format)."""
    from stac_repository import __version__
    from stac_repository.backends.gitobjects import compose_message

    ident = item_id("history", k)
    version = f"{k:064x}"
    summary = {
        "product": ident,
        "processor": "stac",
        "processor_version": __version__,
        "product_version": version,
        "objects": 1,
        "added": [ident],
        "updated": [],
        "removed": [],
        "counts": {"added": 1, "updated": 0, "removed": 0},
    }
    return compose_message(f"ingest {ident} (stac {__version__}, version {version})", summary).encode()


def build_history(repo_dir: Path, backend: str, commits: int) -> float:
    """Init a ``backend`` repository, then append ``commits`` commits to its branch with
    ``git fast-import`` (messages in the backend's format, trees unchanged); return seconds."""
    from stac_repository import Repository

    start = time.perf_counter()
    repo = Repository.init(
        repo_dir, backend=backend, id="root", description="history benchmark", license="proprietary"
    )
    branch = getattr(repo.backend, "branch", "refs/heads/main")
    git = ["git", "-C", str(repo_dir)]
    head = subprocess.run(
        [*git, "rev-parse", branch], capture_output=True, text=True, check=True
    ).stdout.strip()
    stream = io.BytesIO()
    when = 1_700_000_000
    for k in range(commits):
        message = _history_message(k)
        stream.write(f"commit {branch}\n".encode())
        stream.write(f"committer stac-repository <stac-repository@localhost> {when + k} +0000\n".encode())
        stream.write(f"data {len(message)}\n".encode() + message + b"\n")
        if k == 0:
            stream.write(f"from {head}\n".encode())
        stream.write(b"\n")
    stream.write(b"done\n")
    done = subprocess.run(
        [*git, "fast-import", "--quiet", "--done"], input=stream.getvalue(), capture_output=True, check=False
    )
    if done.returncode != 0:
        raise BenchFailure(f"git fast-import exited {done.returncode}: {done.stderr.decode()[:2000]}")
    return time.perf_counter() - start


def measure_history(backend: str, commits: int, work: Path, reps: int) -> HistoryResult:
    """Time ``repo.history()`` (fully consumed) and ``stac-repository history --json``."""
    from stac_repository import Repository

    res = HistoryResult(backend=backend, commits=commits)
    repo_dir = work / f"history-{backend}"
    res.build_s = build_history(repo_dir, backend, commits)
    settle()
    expected = sum(1 for _ in Repository.open(repo_dir).history())  # warm-up, and the count
    if expected < commits:
        raise BenchFailure(f"history lists {expected} commits, fewer than the {commits} appended")
    lib: list[float] = []
    lib_open: list[float] = []
    for _ in range(reps):
        with timer() as elapsed:
            repo = Repository.open(repo_dir)
            with timer() as walk:
                count = sum(1 for _ in repo.history())
        if count != expected:
            raise BenchFailure(f"history listed {count} commits, expected {expected}")
        lib.append(walk[0])
        lib_open.append(elapsed[0])
    res.library_ms, res.library_open_ms = median_ms(lib), median_ms(lib_open)
    res.samples["library"], res.samples["library_open"] = lib, lib_open
    cmd = [cli_path(), "-r", str(repo_dir), "history", "--json"]
    cli: list[float] = []
    for _ in range(reps):
        with timer() as elapsed:
            done = subprocess.run(cmd, capture_output=True, check=False)
        if done.returncode != 0:
            raise BenchFailure(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()[:500]}")
        cli.append(elapsed[0])
        res.cli_bytes = len(done.stdout)
        rows = orjson.loads(done.stdout)
        if len(rows) != expected:
            raise BenchFailure(f"history --json listed {len(rows)} commits, expected {expected}")
    res.cli_ms = median_ms(cli)
    res.samples["cli"] = cli
    return res


# -- the large repository (--large) --------------------------------------------------------


@dataclass
class LargeResult:
    """A repository of ``items`` items built from ``products`` products, and measures on it."""

    backend: str
    items: int
    products: int
    product_items: int
    build_s: float = 0.0  # sum of the ingest times (generation excluded)
    generate_s: float = 0.0
    product_s: list[float] = field(default_factory=list)
    product_rss_mb: list[float] = field(default_factory=list)
    product_loadavg: list[float] = field(default_factory=list)
    single_ms: float = 0.0
    single_cli_ms: float = 0.0
    update_ms: float = 0.0
    prune_ms: float = 0.0
    history_ms: float = 0.0  # backends with history: repo.history() fully consumed
    samples: dict[str, list[float]] = field(default_factory=dict)


def large_collection_id(k: int) -> str:
    return f"c{k:04d}"


def _load_state(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes()) if path.exists() else {"done": {}}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def build_large(
    backend: str, items: int, product_items: int, base: Path, fsync: str, seed: int
) -> LargeResult:
    """Ingest ``items`` / ``product_items`` generated collections into one repository, one child
    process per product. Progress goes to ``base/state.json``: a rerun with the same ``base``
    skips the products already ingested."""
    from stac_repository import Repository

    products = -(-items // product_items)
    res = LargeResult(backend=backend, items=items, products=products, product_items=product_items)
    base.mkdir(parents=True, exist_ok=True)
    repo_dir = base / "repo"
    state_path = base / "state.json"
    state = _load_state(state_path)
    if not repo_dir.exists():
        repo = Repository.init(
            repo_dir, backend=backend, id="root", description="1M-item benchmark", license="proprietary"
        )
        if fsync != "default":
            repo.set_config("fsync", fsync)
        state = {"done": {}}
        _save_state(state_path, state)
    started = time.perf_counter()
    this_run = 0
    for k in range(products):
        cid = large_collection_id(k)
        if cid in state["done"]:
            continue
        count = min(product_items, items - k * product_items)
        source_dir = base / f"source-{cid}"
        shutil.rmtree(source_dir, ignore_errors=True)
        with timer() as gen:
            source = generate_collection(source_dir, count, seed=seed + k, collection_id=cid)
        settle()
        load = os.getloadavg()[0]
        seconds, rss = run_bulk(repo_dir, backend, source, fsync, None, mode="open")
        state["done"][cid] = {
            "items": count,
            "seconds": seconds,
            "rss_mb": rss,
            "generate_s": gen[0],
            "load": load,
        }
        _save_state(state_path, state)
        shutil.rmtree(source_dir, ignore_errors=True)
        this_run += 1
        done = len(state["done"])
        total_items = sum(d["items"] for d in state["done"].values())
        spent = time.perf_counter() - started
        eta = spent / this_run * (products - done)
        print(
            f"  [{done}/{products}] {cid}: {count} items in {seconds:.1f} s ({count / seconds:.0f} items/s), "
            f"peak RSS {rss:.0f} MiB, generated in {gen[0]:.1f} s, load {load:.1f}; "
            f"{total_items} items stored, {spent / 60:.1f} min this run, ~{eta / 60:.0f} min to go",
            flush=True,
        )
    for cid in sorted(state["done"]):
        d = state["done"][cid]
        res.product_s.append(d["seconds"])
        res.product_rss_mb.append(d["rss_mb"])
        res.product_loadavg.append(d["load"])
        res.generate_s += d["generate_s"]
    res.build_s = sum(res.product_s)
    return res


def measure_large(res: LargeResult, base: Path, reps: Reps, seed: int) -> LargeResult:
    """Single-item ingest (library, CLI), update and prune in collection c0000 of the large repository."""
    from stac_repository import Repository

    repo_dir = base / "repo"
    items = base / "items"
    shutil.rmtree(items, ignore_errors=True)
    cid = large_collection_id(0)
    settle()
    repo = Repository.open(repo_dir)
    tag = f"{int(time.time())}"  # new ids on every run, so a resumed run measures adds again
    seq = int(tag) % 1_000_000 * 100
    _ingest_one(repo, write_item(items / "warmup", n=30_000_000 + seq, collection_id=cid), "added", cid)
    single: list[float] = []
    for k in range(reps.single):
        item = write_item(items / f"single-{k}", n=40_000_000 + seq + k, collection_id=cid)
        single.append(_ingest_one(repo, item, "added", cid))
    res.single_ms, res.samples["single"] = median_ms(single), single
    cli = cli_path()
    cli_samples: list[float] = []
    for k in range(reps.cli):
        item = write_item(items / f"cli-{k}", n=50_000_000 + seq + k, collection_id=cid)
        cmd = [cli, "-r", str(repo_dir), "ingest", str(item), "--parent", cid]
        with timer() as elapsed:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchFailure(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
        cli_samples.append(elapsed[0])
    res.single_cli_ms, res.samples["single_cli"] = median_ms(cli_samples), cli_samples
    update: list[float] = []
    for k in range(reps.update):
        # A changed version of item k of c0000; ``changed`` differs per run so it is a real update.
        changed = write_item(
            items / f"update-{k}", seed=seed, n=k, changed=1 + int(tag) % 1000, collection_id=cid
        )
        update.append(_ingest_one(repo, changed, "updated", cid))
    res.update_ms, res.samples["update"] = median_ms(update), update
    prune: list[float] = []
    for k in range(reps.prune):
        ident = item_id(cid, 40_000_000 + seq + k)  # the items added above
        with timer() as elapsed:
            commit = repo.prune([ident])
        if commit is None or ident not in commit.summary.get("removed", []):
            raise BenchFailure(f"prune {ident} removed nothing")
        prune.append(elapsed[0])
    res.prune_ms, res.samples["prune"] = median_ms(prune), prune
    if repo.backend.has_history:
        with timer() as elapsed:
            sum(1 for _ in repo.history())
        res.history_ms = elapsed[0] * 1000.0
    return res


def run_large(args: argparse.Namespace, backends: list[str], work: Path, reps: Reps) -> int:
    info = machine_info()
    print(
        f"stac-repository {info['stac_repository']} | Python {info['python']} | {info['nproc']} CPU(s) "
        f"{info['cpu_model']} | large: {args.large_items} items in products of "
        f"{args.large_product_items} | backends {', '.join(backends)} | workdir {work}",
        flush=True,
    )
    results: list[LargeResult] = []
    try:
        for backend in backends:
            base = work / f"large-{backend}"
            res = build_large(
                backend, args.large_items, args.large_product_items, base, args.fsync, args.seed
            )
            print(
                f"{backend}: built {res.items} items in {res.build_s / 60:.1f} min of ingest "
                f"(+{res.generate_s / 60:.1f} min generating)",
                flush=True,
            )
            measure_large(res, base, reps, args.seed)
            results.append(res)
            rss, secs = res.product_rss_mb, res.product_s
            print(
                f"{backend} at {res.items} items: single {res.single_ms:.1f} ms, "
                f"CLI {res.single_cli_ms:.0f} ms, update {res.update_ms:.1f} ms, "
                f"prune {res.prune_ms:.1f} ms; per product {statistics.median(secs):.1f} s median "
                f"({min(secs):.1f}-{max(secs):.1f}), peak RSS {statistics.median(rss):.0f} MiB median "
                f"({min(rss):.0f}-{max(rss):.0f})",
                flush=True,
            )
    except BenchFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    if args.json:
        payload = {
            "machine": info,
            "settings": {
                "large_items": args.large_items,
                "large_product_items": args.large_product_items,
                "backends": backends,
                "fsync": args.fsync,
                "seed": args.seed,
            },
            "large": [asdict(r) for r in results],
        }
        args.json.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
        print(f"wrote {args.json}")
    return 0


# -- guard and report ----------------------------------------------------------------------


def check_guards(results: list[SizeResult], probes: list[SizeResult], startup_ms: float) -> list[str]:
    """Gross regressions only; an empty list means all is well."""
    failures = []
    if startup_ms > MAX_CLI_STARTUP_MS:
        failures.append(f"CLI startup {startup_ms:.0f} ms > {MAX_CLI_STARTUP_MS:.0f} ms")
    everything = results + probes
    for small in everything:
        for large in everything:
            if large.backend != small.backend or large.n < SCALING_FACTOR * small.n:
                continue
            slowdown = large.single_ms / small.single_ms
            if slowdown > MAX_SCALING_SLOWDOWN:
                failures.append(
                    f"{large.backend}: single-item ingest at N={large.n} is {slowdown:.1f}x slower than at "
                    f"N={small.n} ({large.single_ms:.1f} ms vs {small.single_ms:.1f} ms; "
                    f"limit {MAX_SCALING_SLOWDOWN:.0f}x)"
                )
    return failures


COLUMNS: list[tuple[str, str, Callable[[SizeResult], str]]] = [
    ("backend", "", lambda r: r.backend),
    ("N", "", lambda r: str(r.n)),
    ("bulk", "items/s", lambda r: f"{r.bulk_items_per_s:.0f}"),
    ("bulk RSS", "MiB", lambda r: f"{r.bulk_peak_rss_mb:.0f}"),
    ("single", "ms", lambda r: f"{r.single_ms:.1f}"),
    ("single CLI", "ms", lambda r: f"{r.single_cli_ms:.0f}"),
    ("update", "ms", lambda r: f"{r.update_ms:.1f}"),
    ("prune", "ms", lambda r: f"{r.prune_ms:.1f}"),
    ("export", "items/s", lambda r: f"{r.export_items_per_s:.0f}"),
    ("backup", "s", lambda r: f"{r.backup_s:.2f}"),
    ("load", "1 min", lambda r: f"{r.load_start:.1f}-{r.load_end:.1f}"),
]


def render_table(results: list[SizeResult]) -> str:
    head = [f"{name} ({unit})" if unit else name for name, unit, _ in COLUMNS]
    rows = [[fmt(r) for _, _, fmt in COLUMNS] for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = [" | ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def run_probes(
    results: list[SizeResult], backends: list[str], work: Path, reps: Reps, args: argparse.Namespace
) -> list[SizeResult]:
    """Single-item ingest at a small N for backends whose run has no two sizes 10x apart (scaling guard)."""
    probes = []
    for backend in backends:
        measured = [r.n for r in results if r.backend == backend]
        if not measured or any(b >= SCALING_FACTOR * a for a in measured for b in measured):
            continue
        small = max(PROBE_SIZE, min(measured) // SCALING_FACTOR)
        if small * SCALING_FACTOR > max(measured):
            continue
        source = generate_collection(work / f"probe-source-{small}", small, seed=args.seed)
        probe = measure_size(
            backend, small, source, work / "probe", reps, fsync=args.fsync, profile_dir=None, full=False
        )
        probes.append(probe)
        print(f"  {backend} probe N={small}: single {probe.single_ms:.1f} ms", flush=True)
        if not args.keep:
            shutil.rmtree(work / "probe", ignore_errors=True)
            shutil.rmtree(work / f"probe-source-{small}", ignore_errors=True)
    return probes


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmarks of stac-repository (see docs/performance.md).")
    parser.add_argument(
        "--sizes", default="1000,10000", help="comma-separated item counts (default: 1000,10000)"
    )
    parser.add_argument(
        "--backends", default=None, help="comma-separated backends (default: every registered one)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="N=1000 only, fewer repetitions (< 1 min): for CI"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the results as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fsync",
        choices=["default", "true", "false"],
        default="default",
        help="repository fsync setting (default: the repository default, which is on)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="scratch folder (default: a new temporary one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="cProfile bulk and single ingest"
    )
    parser.add_argument("--no-guard", action="store_true", help="report only, never exit 1 on a regression")
    parser.add_argument(
        "--history-commits",
        type=int,
        default=HISTORY_COMMITS,
        metavar="N",
        help=f"commits of the history benchmark (default {HISTORY_COMMITS}; 0 skips it)",
    )
    parser.add_argument(
        "--large",
        action="store_true",
        help="build one --large-items repository and measure on it (default backend: file); "
        "resumable with --workdir",
    )
    parser.add_argument("--large-items", type=int, default=LARGE_ITEMS, metavar="N")
    parser.add_argument("--large-product-items", type=int, default=LARGE_PRODUCT_ITEMS, metavar="N")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = "1000"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    from stac_repository.backends import BACKENDS, backend_class

    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    default_backends = ["file"] if args.large else list(BACKENDS)
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else default_backends
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        print(f"unknown backend(s) {', '.join(unknown)} (registered: {', '.join(BACKENDS)})", file=sys.stderr)
        return 2
    reps = Reps(single=5, cli=3, update=3, prune=3, startup=10) if args.quick else Reps()
    os.environ.setdefault("STAC_REPOSITORY_LOCK_TIMEOUT", "60")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="stac-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.large:
        work = work.resolve()
        try:
            return run_large(args, backends, work, Reps(single=5, cli=3, update=3, prune=3))
        finally:
            if args.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()
    info = machine_info()
    print(
        f"stac-repository {info['stac_repository']} | Python {info['python']} | {info['nproc']} CPU(s) "
        f"{info['cpu_model']} | backends {', '.join(backends)} | sizes {sizes} | workdir {work}",
        flush=True,
    )
    results: list[SizeResult] = []
    histories: list[HistoryResult] = []
    try:
        startup, startup_samples = cli_startup_ms(reps.startup)
        print(
            f"CLI startup (stac-repository version): {startup:.0f} ms (median of {reps.startup})", flush=True
        )
        for n in sizes:
            with timer() as elapsed:
                source = generate_collection(
                    work / f"source-{n}", n, seed=args.seed, collection_id=COLLECTION_ID
                )
            print(f"generated {n} items in {elapsed[0]:.1f} s", flush=True)
            for backend in backends:
                res = measure_size(
                    backend,
                    n,
                    source,
                    work,
                    reps,
                    fsync=args.fsync,
                    profile_dir=args.profile,
                    generate_s=elapsed[0],
                )
                results.append(res)
                rate = f"bulk {res.bulk_items_per_s:.0f} items/s"
                print(f"  {backend} N={n}: {rate}, single {res.single_ms:.1f} ms", flush=True)
                if not args.keep:
                    shutil.rmtree(work / f"{backend}-{n}", ignore_errors=True)
            if not args.keep:
                shutil.rmtree(work / f"source-{n}", ignore_errors=True)
        probes = run_probes(results, backends, work, reps, args)
        for backend in backends if args.history_commits > 0 else []:
            if not backend_class(backend).has_history:
                continue
            hist = measure_history(backend, args.history_commits, work, 3 if args.quick else 5)
            histories.append(hist)
            print(
                f"  {backend} history of {hist.commits} commits: library {hist.library_ms:.0f} ms, "
                f"CLI --json {hist.cli_ms:.0f} ms (built in {hist.build_s:.1f} s)",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(work / f"history-{backend}", ignore_errors=True)
    except BenchFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(render_table(results))
    print(f"\nCLI startup: {startup:.0f} ms")
    for hist in histories:
        print(
            f"history ({hist.backend}, {hist.commits} commits): library {hist.library_ms:.0f} ms, "
            f"CLI --json {hist.cli_ms:.0f} ms"
        )
    failures = check_guards(results, probes, startup)
    failures += [
        f"{h.backend}: history of {h.commits} commits took {h.library_ms / 1000:.1f} s "
        f"> {MAX_HISTORY_S:.0f} s"
        for h in histories
        if h.library_ms > MAX_HISTORY_S * 1000.0
    ]
    if args.json:
        payload = {
            "machine": info,
            "settings": {
                "sizes": sizes,
                "backends": backends,
                "quick": args.quick,
                "fsync": args.fsync,
                "seed": args.seed,
            },
            "cli_startup_ms": startup,
            "cli_startup_samples_s": startup_samples,
            "results": [asdict(r) for r in results],
            "probes": [asdict(r) for r in probes],
            "history": [asdict(h) for h in histories],
            "guard": {"ok": not failures, "failures": failures},
        }
        args.json.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
        print(f"wrote {args.json}")
    if args.profile:
        for prof in sorted(args.profile.glob("*.prof")):
            print_profile(prof, prof.stem)
    print(f"total run time {time.perf_counter() - began:.0f} s")
    for failure in failures:
        print(f"REGRESSION: {failure}", file=sys.stderr)
    if not failures:
        print("regression guard: ok")
    return 1 if failures and not args.no_guard else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_bulk":
        sys.exit(bulk_worker(*sys.argv[2:8]))
    sys.exit(main())

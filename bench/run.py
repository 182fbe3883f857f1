"""Benchmarks of stac-repository through its public API and CLI.

    python bench/run.py                      # N = 1000 and 10000, every registered backend
    python bench/run.py --quick              # N = 1000 only, fewer repetitions (CI)
    python bench/run.py --sizes 1000 --backends file --json results.json

For each size N and backend: bulk ingest of an N-item collection (one ``repo.ingest`` call,
in a subprocess whose peak RSS is read with ``wait4``), then, on that repository: single-item
ingest (library and CLI), update of one item, prune of one item, export and backup. CLI
start-up (``stac-repository version``) is measured once. See docs/performance.md.

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
    return {
        "nproc": affinity,
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "stac_repository": stac_repository.__version__,
    }


def print_profile(path: Path, title: str, limit: int = 20) -> None:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(limit)
    print(f"\n--- profile: {title} ({path}) ---")
    print(out.getvalue())


# -- the bulk ingest worker (a subprocess, so its peak RSS is its own) ---------------------


def bulk_worker(repo_dir: str, backend: str, collection: str, fsync: str, profile: str) -> int:
    """Init a repository, ingest ``collection`` in one call, print timings as JSON."""
    from stac_repository import Repository

    repo = Repository.init(
        repo_dir, backend=backend, id="root", description="benchmark", license="proprietary"
    )
    if fsync != "default":
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
    repo_dir: Path, backend: str, collection: Path, fsync: str, profile: Path | None
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


def _ingest_one(repo: Any, item: Path, expect: str) -> float:
    with timer() as elapsed:
        report = repo.ingest([str(item)], parent=COLLECTION_ID)
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

    res = SizeResult(backend=backend, n=n, generate_s=generate_s)
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
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = "1000"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from stac_repository.backends import BACKENDS

    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else list(BACKENDS)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        print(f"unknown backend(s) {', '.join(unknown)} (registered: {', '.join(BACKENDS)})", file=sys.stderr)
        return 2
    reps = Reps(single=5, cli=3, update=3, prune=3, startup=10) if args.quick else Reps()
    os.environ.setdefault("STAC_REPOSITORY_LOCK_TIMEOUT", "60")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="stac-bench-"))
    work.mkdir(parents=True, exist_ok=True)
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
    except BenchFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(render_table(results))
    print(f"\nCLI startup: {startup:.0f} ms")
    failures = check_guards(results, probes, startup)
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
            "guard": {"ok": not failures, "failures": failures},
        }
        args.json.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
        print(f"wrote {args.json}")
    if args.profile:
        for prof in sorted(args.profile.glob("*.prof")):
            print_profile(prof, prof.stem)
    for failure in failures:
        print(f"REGRESSION: {failure}", file=sys.stderr)
    if not failures:
        print("regression guard: ok")
    return 1 if failures and not args.no_guard else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_bulk":
        sys.exit(bulk_worker(*sys.argv[2:7]))
    sys.exit(main())

"""Profile where the time and the memory of the benchmark's measures go (see docs/performance.md).

    python bench/hotspots.py WORKDIR --backend file --n 100000 [--bulk-profile] [--memory]

Builds (once: reused when WORKDIR already holds it) an N-item repository the way bench/run.py
does, then runs under cProfile: 5 single-item ingests, 3 updates, 3 prunes, one CLI single-item
ingest (``python -m cProfile`` on the installed script) and one export. Prints the top entries of
each profile (cumulative and own time) and saves the ``.prof`` files in WORKDIR/prof-<backend>-<N>.

``--bulk-profile`` profiles the bulk ingest itself (a second, profiled build: slower).
``--memory`` runs a bulk ingest under tracemalloc and prints, at the moment the ChangeSet reaches
the backend (the planned transaction, complete in memory), the allocation sites holding the most
memory.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import linecache
import os
import pstats
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate_collection, item_id, write_item
from run import COLLECTION_ID, _ingest_one, cli_path, run_bulk, settle


def show(path: Path, title: str, limit: int = 25) -> None:
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(str(path), stream=out).strip_dirs().sort_stats(order).print_stats(limit)
        text = out.getvalue()
        start = text.find("   ncalls")
        print(f"\n=== {title} — by {order} ({path.name}) ===")
        print(text[start:] if start >= 0 else text)


def source_of(work: Path, n: int) -> Path:
    src = work / f"source-{n}"
    target = src / "collection.json"
    if not target.exists():
        shutil.rmtree(src, ignore_errors=True)
        generate_collection(src, n, collection_id=COLLECTION_ID)
    return target


def memory_worker(repo_dir: str, backend: str, collection: str) -> int:
    """Bulk ingest under tracemalloc; snapshot when the ChangeSet reaches the backend."""
    from stac_repository import Repository

    repo = Repository.init(repo_dir, backend=backend, id="root", description="m", license="proprietary")
    tx_class = type(repo.backend).__module__
    module = sys.modules[tx_class]
    cls = next(
        getattr(module, name)
        for name in dir(module)
        if name.endswith("Transaction") and name.startswith("_") and hasattr(getattr(module, name), "commit")
    )
    original = cls.commit
    taken: list[tracemalloc.Snapshot] = []

    def commit(self, changes):  # type: ignore[no-untyped-def]
        if not taken:
            taken.append(tracemalloc.take_snapshot())
            current, peak = tracemalloc.get_traced_memory()
            print(f"at commit: traced {current / 2**20:.0f} MiB (peak so far {peak / 2**20:.0f} MiB)")
        return original(self, changes)

    cls.commit = commit
    tracemalloc.start(8)
    start = time.perf_counter()
    report = repo.ingest([collection])
    _, peak = tracemalloc.get_traced_memory()
    seconds = time.perf_counter() - start
    print(f"ingest {report.count('added')} in {seconds:.1f} s; traced peak {peak / 2**20:.0f} MiB")
    snap = taken[0].filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    print("\n=== top allocation sites at commit (by line) ===")
    for stat in snap.statistics("lineno")[:15]:
        frame = stat.traceback[0]
        line = linecache.getline(frame.filename, frame.lineno).strip()
        name = "/".join(Path(frame.filename).parts[-2:])
        print(f"{stat.size / 2**20:8.1f} MiB {stat.count:9d} blocks  {name}:{frame.lineno}  {line[:70]}")
    print("\n=== top allocation sites at commit (innermost stac_repository frame) ===")
    totals: dict[str, float] = {}
    for stat in snap.statistics("traceback"):
        where = "(outside stac_repository)"
        for frame in reversed(stat.traceback):  # tracemalloc lists the oldest call first
            if "stac_repository" in frame.filename:
                line = linecache.getline(frame.filename, frame.lineno).strip()
                where = f"{'/'.join(Path(frame.filename).parts[-2:])}:{frame.lineno}  {line[:70]}"
                break
        totals[where] = totals.get(where, 0.0) + stat.size
    for where, size in sorted(totals.items(), key=lambda kv: -kv[1])[:15]:
        print(f"{size / 2**20:8.1f} MiB  {where}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--backend", default="file")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--bulk-profile", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--skip", default="", help="comma list of: single,update,prune,cli,export")
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("STAC_REPOSITORY_LOCK_TIMEOUT", "60")
    source = source_of(work, args.n)
    prof = work / f"prof-{args.backend}-{args.n}"
    prof.mkdir(exist_ok=True)
    if args.memory:
        mem_repo = work / f"mem-{args.backend}-{args.n}"
        shutil.rmtree(mem_repo, ignore_errors=True)
        cmd = [sys.executable, __file__, "_memory", str(mem_repo), args.backend, str(source)]
        subprocess.run(cmd, check=True)
        shutil.rmtree(mem_repo, ignore_errors=True)
        return 0
    if args.bulk_profile:
        bulk_repo = work / f"bulkprof-{args.backend}-{args.n}"
        shutil.rmtree(bulk_repo, ignore_errors=True)
        seconds, rss = run_bulk(bulk_repo, args.backend, source, "default", prof / "bulk.prof")
        print(f"profiled bulk ingest: {seconds:.1f} s, peak RSS {rss:.0f} MiB")
        show(prof / "bulk.prof", f"bulk ingest {args.backend} N={args.n}")
        shutil.rmtree(bulk_repo, ignore_errors=True)
        return 0
    from stac_repository import Repository

    repo_dir = work / f"repo-{args.backend}-{args.n}"
    if not (work / f"repo-{args.backend}-{args.n}.done").exists():
        shutil.rmtree(repo_dir, ignore_errors=True)
        seconds, rss = run_bulk(repo_dir, args.backend, source, "default", None)
        print(f"built {args.n} items: {seconds:.1f} s, peak RSS {rss:.0f} MiB", flush=True)
        (work / f"repo-{args.backend}-{args.n}.done").touch()
    skip = set(args.skip.split(","))
    items = work / f"items-{args.backend}-{args.n}-{int(time.time())}"
    repo = Repository.open(repo_dir)
    seq = int(time.time()) % 100_000 * 100
    _ingest_one(repo, write_item(items / "warmup", n=60_000_000 + seq), "added")
    settle()

    def profiled(name: str, title: str, runs: list) -> None:  # type: ignore[type-arg]
        profiler = cProfile.Profile()
        times = []
        for run in runs:
            start = time.perf_counter()
            profiler.enable()
            run()
            profiler.disable()
            times.append((time.perf_counter() - start) * 1000)
        profiler.dump_stats(prof / f"{name}.prof")
        print(f"\n{title}: {', '.join(f'{t:.0f}' for t in times)} ms under the profiler")
        show(prof / f"{name}.prof", title)

    if "single" not in skip:
        profiled(
            "single",
            f"single-item ingest {args.backend} N={args.n}",
            [
                (lambda k=k: _ingest_one(repo, write_item(items / f"s{k}", n=70_000_000 + seq + k), "added"))
                for k in range(5)
            ],
        )
    if "update" not in skip:
        profiled(
            "update",
            f"update {args.backend} N={args.n}",
            [
                (
                    lambda k=k: _ingest_one(
                        repo, write_item(items / f"u{k}", n=100 + k, changed=1 + seq % 97), "updated"
                    )
                )
                for k in range(3)
            ],
        )
    if "prune" not in skip:
        profiled(
            "prune",
            f"prune {args.backend} N={args.n}",
            [(lambda k=k: repo.prune([item_id(COLLECTION_ID, 70_000_000 + seq + k)])) for k in range(3)],
        )
    if "cli" not in skip:
        item = write_item(items / "cli", n=80_000_000 + seq)
        cmd = [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(prof / "cli.prof"),
            cli_path(),
            "-r",
            str(repo_dir),
            "ingest",
            str(item),
            "--parent",
            COLLECTION_ID,
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        print(f"\nCLI single-item ingest under the profiler: {(time.perf_counter() - start) * 1000:.0f} ms")
        show(prof / "cli.prof", f"CLI single-item ingest {args.backend} N={args.n}")
    if "export" not in skip:
        dest = work / f"export-{args.backend}-{args.n}"
        shutil.rmtree(dest, ignore_errors=True)
        settle()
        profiled("export", f"export {args.backend} N={args.n}", [lambda: repo.export(dest)])
        shutil.rmtree(dest, ignore_errors=True)
    shutil.rmtree(items, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_memory":
        sys.exit(memory_worker(*sys.argv[2:5]))
    sys.exit(main())

"""Human-readable output: the ingest summary, history lines and the progress display."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .common import print_json


@contextmanager
def ingest_progress(*, enabled: bool) -> Iterator[Callable[[Any], None]]:
    """A counter on a terminal (discovery streams, so there is no total to show).

    Redrawn after each product, not by rich's refresh thread: a process with a single thread
    may fork the workers that read large products (see :mod:`stac_repository.stac.itemreader`).
    """
    if not enabled:
        yield lambda result: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} products"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        auto_refresh=False,
    ) as progress:
        task = progress.add_task("ingesting", total=None)
        progress.refresh()

        def advance(result: Any) -> None:
            progress.update(task, advance=1, description=f"ingesting {result.id or result.product}")
            progress.refresh()

        yield advance


def print_report(report: Any) -> None:
    out = sys.stdout
    for result in report.results:
        label = result.id or result.product
        if result.status == "failed":
            reason = str(result.reason).removeprefix(f"{result.product}: ")
            sys.stderr.write(f"failed  {result.product}: [{result.step}] {reason}\n")
        else:
            out.write(f"{result.status:<8}{label}\n")
        for warning in result.warnings:
            sys.stderr.write(f"warning {label}: {warning}\n")
    counts = "  ".join(f"{s}: {report.count(s)}" for s in ("added", "updated", "skipped", "failed"))
    out.write(f"{counts}\n")


def print_history(commits: Iterable[Any], *, verbose: bool, as_json: bool) -> None:
    rows = []
    for commit in commits:
        s = commit.summary
        row = {
            "id": commit.id,
            "time": commit.time.isoformat(),
            "message": commit.message,
            "added": s.get("added", []),
            "updated": s.get("updated", []),
            "removed": s.get("removed", []),
            "counts": s.get("counts") or {k: len(s.get(k, [])) for k in ("added", "updated", "removed")},
        }
        if as_json:
            rows.append(row)
            continue
        n = row["counts"]
        counts = f"+{n['added']} ~{n['updated']} -{n['removed']}"
        sys.stdout.write(
            f"{commit.id[:10]}  {commit.time:%Y-%m-%d %H:%M:%S}  {counts:<12} {commit.message}\n"
        )
        if verbose:
            for key, sign in (("added", "+"), ("updated", "~"), ("removed", "-")):
                for ident in row[key]:
                    sys.stdout.write(f"    {sign} {ident}\n")
                if row["counts"][key] > len(row[key]):
                    sys.stdout.write(f"    {sign} ... and {row['counts'][key] - len(row[key])} more\n")
    if as_json:
        print_json(rows)

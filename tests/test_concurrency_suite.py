"""Many processes on one repository at once, on both backends.

Four writer processes each make 30 transactions (25 ingests of distinct generated items under one
collection, 5 prunes of their own earlier items) while an exporter and a history reader run. Each
process records what it completed and when (CLOCK_MONOTONIC, shared by all processes). Then:

* every completed transaction is there: the stored items are exactly those ingested and not pruned;
* git history is linear (every commit has at most one parent) and has one commit per transaction;
  the file backend's generation counter counts them too;
* every export is a walkable catalog with no dangling link, holding a state that some moment of
  the export could have seen (for git: exactly the items of one commit of the final history);
* nobody waits forever (a high lock timeout and a global deadline), and a writer that gives up
  names the holder: "repository is locked by PID ... since ...".
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stac_repository import Repository

from .conftest import run_cli, walk_list
from .git_helpers import fsck, git

WRITERS = 4
INGESTS = 25
PRUNE_EVERY = 5
DEADLINE = 240.0
BACKENDS = pytest.mark.parametrize("backend", ["file", "git"])

WORKER = r"""
import json, os, random, sys, time
from pathlib import Path
from stac_repository import Repository
from stac_repository.errors import StacRepositoryError

role, repo_path, out_path, work, index = sys.argv[1:6]
index = int(index)
work = Path(work)
stop = work / "stop"
out = open(out_path, "a", buffering=1)


def record(**fields):
    out.write(json.dumps(fields) + "\n")


def item(ident, n):
    folder = work / ident
    folder.mkdir(parents=True)
    rng = random.Random(ident)
    x, y = rng.uniform(-170, 170), rng.uniform(-80, 80)
    doc = {
        "type": "Feature", "stac_version": "1.0.0", "id": ident,
        "geometry": {"type": "Polygon",
                     "coordinates": [[[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1], [x, y]]]},
        "bbox": [x, y, x + 1, y + 1],
        "properties": {"datetime": f"2020-01-{1 + n % 28:02d}T00:00:00Z", "writer": index},
        "links": [], "assets": {},
    }
    if n % 3 == 0:
        (folder / "data.txt").write_text(f"{ident}\n")
        doc["assets"]["data"] = {"href": "./data.txt", "type": "text/plain"}
    (folder / "item.json").write_text(json.dumps(doc))
    return str(folder / "item.json")


repo = Repository.open(repo_path)
if role == "writer":
    ingested = []
    for n in range(int(os.environ["INGESTS"])):
        ident = f"w{index}-{n:03d}"
        source = item(ident, n)
        start = time.monotonic()
        report = repo.ingest([source], parent="col")
        end = time.monotonic()
        result = report.results[0]
        if result.status != "added":
            record(op="error", id=ident, reason=result.reason)
            sys.exit(1)
        record(op="ingest", id=ident, start=start, end=end, commit=result.commit)
        ingested.append(ident)
        if n % int(os.environ["PRUNE_EVERY"]) == int(os.environ["PRUNE_EVERY"]) - 1:
            victim = ingested.pop(len(ingested) - 3)
            start = time.monotonic()
            commit = repo.prune([victim])
            end = time.monotonic()
            record(op="prune", id=victim, start=start, end=end, commit=commit.id)
elif role == "exporter":
    n = 0
    while not stop.exists() and n < 12:
        target = work / f"export-{n}"
        start = time.monotonic()
        try:
            repo.export(target)
            record(op="export", dir=str(target), start=start, end=time.monotonic())
        except StacRepositoryError as exc:
            left = target.exists() and any(target.iterdir())
            record(op="export-refused", error=f"{type(exc).__name__}: {exc}", dir=str(target), left=left,
                   start=start, end=time.monotonic())
        n += 1
        time.sleep(0.05)
elif role == "reader":
    n = 0
    while not stop.exists():
        if repo.backend.has_history:
            commits = list(repo.history())
            bad = [c.id for c in commits if len(c.parents) > 1]
            record(op="history", commits=len(commits), merges=bad)
        repo.show("col")
        n += 1
        time.sleep(0.05)
    record(op="reads", n=n)
"""


@dataclass
class Run:
    repo: Path
    records: list[dict[str, Any]]
    seconds: float


def _collection(folder: Path) -> Path:
    folder.mkdir()
    doc = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "col",
        "description": "the items of the concurrency suite",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[0, 0, 1, 1]]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
        },
        "links": [],
    }
    (folder / "collection.json").write_text(json.dumps(doc))
    return folder / "collection.json"


def _spawn(role: str, repo: Path, out: Path, work: Path, index: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STAC_REPOSITORY_LOCK_TIMEOUT": "120",
        "INGESTS": str(INGESTS),
        "PRUNE_EVERY": str(PRUNE_EVERY),
    }
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, role, str(repo), str(out), str(work), str(index)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _run(tmp_path: Path, backend: str) -> Run:
    repo = tmp_path / "repo"
    opened = Repository.init(repo, backend=backend, id="root", description="concurrency")
    assert not opened.ingest([str(_collection(tmp_path / "col"))]).failed
    opened.set_config("lock.timeout", "120")
    work = tmp_path / "work"
    work.mkdir()
    procs = []
    for n in range(WRITERS):
        (work / f"w{n}").mkdir()
        procs.append(_spawn("writer", repo, work / f"w{n}.jsonl", work / f"w{n}", n))
    readers = [
        _spawn("exporter", repo, work / "exporter.jsonl", work, 0),
        _spawn("reader", repo, work / "reader.jsonl", work, 0),
    ]
    started = time.monotonic()
    try:
        for proc in procs:
            left = DEADLINE - (time.monotonic() - started)
            try:
                proc.wait(timeout=max(left, 1))
            except subprocess.TimeoutExpired:
                pytest.fail(f"deadlock or starvation: writers still running after {DEADLINE:.0f} s")
        seconds = time.monotonic() - started
        (work / "stop").touch()
        for proc in readers:
            proc.wait(timeout=60)
    finally:
        for proc in procs + readers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
    for proc in procs + readers:
        assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else proc.returncode
    records = [
        {**json.loads(line), "process": path.stem}
        for path in sorted(work.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    return Run(repo, records, seconds)


def _item_ids(export: Path) -> set[str]:
    return {ident for kind, ident, _ in walk_list(export / "catalog.json") if kind == "Item"}


def _check_export_bounds(export: dict[str, Any], items: set[str], writes: list[dict[str, Any]]) -> None:
    """The export saw one state of some moment between its start and end."""
    start, end = export["start"], export["end"]
    for w in writes:
        if w["op"] == "ingest" and w["start"] > end:
            assert w["id"] not in items, f"{w['id']} exported before its ingest began"
        if w["op"] == "prune" and w["end"] < start:
            assert w["id"] not in items, f"{w['id']} exported after its prune ended"
    pruned_late = {w["id"] for w in writes if w["op"] == "prune" and w["start"] <= end}
    for w in writes:
        if w["op"] == "ingest" and w["end"] < start and w["id"] not in pruned_late:
            assert w["id"] in items, f"{w['id']} missing from an export that began after its ingest"


def _consistent_copy(export: dict[str, Any], writes: list[dict[str, Any]]) -> bool:
    """Is the copy at ``export["dir"]`` walkable and within the bounds of its moment?"""
    try:
        _check_export_bounds(export, _item_ids(Path(export["dir"])), writes)
    except AssertionError:
        return False
    return True


def _git_states(repo: Repository) -> set[frozenset[str]]:
    """The set of items at each commit of the history (replayed from the commit summaries)."""
    current: set[str] = set()
    states = {frozenset()}
    for commit in reversed(list(repo.history())):
        current |= {i for i in commit.summary.get("added", []) if i.startswith("w")}
        current -= set(commit.summary.get("removed", []))
        states.add(frozenset(current))
    return states


@BACKENDS
def test_writers_and_readers_at_once(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(tmp_path, backend)
    writes = [r for r in run.records if r["op"] in ("ingest", "prune")]
    assert not [r for r in run.records if r["op"] == "error"]
    assert len(writes) == WRITERS * (INGESTS + INGESTS // PRUNE_EVERY)

    # Every completed transaction is there, and nothing else.
    expected = {r["id"] for r in writes if r["op"] == "ingest"} - {
        r["id"] for r in writes if r["op"] == "prune"
    }
    repo = Repository.open(run.repo)
    final = tmp_path / "final"
    repo.export(final)
    assert _item_ids(final) == expected
    for ident in sorted(expected)[:: len(expected) // 10]:
        assert repo.show(ident)["document"]["id"] == ident

    # One history entry per transaction, linear.
    base = 3  # init, the collection, the lock.timeout config
    if backend == "git":
        parents = git(run.repo, "rev-list", "--parents", "HEAD").splitlines()
        assert all(len(line.split()) <= 2 for line in parents), "a merge commit in the history"
        assert len(parents) == base + len(writes)
        history = list(repo.history())
        assert {r["commit"] for r in writes} <= {c.id for c in history}
        assert all(len(c.parents) <= 1 for c in history)
        fsck(run.repo)
        states = _git_states(repo)
        assert frozenset(expected) in states
    else:
        generation = int((run.repo / ".stac-repository/local/generation").read_text())
        assert generation == base + len(writes)

    # Readers never saw a partial state.
    exports = [r for r in run.records if r["op"] == "export"]
    refused = [r for r in run.records if r["op"] == "export-refused"]
    assert exports, f"every export was refused: {refused[:3]}"
    # A refused export says the repository kept changing, and leaves no (possibly mixed) copy.
    left = [r for r in refused if r["left"]]
    torn = sum(1 for r in left if not _consistent_copy(r, writes))
    assert not left, (
        f"{len(left)} refused exports left a copy behind ({torn} of them mixing states): {left[0]['error']}"
    )
    assert all(r["error"].startswith("Conflict") for r in refused), refused[:3]
    for export in exports:
        items = _item_ids(Path(export["dir"]))
        assert items <= {r["id"] for r in writes}
        _check_export_bounds(export, items, writes)
        if backend == "git":
            assert frozenset(items) in states, "an export holds no state of the history"
    histories = [r for r in run.records if r["op"] == "history"]
    assert not [r for r in histories if r["merges"]]
    assert [r["commits"] for r in histories] == sorted(r["commits"] for r in histories)
    with capsys.disabled():
        print(
            f"\nconcurrency suite ({backend}): {WRITERS} writers x {len(writes) // WRITERS} transactions "
            f"+ exporter + reader in {run.seconds:.1f} s; {len(exports)} exports checked, "
            f"{len(refused)} refused (repository kept changing), {len(histories)} history reads",
            flush=True,
        )


HOLDER = r"""
import sys
from stac_repository import Repository
repo = Repository.open(sys.argv[1])
with repo.backend.transaction(timeout=5):
    sys.stdout.write("held\n")
    sys.stdout.flush()
    sys.stdin.read()
"""


@BACKENDS
def test_a_writer_that_gives_up_names_the_holder(backend: str, tmp_path: Path) -> None:
    """Another process holds the lock: a short timeout fails after waiting, naming its PID and start."""
    repo = tmp_path / "repo"
    Repository.init(repo, backend=backend, id="root", description="lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(repo)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "held\n"
        started = time.monotonic()
        proc = run_cli("-r", repo, "config", "lock.timeout", "9", env={"STAC_REPOSITORY_LOCK_TIMEOUT": "0.4"})
        waited = time.monotonic() - started
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr
        pattern = rf"error: repository is locked by PID {holder.pid} since \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d"
        assert re.match(pattern, lines[0]), lines[0]
        assert waited >= 0.4
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert (
        run_cli(
            "-r", repo, "config", "lock.timeout", "9", env={"STAC_REPOSITORY_LOCK_TIMEOUT": "0"}
        ).returncode
        == 0
    )

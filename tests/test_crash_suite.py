"""Kill -9 at hundreds of points of every writing verb, on both backends.

Each case copies a prepared repository, runs one command (ingest, update, two-product ingest,
prune, config, and rollback for git) in a worker process and SIGKILLs it at one point:

* ``point``   a named crash point of the backend (``STAC_REPOSITORY_CRASH_AT``);
* ``step``    right before the n-th file-system mutation the worker makes from Python (open for
              writing, rename/replace, unlink, mkdir, rmdir, truncate), via an audit hook;
* ``syscall`` (when strace is installed) at the n-th ``rename``/``link``/``unlink`` system call,
              which also reaches the writes libgit2 makes (objects, ref lock, index lock);
* ``random``  after a random delay within the command's measured duration.

After each kill one CLI command (``export``) opens the repository, which recovers it. The
repository must then be exactly one committed state of the interrupted command (compared by
full file listings with sha256; for git by the branch's tree, the export and the first-parent
chain of complete commits), ``git fsck`` must be clean, the next writing command must succeed
at once (``lock.timeout`` is 0, so a stale lock fails fast), and no temporary may be left.

The fast mode runs 200+ kill points; ``pytest --slow`` runs the ``slow`` test with about 2,000.
A summary line with the figures is printed in both modes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stac_repository import Repository

from .conftest import CORPUS, run_cli, tree_digest
from .git_helpers import GIT, catalog_digest, git_env

STRACE = shutil.which("strace")
WORKERS = 3
SYSCALLS = ("rename", "link", "unlink")

TEST_CASE_1 = CORPUS / "pystac/catalogs/test-case-1/catalog.json"
TEST_CASE_2 = CORPUS / "pystac/catalogs/test-case-2/catalog.json"
PLANET = CORPUS / "stactools/data-files/planet-disaster"
SIMPLE_COLLECTION = CORPUS / "stac-spec/v1.0.0/examples/collection.json"

CRASH_POINTS = {
    "file": ("staged", "committed", "applying"),
    "git": ("git-objects-written", "git-branch-moved", "git-worktree-file"),
}

# The worker: the real CLI in a process whose imports are done before it says "ready", so that
# random delays fall into the command itself. CRASH_SUITE_STEPS=count:<file> lists the file-system
# mutations the command makes in the repository (one "event path" line each);
# CRASH_SUITE_STEPS=<n> kills it right before the n-th.
WORKER = r"""
import os, signal, sys
os.environ.setdefault("COLUMNS", "100")
import stac_repository.backends.file, stac_repository.backends.git, stac_repository.cli.render
import stac_repository.processors.stac, stac_repository.repository
import stac_repository.repository.export, stac_repository.repository.ingest
import stac_repository.stac.planner, stac_repository.stac.validation
from stac_repository.cli.common import run
from stac_repository.cli.repository_app import app

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
EVENTS = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.truncate", "os.link", "os.symlink",
          "shutil.rmtree", "shutil.move"}
steps = os.environ.get("CRASH_SUITE_STEPS", "")
seen = []
target = -1
REPO = os.path.realpath(sys.argv[sys.argv.index("-r") + 1]) + os.sep

def inside(path):
    return isinstance(path, int) or os.path.realpath(os.fsdecode(path)).startswith(REPO)

def mutation(event, args):
    if event == "open":
        mode, flags = args[1], args[2]
        if isinstance(mode, str):
            writes = any(c in mode for c in "wax+")
        else:
            writes = isinstance(flags, int) and bool(flags & WRITE_FLAGS)
        return writes and inside(args[0])
    if event in EVENTS:  # the paths of the repository only: caches elsewhere come and go
        return any(inside(a) for a in args[:2] if isinstance(a, str | bytes | int))
    return False

def hook(event, args):
    if target is not None and mutation(event, args):
        seen.append(f"{event} {args[0] if args else ''}")
        if len(seen) == target:
            os.kill(os.getpid(), signal.SIGKILL)

if steps:
    if not steps.startswith("count:"):
        target = int(steps)
    sys.addaudithook(hook)
sys.stdout.write("ready\n")
sys.stdout.flush()
code = run(app, "stac-repository", sys.argv[1:])
if steps.startswith("count:"):
    target = None
    with open(steps[6:], "w") as fh:
        fh.write("".join(line.replace("\n", " ") + "\n" for line in seen))
sys.exit(code)
"""


@dataclass(frozen=True)
class Op:
    """A command run by the worker, and the transactions it is made of (in order)."""

    name: str
    backends: tuple[str, ...]
    transactions: tuple[tuple[str, ...], ...]

    @property
    def command(self) -> tuple[str, ...]:
        if self.transactions[0][0] == "ingest" and len(self.transactions) > 1:
            return ("ingest", *(t[1] for t in self.transactions))
        (only,) = self.transactions
        return only


@dataclass(frozen=True)
class State:
    """One committed state: catalog files with their sha256, and for git the branch's tree."""

    files: str  # sha256 of the sorted listing (full repository for file, export for git)
    export: str
    tree: str | None = None


@dataclass
class Plan:
    """What is known about one (backend, op) after running it without a kill."""

    backend: str
    op: Op
    base: Path
    states: list[State]
    base_head: str | None
    seconds: float
    steps: int
    syscalls: dict[str, int]


@dataclass(frozen=True)
class Case:
    plan: Plan
    mode: str  # point, step, syscall, random
    value: Any  # crash point name, step number, (syscall, n), delay in seconds
    index: int
    leave: str | None = None  # a file to create after the kill, as a kill elsewhere would leave it


@dataclass
class Outcome:
    case: Case
    killed: bool
    state: int | None = None
    failures: list[str] = field(default_factory=list)


# -- helpers ------------------------------------------------------------------------------------


def listing_hash(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()


def git_out(cwd: Path, *args: str) -> str:
    assert GIT is not None
    proc = subprocess.run(
        [GIT, *args], cwd=cwd, capture_output=True, text=True, env=git_env(), timeout=60, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def branch_commit(repo: Path) -> str:
    return git_out(repo, "rev-parse", "--verify", "refs/heads/main").strip()


def fingerprint(backend: str, repo: Path, export: Path) -> State:
    exported = listing_hash(catalog_digest(export))
    if backend == "file":
        return State(files=listing_hash(tree_digest(repo)), export=exported)
    tree = git_out(repo, "rev-parse", "refs/heads/main^{tree}").strip()
    return State(files=exported, export=exported, tree=tree)


def leftovers(backend: str, repo: Path) -> list[str]:
    """Temporary and lock files that a finished command must not leave behind."""
    found = []
    for path in repo.rglob("*"):
        rel = path.relative_to(repo).as_posix()
        name = path.name
        if backend == "file":
            if rel.startswith(".stac-repository/local/journal") or ".tmp-" in name:
                found.append(rel)
        else:
            if rel.startswith(".git/objects/"):
                continue  # libgit2's own tmp_object files: git's garbage, fsck ignores them
            if (
                name.endswith(".lock")
                or name.endswith(".stac-repository-tmp")
                or ".tmp-" in name
                or (rel.startswith(".git/lfs/tmp/") and path.is_file())
            ):
                found.append(rel)
    return sorted(found)


def evenly(count: int, k: int) -> list[int]:
    """Up to ``k`` numbers spread evenly over 1..count."""
    if count <= 0 or k <= 0:
        return []
    if k >= count:
        return list(range(1, count + 1))
    return sorted({1 + round(j * (count - 1) / (k - 1)) for j in range(k)}) if k > 1 else [1]


def worker_command(repo: Path, op: Op) -> list[str]:
    return [sys.executable, "-c", WORKER, "-r", str(repo), *op.command]


def strace_prefix(syscall: str, n: int | None, log: Path | None = None) -> list[str]:
    assert STRACE is not None
    prefix = [STRACE, "-qq", "-o", str(log or os.devnull), "-e", f"trace={','.join(SYSCALLS)}"]
    if n is not None:
        prefix += ["-e", f"inject={syscall}:signal=KILL:when={n}"]
    return prefix


# -- preparation ------------------------------------------------------------------------------


def _planet_copy(root: Path, name: str, *, new_id: str | None = None) -> Path:
    """A writable copy of planet-disaster (a collection with .tif assets), edited.

    With ``new_id`` it is another product; without, a second version of the same one (a new
    description and one asset changed), so ingesting it is an update.
    """
    copy = root / name
    shutil.copytree(PLANET, copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    collection = copy / "collection.json"
    doc = json.loads(collection.read_text())
    if new_id:
        doc["id"] = new_id
    else:
        doc["description"] = "planet-disaster, second version"
        tif = next(iter(sorted(copy.rglob("*_udm.tif"))))
        tif.write_bytes(tif.read_bytes() + b"changed")
    collection.write_text(json.dumps(doc, indent=2))
    return collection


def _ops(sources: Path) -> list[Op]:
    both = ("file", "git")
    a_id = json.loads(TEST_CASE_2.read_text())["id"]
    planet_copy = _planet_copy(sources, "planet-copy", new_id="planet-copy")
    planet_v2 = _planet_copy(sources, "planet-v2")
    return [
        Op("ingest", both, (("ingest", str(planet_copy)),)),
        Op("update", both, (("ingest", str(planet_v2)),)),
        Op("ingest2", both, (("ingest", str(TEST_CASE_1)), ("ingest", str(SIMPLE_COLLECTION)))),
        Op("prune", both, (("prune", a_id),)),
        Op("config", both, (("config", "layout.max_items", "500"),)),
        Op("rollback", ("git",), (("rollback", "HEAD~1"),)),
    ]


def apply(repo: Path, transaction: tuple[str, ...]) -> None:
    """One transaction through the library (the CLI command the worker runs does the same).

    Without fsync: planning only needs the resulting states, which fsync does not change.
    """
    opened = Repository.open(repo)
    opened.backend.fsync = False  # type: ignore[attr-defined]
    verb, *args = transaction
    if verb == "ingest":
        report = opened.ingest(args)
        assert not report.failed, report.to_json()
    elif verb == "prune":
        opened.prune(args)
    elif verb == "config":
        opened.set_config(*args)
    else:
        assert verb == "rollback"
        opened.rollback(args[0])


def _base(root: Path, backend: str) -> Path:
    """A repository with two products, and lock.timeout 0 so that a stale lock fails at once."""
    repo = root / f"base-{backend}"
    # git with a working tree: the bare layout's steps are a subset of its steps
    options = {"fsync": False, "worktree": True} if backend == "git" else {"fsync": False}
    Repository.init(repo, backend=backend, id="root", description="crash suite", options=options)
    apply(repo, ("config", "lock.timeout", "0"))
    apply(repo, ("ingest", str(TEST_CASE_2)))
    apply(repo, ("ingest", str(PLANET / "collection.json")))
    return repo


def list_steps(base: Path, op: Op, work: Path) -> tuple[list[str], float]:
    """Run ``op`` in the worker on a copy of ``base``: its file-system steps and its duration."""
    repo = work / "steps-repo"
    shutil.copytree(base, repo, symlinks=True)
    listing = work / "steps.txt"
    env = {**os.environ, "CRASH_SUITE_STEPS": f"count:{listing}"}
    proc = subprocess.Popen(
        worker_command(repo, op), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    started = time.monotonic()
    _, err = proc.communicate(timeout=120)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, err
    shutil.rmtree(repo)
    return listing.read_text().splitlines(), seconds


def list_syscalls(base: Path, op: Op, work: Path) -> list[tuple[str, str]]:
    """Run ``op`` under strace on a copy of ``base``: its rename/link/unlink calls (name, first path)."""
    repo = work / "strace-repo"
    shutil.copytree(base, repo, symlinks=True)
    log = work / "strace.log"
    command = [*strace_prefix("", None, log), *worker_command(repo, op)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(repo)
    calls = []
    for line in log.read_text().splitlines():
        name, _, rest = line.partition("(")
        if name in SYSCALLS:
            calls.append((name, rest.split('"')[1] if '"' in rest else ""))
    return calls


def _plan(root: Path, backend: str, base: Path, op: Op) -> Plan:
    """Run ``op`` without a kill: the chain of states it goes through, its duration and steps."""
    work = root / f"plan-{backend}-{op.name}"
    work.mkdir()
    repo = work / "chain"
    shutil.copytree(base, repo, symlinks=True)
    states = []
    for n in range(len(op.transactions) + 1):
        if n:
            apply(repo, op.transactions[n - 1])
        Repository.open(repo).export(work / f"export-{n}")
        states.append(fingerprint(backend, repo, work / f"export-{n}"))
    assert len(set(states)) == len(states), f"{op.name}: a transaction changed nothing"
    steps, seconds = list_steps(base, op, work)
    syscalls = Counter(name for name, _ in list_syscalls(base, op, work)) if STRACE else {}
    base_head = branch_commit(base) if backend == "git" else None
    shutil.rmtree(work)
    return Plan(backend, op, base, states, base_head, seconds, len(steps), dict(syscalls))


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> list[Plan]:
    root = tmp_path_factory.mktemp("crash-suite")
    sources = root / "sources"
    sources.mkdir()
    ops = _ops(sources)
    out = []
    for backend in ("file", "git"):
        base = _base(root, backend)
        # Warm-up: the first command fills caches outside the repository (compiled schemas).
        warm = root / f"warm-{backend}"
        warm.mkdir()
        list_steps(base, ops[0], warm)
        out.extend(_plan(root, backend, base, op) for op in ops if backend in op.backends)
    return out


# -- one kill ---------------------------------------------------------------------------------


def _match_git(plan: Plan, repo: Path, state: State, failures: list[str]) -> int | None:
    """Which state of the chain the branch holds: new commits descend linearly from the base
    head, each holding the tree of its transaction, and the export is that state."""
    assert plan.base_head is not None
    log = git_out(repo, "log", "--format=%H %T %P", "refs/heads/main", f"^{plan.base_head}")
    commits = [line.split() for line in log.splitlines()][::-1]
    if not commits and branch_commit(repo) != plan.base_head:
        failures.append("branch: the branch moved off the base head")
        return None
    if any(len(c) != 3 for c in commits) or (commits and commits[0][2] != plan.base_head):
        failures.append("branch: new commits do not descend linearly from the base head")
        return None
    position = len(commits)
    if position >= len(plan.states) or [c[1] for c in commits] != [
        s.tree for s in plan.states[1 : position + 1]
    ]:
        failures.append("branch: a new commit does not hold the tree of its transaction")
        return None
    if state != plan.states[position]:
        failures.append(f"state: the branch is at transaction {position} but the export differs from it")
        return None
    return position


def _inspect(case: Case, repo: Path, work: Path) -> Outcome:
    plan = case.plan
    outcome = Outcome(case, killed=True)
    failures = outcome.failures
    export = work / "export"
    recovery = run_cli("-r", repo, "export", export)
    if recovery.returncode != 0 or "Traceback" in recovery.stderr:
        failures.append(f"recovery: 'export' failed (exit {recovery.returncode}): {recovery.stderr.strip()}")
        return outcome
    state = fingerprint(plan.backend, repo, export)
    if plan.backend == "file":
        if state in plan.states:
            outcome.state = plan.states.index(state)
        else:
            failures.append("state: the repository is neither before nor after any transaction")
    else:
        outcome.state = _match_git(plan, repo, state, failures)
        worktree = listing_hash(catalog_digest(repo))
        if worktree != state.export:
            failures.append("worktree: the working tree differs from the branch after recovery")
        index = sorted(git_out(repo, "ls-files", "-s").splitlines())
        tree = sorted(
            f"{m} {o} 0\t{p}"
            for m, _, o, p in (
                line.replace("\t", " ", 1).split(" ", 3)
                for line in git_out(repo, "ls-tree", "-r", "refs/heads/main").splitlines()
            )
        )
        if index != tree:
            failures.append("index: the git index differs from the branch after recovery")
        fsck = subprocess.run(
            [str(GIT), "fsck", "--strict", "--no-dangling", "--full"],
            cwd=repo,
            capture_output=True,
            text=True,
            env=git_env(),
            timeout=60,
            check=False,
        )
        if fsck.returncode != 0 or (fsck.stdout + fsck.stderr).strip():
            failures.append(f"fsck: {(fsck.stdout + fsck.stderr).strip()[:200]}")
    # The next writing command succeeds at once: lock.timeout is 0 in these repositories.
    try:
        Repository.open(repo).set_config("layout.max_items", str(700 + case.index))
    except Exception as exc:
        failures.append(f"next command: {type(exc).__name__}: {exc}")
    left = leftovers(plan.backend, repo)
    if left:
        failures.append(f"leftover: {', '.join(left)}")
    return outcome


def run_case(case: Case, root: Path) -> Outcome:
    plan = case.plan
    work = root / f"case-{case.index}"
    work.mkdir()
    repo = work / "repo"
    shutil.copytree(plan.base, repo, symlinks=True)
    env = dict(os.environ)
    command = worker_command(repo, plan.op)
    if case.mode == "point":
        env["STAC_REPOSITORY_CRASH_AT"] = case.value
    elif case.mode == "step":
        env["CRASH_SUITE_STEPS"] = str(case.value)
    elif case.mode == "syscall":
        command = [*strace_prefix(*case.value), *command]
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        if case.mode == "random":
            assert proc.stdout is not None
            proc.stdout.readline()
            time.sleep(case.value)
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        killed = proc.returncode == -signal.SIGKILL
        if case.leave is not None:
            (repo / case.leave).write_text("")
        if not killed and case.mode != "random":
            outcome = Outcome(case, killed=False)
            outcome.failures.append(f"worker: not killed (exit {proc.returncode}): {err.strip()[-300:]}")
            return outcome
        outcome = _inspect(case, repo, work)
        outcome.killed = killed
        if not killed and outcome.state not in (None, len(plan.states) - 1):
            outcome.failures.append("state: a command that finished left an intermediate state")
        return outcome
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- the suites -------------------------------------------------------------------------------


def build_cases(plans: list[Plan], *, steps: int, syscalls: int, random_per_op: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []

    def add(plan: Plan, mode: str, value: Any) -> None:
        cases.append(Case(plan, mode, value, len(cases)))

    for plan in plans:
        for point in CRASH_POINTS[plan.backend]:
            add(plan, "point", point)
        for n in evenly(plan.steps, steps):
            add(plan, "step", n)
        for name, total in plan.syscalls.items():
            for n in evenly(total, max(1, round(syscalls * total / sum(plan.syscalls.values())))):
                add(plan, "syscall", (name, n))
        for _ in range(random_per_op):
            add(plan, "random", rng.uniform(0, plan.seconds))
    return cases


def run_suite(cases: list[Case], root: Path, label: str, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(lambda c: run_case(c, root), cases))
    elapsed = time.monotonic() - started
    killed = [o for o in outcomes if o.killed]
    modes = Counter(o.case.mode for o in killed)
    finished = sum(1 for o in outcomes if not o.killed and o.case.mode == "random")
    landed = Counter("before" if o.state == 0 else "after" if o.state else "?" for o in killed)
    failed = [o for o in outcomes if o.failures]
    kinds = Counter(f.split(":", 1)[0] for o in failed for f in o.failures)
    summary = (
        f"crash suite ({label}): {len(killed)} kill points in {elapsed:.0f} s "
        f"({', '.join(f'{n} {m}' for m, n in sorted(modes.items()))}; "
        f"{finished} random runs ended before their kill; strace {'used' if STRACE else 'not installed'}) "
        f"-> {landed['before']} before, {landed['after']} after; "
        f"{len(failed)} failing cases {dict(kinds) if kinds else ''}"
    )
    with capsys.disabled():
        print(f"\n{summary}", flush=True)
    report = [
        f"{o.case.plan.backend} {o.case.plan.op.name} {o.case.mode}={o.case.value}: {'; '.join(o.failures)}"
        for o in failed
    ]
    # One example per (backend, op, failure kind) keeps the message readable.
    seen: set[tuple[str, str, str]] = set()
    examples = []
    for o, line in zip(failed, report, strict=True):
        key = (o.case.plan.backend, o.case.plan.op.name, o.failures[0].split(":", 1)[0])
        if key not in seen:
            seen.add(key)
            examples.append(line)
    assert not failed, f"{summary}\n" + "\n".join(examples)
    assert len(killed) >= (200 if label == "fast" else 1500), summary


def test_kill_9_anywhere_leaves_one_committed_state(
    plans: list[Plan], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fast mode: every crash point, a spread of steps and syscalls, and random delays (200+ kills)."""
    random_per_op = 8 if STRACE else 12
    cases = build_cases(plans, steps=6, syscalls=4, random_per_op=random_per_op, seed=20260101)
    run_suite(cases, tmp_path, "fast", capsys)


@pytest.mark.slow
def test_kill_9_anywhere_leaves_one_committed_state_slow(
    plans: list[Plan], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Slow mode: every step and every syscall of every command, plus random delays (about 2,000 kills)."""
    cases = build_cases(plans, steps=10_000, syscalls=10_000, random_per_op=0, seed=7)
    random_per_op = max(20, (2000 - len(cases)) // len(plans))
    cases = build_cases(plans, steps=10_000, syscalls=10_000, random_per_op=random_per_op, seed=7)
    run_suite(cases, tmp_path, "slow", capsys)


def test_every_command_has_steps_to_kill(plans: list[Plan], capsys: pytest.CaptureFixture[str]) -> None:
    """Each command goes through one state per transaction and makes file-system steps to kill at."""
    for plan in plans:
        assert len(plan.states) == len(plan.op.transactions) + 1
        assert plan.steps > 0, plan.op.name
    with capsys.disabled():
        print(
            "\ncrash suite commands (steps, syscalls): "
            + ", ".join(f"{p.backend} {p.op.name} ({p.steps}, {sum(p.syscalls.values())})" for p in plans),
            flush=True,
        )


def _plan_of(plans: list[Plan], backend: str, op: str) -> Plan:
    return next(p for p in plans if p.backend == backend and p.op.name == op)


@pytest.mark.parametrize(
    ("backend", "op"),
    [("file", "config"), ("git", "config"), ("git", "ingest")],  # git ingest: new working-tree files
)
def test_kill_before_each_temporary_is_renamed(
    plans: list[Plan], tmp_path: Path, backend: str, op: str
) -> None:
    """A kill between writing a temporary and renaming it into place (the journal's COMMIT, the
    git working-tree marker ``.git/stac-repository/.worktree.tmp-<pid>``, working-tree files...):
    one committed state, and no temporary may remain once the next command ran. For files that
    the interrupted commit was adding, recovery takes the working tree back to the branch and
    must take their temporaries too (found by the slow suite)."""
    plan = _plan_of(plans, backend, op)
    steps, _ = list_steps(plan.base, plan.op, tmp_path)
    targets = [
        n
        for n, step in enumerate(steps, 1)
        if step.startswith("os.rename") and re.search(r"\.tmp-|stac-repository-tmp", step)
    ]
    assert targets, steps
    outcomes = [run_case(Case(plan, "step", n, i), tmp_path) for i, n in enumerate(targets)]
    assert all(o.killed for o in outcomes), outcomes
    failures = [f"{steps[o.case.value - 1]}: {o.failures}" for o in outcomes if o.failures]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("lock", ["refs/heads/main.lock", "index.lock"])
def test_git_lock_held_by_a_killed_writer(plans: list[Plan], tmp_path: Path, lock: str) -> None:
    """Git backend: a writer killed while libgit2 holds ``.git/<lock>`` (it renames the lock onto
    the ref or the index when done) must not block the next command.

    With strace the kill lands on exactly that rename; without, the kill is at the nearest crash
    point and the lock file is left as the kill would leave it.
    """
    plan = _plan_of(plans, "git", "config")
    if STRACE:
        calls = list_syscalls(plan.base, plan.op, tmp_path)
        i = next(i for i, (_, path) in enumerate(calls) if path.endswith(f".git/{lock}"))
        name = calls[i][0]
        case = Case(plan, "syscall", (name, sum(1 for c in calls[: i + 1] if c[0] == name)), 0)
    else:
        point = "git-objects-written" if lock.startswith("refs/") else "git-worktree-file"
        case = Case(plan, "point", point, 0, leave=f".git/{lock}")
    outcome = run_case(case, tmp_path)
    assert outcome.killed, outcome
    assert not outcome.failures, outcome.failures

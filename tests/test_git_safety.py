"""Git safety: no shell anywhere, refs and config values from users validated, foreign git
repositories refused by every command.

The checks run the real CLI (several at a time) on real git repositories; the no-shell rule is
checked on the source itself with ``ast``, and at run time with shell metacharacters that would
create a file if any shell ever saw them.
"""

from __future__ import annotations

import ast
import hashlib
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer

from stac_repository import Repository
from stac_repository.errors import NotFound, StacRepositoryError, UsageError

from .conftest import CORPUS, run_cli
from .git_helpers import fsck, git, needs_git

pytestmark = needs_git

SRC = Path(__file__).resolve().parents[1] / "src" / "stac_repository"
TEST_CASE_2 = CORPUS / "pystac/catalogs/test-case-2/catalog.json"
Proc = subprocess.CompletedProcess[str]

# -- no shell ---------------------------------------------------------------------------------

SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}
FORBIDDEN = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("asyncio", "create_subprocess_shell"),
    ("pty", "spawn"),
}
EXEC_PREFIXES = ("exec", "spawn", "posix_spawn")


def _calls(tree: ast.AST) -> Iterator[tuple[ast.Call, str, str]]:
    """Every call with the module and function it names, following ``import x as y`` and
    ``from x import y as z``."""
    modules: dict[str, str] = {}
    names: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = (node.module, alias.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = modules.get(func.value.id)
            if module is not None:
                yield node, module, func.attr
        elif isinstance(func, ast.Name) and func.id in names:
            module, name = names[func.id]
            yield node, module, name


def _shell_problems(path: Path, base: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    problems = []
    for call, module, name in _calls(tree):
        where = f"{path.relative_to(base)}:{call.lineno}"
        if (module, name) in FORBIDDEN:
            problems.append(f"{where}: {module}.{name} runs a shell")
            continue
        is_subprocess = module == "subprocess" and name in SUBPROCESS_CALLS
        is_exec = module == "os" and name.startswith(EXEC_PREFIXES)
        if not (is_subprocess or is_exec):
            continue
        for kw in call.keywords:
            if kw.arg is None:
                problems.append(f"{where}: **kwargs passed to {module}.{name} could carry shell=True")
            elif kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                problems.append(f"{where}: {module}.{name}(shell=...) is not the constant False")
        args = [kw.value for kw in call.keywords if kw.arg == "args"] or call.args[:1]
        if is_subprocess and not (args and isinstance(args[0], ast.List | ast.Tuple)):
            problems.append(f"{where}: {module}.{name} is not given a literal argument list")
    return problems


def test_no_shell_is_ever_involved_in_running_a_program() -> None:
    """Every subprocess call in src/ takes a literal argument list, and shell is never true."""
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    problems = [p for f in files for p in _shell_problems(f, SRC.parent)]
    assert not problems, "\n".join(problems)


def test_the_ast_check_catches_shells(tmp_path: Path) -> None:
    """The checker itself: each forbidden form is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os, subprocess as sp\nfrom subprocess import run as r\n"
        "sp.run('git log', shell=True)\nr(cmd)\nos.system('ls')\nsp.Popen(['git'], **kw)\n"
    )
    problems = _shell_problems(bad, tmp_path)
    assert len(problems) == 5, problems


# -- helpers ------------------------------------------------------------------------------------


def _one_line_error(proc: Proc, codes: tuple[int, ...] = (1, 2)) -> str:
    """The command failed with one of ``codes`` and said why on one line (no traceback)."""
    assert proc.returncode in codes, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "internal error" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def _parallel(calls: list[tuple[str | Path, ...]], env: dict[str, str] | None = None) -> list[Proc]:
    with ThreadPoolExecutor(3) as pool:
        return list(pool.map(lambda args: run_cli(*args, env=env), calls))


def _digest(root: Path) -> dict[str, str]:
    """Every file under ``root``, .git included, with its sha256."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git stac-repository with two commits."""
    root = tmp_path_factory.mktemp("safety") / "repo"
    repo = Repository.init(root, backend="git", id="root", description="safety")
    report = repo.ingest([str(TEST_CASE_2)])
    assert not report.failed
    return root


# -- refs -------------------------------------------------------------------------------------

BAD_REFS = [
    "-x",
    "--upload-pack=touch pwned",
    "--output=pwned",
    "HEAD..main",
    "HEAD...main",
    "main:catalog.json",
    "HEAD~1 HEAD",
    "main branch",
    "HEAD@{1}",
    "main^{tree}",
    "@",
    "refs/../../../etc/passwd",
    "~1",
    "ma\tin",
    "HEAD\n",
    "$(touch pwned)",
    "`touch pwned`",
    "x" * 300,
    "2026-13-45",
    "",
]


def test_bad_refs_are_refused_by_rollback(ours: Path) -> None:
    """``rollback -- REF``: our own validation sees the ref; one line, exit 2 (or 1), no change."""
    head = git(ours, "rev-parse", "HEAD")
    before = _digest(ours)
    procs = _parallel([("-r", ours, "rollback", "--", ref) for ref in BAD_REFS])
    for ref, proc in zip(BAD_REFS, procs, strict=True):
        line = _one_line_error(proc)
        assert "ref" in line or "date" in line, (ref, line)
    assert git(ours, "rev-parse", "HEAD") == head
    assert _digest(ours) == before
    assert not list(Path.cwd().glob("pwned")) and not list(ours.rglob("pwned"))


def test_bad_refs_are_refused_by_every_command_that_takes_one(ours: Path, tmp_path: Path) -> None:
    """``export/backup/show --ref`` and an option-looking ref without ``--``: refused, nothing written."""
    calls: list[tuple[str | Path, ...]] = []
    for n, ref in enumerate(["-x", "HEAD..main", "main:catalog.json", "a b", "HEAD@{1}"]):
        calls.append(("-r", ours, "export", tmp_path / f"export-{n}", f"--ref={ref}"))
        calls.append(("-r", ours, "backup", tmp_path / f"backup-{n}", f"--ref={ref}"))
        calls.append(("-r", ours, "show", "root", f"--ref={ref}"))
    calls.append(("-r", ours, "rollback", "--upload-pack=evil"))  # click: no such option, exit 2
    procs = _parallel(calls)
    for args, proc in zip(calls, procs, strict=True):
        assert proc.returncode in (1, 2), (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
        if args[2] != "rollback":
            _one_line_error(proc)
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())


def test_bad_refs_through_the_library_raise_usage_errors(ours: Path, tmp_path: Path) -> None:
    """NUL and control characters cannot pass argv; the library refuses them with UsageError."""
    repo = Repository.open(ours)
    head = git(ours, "rev-parse", "HEAD")
    refs = [*BAD_REFS[:-1], "HEAD\x00", "main\x00--upload-pack=x", "\x7f", "HEAD\r"]
    verbs: list[Callable[[str], Any]] = [
        repo.rollback,
        lambda ref: repo.export(tmp_path / "export", ref=ref),
        lambda ref: repo.show("root", ref=ref),
        lambda ref: list(repo.history(ref)),
    ]
    for ref in refs:
        for verb in verbs:
            with pytest.raises(StacRepositoryError) as info:
                verb(ref)
            assert isinstance(info.value, UsageError | NotFound), (ref, info.value)
            assert "\n" not in str(info.value).strip() or "\n" in ref, (ref, str(info.value))
    assert git(ours, "rev-parse", "HEAD") == head
    assert not (tmp_path / "export").exists()


# -- config values and the author -------------------------------------------------------------

BAD_CONFIG = [
    ("lock.timeout", "-1"),
    ("lock.timeout", "nan"),
    ("lock.timeout", "inf"),
    ("lock.timeout", "1e999"),
    ("lock.timeout", "ten"),
    ("fsync", "maybe"),
    ("layout.max_items", "-5"),
    ("layout.max_items", "1.5"),
    ("layout.partition", "../x"),
    ("lfs.threshold", "-1"),
    ("assets.allow_outside", "2"),
    ("remote.url", "--upload-pack=touch pwned"),
    ("remote.url", "-oProxyCommand=touch pwned"),
    ("remote.url", "/tmp/x\x01y"),
    ("core.hooksPath", "/tmp"),
    ("../../x", "1"),
    ("lock", "1"),
    ("", "1"),
]


def test_bad_config_values_are_refused(ours: Path) -> None:
    """Unknown keys and bad values: one line, exit 2, no new commit."""
    head = git(ours, "rev-parse", "HEAD")
    procs = _parallel([("-r", ours, "config", "--", key, value) for key, value in BAD_CONFIG])
    for (key, value), proc in zip(BAD_CONFIG, procs, strict=True):
        line = _one_line_error(proc, (2,))
        assert line, (key, value)
    assert git(ours, "rev-parse", "HEAD") == head
    assert not list(ours.rglob("pwned"))


AUTHORS = [
    "Eve\nparent 0000000000000000000000000000000000000000 <e@x>",
    "Eve <e@x>\nx",
    "<>",
    "a <b",
]


@pytest.mark.parametrize("author", AUTHORS, ids=["newline-name", "newline-after", "empty", "open"])
def test_author_from_the_environment_cannot_forge_commit_headers(author: str, tmp_path: Path) -> None:
    """STAC_REPOSITORY_AUTHOR with control characters or broken brackets is refused before any
    write: one line, no commit, ``git fsck`` clean, and the repository still opens."""
    repo = tmp_path / "repo"
    Repository.init(repo, backend="git", id="root", description="author")
    head = git(repo, "rev-parse", "HEAD")
    proc = run_cli("-r", repo, "config", "lock.timeout", "5", env={"STAC_REPOSITORY_AUTHOR": author})
    _one_line_error(proc)
    assert git(repo, "rev-parse", "HEAD") == head
    fsck(repo)
    assert run_cli("-r", repo, "config", "lock.timeout", "6").returncode == 0


def test_no_shell_sees_remote_urls(ours: Path, tmp_path: Path) -> None:
    """Shell metacharacters in a remote URL reach git as one argument: no file is ever created."""
    sentinel = tmp_path / "pwned"
    urls = [f"/nonexistent/x;touch {sentinel}", f"$(touch {sentinel})", f"`touch {sentinel}`"]
    calls: list[tuple[str | Path, ...]] = [
        ("-r", ours, verb, f"--url={url}") for url in urls for verb in ("push", "pull")
    ]
    for proc in _parallel(calls):
        _one_line_error(proc)
    assert not sentinel.exists()


# -- a git repository that is not ours --------------------------------------------------------

NO_REPOSITORY = {"version", "show-backends", "show-processors"}


def _commands(foreign: Path, out: Path) -> dict[str, tuple[str | Path, ...]]:
    return {
        "init": ("init", "--yes", "--description", "x"),
        "config": ("config",),
        "config-set": ("config", "lock.timeout", "5"),
        "ingest": ("ingest", TEST_CASE_2),
        "prune": ("prune", "root"),
        "show": ("show", "root"),
        "history": ("history",),
        "rollback": ("rollback", "HEAD~1"),
        "export": ("export", out / "export"),
        "backup": ("backup", out / "backup"),
        "push": ("push", f"--url={out / 'remote'}"),
        "pull": ("pull", f"--url={foreign}"),
    }


def _foreign(root: Path) -> Path:
    """A random git repository with two commits, a branch and a tag."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("not a catalog\n")
    (root / "catalog.json").write_text('{"type": "Catalog", "id": "x", "stac_version": "1.0.0"}\n')
    git(root, "add", "-A")
    git(root, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "one")
    (root / "data.txt").write_text("two\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "two")
    git(root, "tag", "v1")
    return root


def test_every_command_refuses_a_git_repository_that_is_not_ours(tmp_path: Path) -> None:
    """Each repository command, with the backend detected or named, fails clearly and changes nothing."""
    foreign = _foreign(tmp_path / "foreign")
    out = tmp_path / "out"
    out.mkdir()
    commands = _commands(foreign, out)
    registered = {c.name for c in typer.main.get_command(_app()).commands.values()}  # type: ignore[attr-defined]
    missing = registered - NO_REPOSITORY - {name.split("-set")[0] for name in commands}
    assert not missing, f"add these commands to the foreign-repository test: {missing}"
    before = _digest(foreign)
    calls = [
        ("-r", foreign, *backend, *args)
        for backend in ((), ("--backend", "git"))
        for name, args in commands.items()
        if name.split("-set")[0] in registered
    ]
    for args, proc in zip(calls, _parallel(calls), strict=True):
        line = _one_line_error(proc)
        assert "stac-repository" in line or "not empty" in line, (args, line)
    assert _digest(foreign) == before
    assert not any(out.iterdir())
    for backend in (None, "git", "file"):
        with pytest.raises(NotFound, match="not a stac-repository"):
            Repository.open(foreign, backend=backend)


def test_an_empty_git_repository_is_refused(tmp_path: Path) -> None:
    """``git init`` without commits (unborn branch): refused clearly as well."""
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q")
    before = _digest(root)
    for args in (("config",), ("history",), ("ingest", TEST_CASE_2), ("export", tmp_path / "x")):
        line = _one_line_error(run_cli("-r", root, *args))
        assert "stac-repository" in line, line
    assert _digest(root) == before


def _app() -> typer.Typer:
    from stac_repository.cli.repository_app import app

    return app

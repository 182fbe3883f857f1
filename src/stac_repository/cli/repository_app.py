"""``stac-repository``: the repository commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .common import entry, print_json

app = typer.Typer(
    name="stac-repository",
    help="Git-versioned storage and management of STAC catalogs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


class State:
    def __init__(self, repository: Path, backend: str | None, debug: bool) -> None:
        self.repository = repository
        self.backend = backend
        self.debug = debug

    def open(self) -> Any:
        from ..repository import Repository

        return Repository.open(self.repository, backend=self.backend)


@app.callback()
def main(
    ctx: typer.Context,
    repository: Annotated[
        Optional[Path],
        typer.Option(
            "--repository",
            "-r",
            envvar="STAC_REPOSITORY",
            help="Repository folder (default: current folder).",
        ),
    ] = None,
    backend: Annotated[
        Optional[str], typer.Option(help="Backend (detected for an existing repository; init: file).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    ctx.obj = State(repository or Path.cwd(), backend, debug)


@app.command()
def version(as_json: JsonOpt = False) -> None:
    """Print the version."""
    from ..__about__ import __version__

    if as_json:
        print_json({"version": __version__})
    else:
        print(__version__)


@app.command("show-backends")
def show_backends(as_json: JsonOpt = False) -> None:
    """List the storage backends."""
    from ..backends import BACKENDS, backend_class

    rows = [
        {"name": n, "history": backend_class(n).has_history, "description": backend_class(n).description}
        for n in BACKENDS
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        print(f"{row['name']:<8} {row['description']}")


def _processor_rows() -> list[dict[str, Any]]:
    from ..errors import ProcessorError
    from ..processors.registry import available

    rows = []
    for name, info in available().items():
        row: dict[str, Any] = {"name": name, "origin": info.origin}
        try:
            row["version"] = info.load().__version__
        except ProcessorError as exc:
            row["error"] = str(exc)
        rows.append(row)
    return rows


def render_processors(as_json: bool) -> None:
    rows = _processor_rows()
    if as_json:
        print_json(rows)
        return
    for row in rows:
        status = row.get("version") or f"BROKEN: {row['error']}"
        print(f"{row['name']:<12} {status:<12} {row['origin']}")


@app.command("show-processors")
def show_processors(as_json: JsonOpt = False) -> None:
    """List the processors (built-in, entry points, stac_processor_* modules)."""
    render_processors(as_json)


def _ask(label: str, default: str | None, *, required: bool = True) -> str | None:
    value = typer.prompt(
        label,
        default=default if default is not None else ("" if not required else None),
        show_default=default is not None,
    )
    value = value.strip() if isinstance(value, str) else value
    return value or default


@app.command()
def init(
    ctx: typer.Context,
    root_catalog: Annotated[
        Optional[Path], typer.Option(help="Use this catalog file as the root catalog.")
    ] = None,
    from_backup: Annotated[
        Optional[Path], typer.Option(help="Restore a repository from a backup made with 'backup'.")
    ] = None,
    id: Annotated[Optional[str], typer.Option("--id", help="Root catalog id (default: root).")] = None,  # noqa: A002
    title: Annotated[Optional[str], typer.Option(help="Root catalog title.")] = None,
    description: Annotated[Optional[str], typer.Option(help="Root catalog description.")] = None,
    license: Annotated[Optional[str], typer.Option(help="License (default: proprietary).")] = None,  # noqa: A002
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask; accept defaults.")] = False,
    worktree: Annotated[
        bool,
        typer.Option(
            "--worktree/--no-worktree",
            help="git backend: check the catalog out in the repository folder (each commit then "
            "also rewrites git's index, a cost that grows with the catalog); default: bare, read it "
            "with export or git clone.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a repository (interactive without options)."""
    from ..errors import UsageError
    from ..repository import Repository, new_root_document

    state: State = ctx.obj
    if from_backup is not None:
        repo = Repository.restore_backup(
            from_backup, state.repository, options={"worktree": True} if worktree else None
        )
        _report_init(repo, as_json)
        return
    backend = state.backend or "file"
    if root_catalog is None:
        missing = [
            name
            for name, value in (
                ("id", id),
                ("title", title),
                ("description", description),
                ("license", license),
            )
            if value is None
        ]
        if missing and not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "no terminal to ask for the root catalog: pass --id, --title, --description and "
                    "--license (or --yes to accept the defaults)"
                )
            id = id if id is not None else _ask("Catalog id", "root")  # noqa: A001
            title = title if title is not None else _ask("Title", None, required=False)
            description = description if description is not None else _ask("Description", None)
            license = license if license is not None else _ask("License", "proprietary")  # noqa: A001
    doc = new_root_document(
        root_catalog, id=id or "root", title=title, description=description, license=license or "proprietary"
    )
    if not yes and sys.stdin.isatty():
        from ..stac.document import dumps

        typer.echo(dumps(doc).decode())
        if not typer.confirm(
            f"Create a {backend!r} repository at {state.repository} with this root catalog?", default=True
        ):
            raise typer.Abort()
    repo = Repository.init(
        state.repository,
        backend=backend,
        root_catalog_file=root_catalog,
        id=id or "root",
        title=title,
        description=description,
        license=license or "proprietary",
        options={"worktree": True} if worktree else None,
    )
    _report_init(repo, as_json)


def _report_init(repo: Any, as_json: bool) -> None:
    doc = repo.root_document()
    if as_json:
        print_json({"repository": str(repo.root), "backend": repo.backend.name, "root": doc.get("id")})
    else:
        typer.echo(
            f"initialised {repo.backend.name} repository at {repo.root} (root catalog {doc.get('id')!r})"
        )


@app.command()
def config(
    ctx: typer.Context,
    key: Annotated[Optional[str], typer.Argument(help="Config key (omit to list all).")] = None,
    value: Annotated[Optional[str], typer.Argument(help="New value (omit to read).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Read or change the repository configuration."""
    repo = ctx.obj.open()
    if value is not None:
        assert key is not None
        repo.set_config(key, value)
        typer.echo(f"{key} = {repo.get_config(key)}")
        return
    data = repo.get_config(key)
    if as_json:
        print_json(data if key is None else {key: data})
    elif key is None:
        for k, v in data.items():
            typer.echo(f"{k} = {v}")
    else:
        typer.echo("" if data is None else str(data))


@app.command()
def ingest(
    ctx: typer.Context,
    sources: Annotated[list[str], typer.Argument(help="Files, folders or URLs to ingest.")],
    processor: Annotated[str, typer.Option(help="Processor that turns sources into STAC.")] = "stac",
    parent: Annotated[
        Optional[str], typer.Option(help="Id (or path) of the catalog/collection to ingest under.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Re-ingest products whose version is unchanged.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest products; each product is one transaction."""
    from .render import ingest_progress, print_report

    repo = ctx.obj.open()
    with ingest_progress(enabled=not as_json and sys.stderr.isatty()) as on_result:
        report = repo.ingest(sources, processor=processor, parent=parent, force=force, on_result=on_result)
    if as_json:
        print_json(report.to_json())
    else:
        print_report(report)
    if report.failed:
        raise typer.Exit(1)


@app.command()
def prune(
    ctx: typer.Context,
    ids: Annotated[list[str], typer.Argument(help="Ids (or paths) of the objects to remove.")],
    extract: Annotated[
        Optional[Path], typer.Option(help="First save them as a self-contained catalog here.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove objects with their descendants and assets."""
    repo = ctx.obj.open()
    commit = repo.prune(ids, extract=extract)
    summary = commit.summary if commit else {}
    if as_json:
        print_json(
            {
                "pruned": summary.get("pruned", []),
                "removed": summary.get("counts", {}).get("removed", 0),
                "commit": commit.id if commit else None,
            }
        )
    else:
        n = summary.get("counts", {}).get("removed", 0)
        typer.echo(f"pruned {', '.join(summary.get('pruned', []))} ({n} objects removed)")


@app.command()
def show(
    ctx: typer.Context,
    id: Annotated[str, typer.Argument(help="Id or path of a stored object.")],  # noqa: A002
    ref: Annotated[Optional[str], typer.Option(help="Commit ref (git backend).")] = None,
) -> None:
    """Print a stored object as JSON."""
    print_json(ctx.obj.open().show(id, ref=ref))


@app.command()
def history(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List the ids added, updated and removed.")
    ] = False,
    ref: Annotated[Optional[str], typer.Option(help="Start from this commit, tag or date.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="At most this many.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the history of transactions, newest first."""
    import itertools

    from .render import print_history

    commits = itertools.islice(ctx.obj.open().history(ref), limit)
    print_history(commits, verbose=verbose, as_json=as_json)


@app.command()
def rollback(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Commit to restore (a new commit is made).")],
) -> None:
    """Restore the catalog as it was at REF, as a new transaction."""
    commit = ctx.obj.open().rollback(ref)
    typer.echo(f"rolled back to {ref}" + (f" ({commit.id[:10]})" if commit else " (already at that state)"))


@app.command()
def export(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="New or empty folder.")],
    ref: Annotated[Optional[str], typer.Option(help="Commit ref (git backend).")] = None,
    flatten: Annotated[
        bool, typer.Option(help="Leave partition catalogs out: collections link all their items.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a self-contained static catalog."""
    count = ctx.obj.open().export(directory, ref=ref, flatten=flatten)
    if as_json:
        print_json({"directory": str(directory), "files": count})
    else:
        typer.echo(f"exported {count} files to {directory}")


@app.command()
def backup(
    ctx: typer.Context,
    uri: Annotated[Path, typer.Argument(help="Backup destination (a new or empty folder).")],
    ref: Annotated[Optional[str], typer.Option(help="Commit ref (git backend).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a restorable copy (restore: 'init --from-backup', or open the copy directly)."""
    count = ctx.obj.open().backup(uri, ref=ref)
    if as_json:
        print_json({"backup": str(uri), "files": count})
    else:
        typer.echo(f"backed up {count} files to {uri}")


UrlOpt = Annotated[Optional[str], typer.Option("--url", help="Remote path or URL (default: remote.url).")]


@app.command()
def push(ctx: typer.Context, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Send new commits and their assets to the remote (fast-forward only; git backend)."""
    result = ctx.obj.open().push(url=url)
    if as_json:
        print_json(result.to_json())
    else:
        typer.echo(result.describe())


@app.command()
def pull(ctx: typer.Context, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Bring the remote's new commits and assets here (fast-forward only; git backend)."""
    result = ctx.obj.open().pull(url=url)
    if as_json:
        print_json(result.to_json())
    else:
        typer.echo(result.describe())


main_entry = entry(lambda: app, "stac-repository")

if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("COLUMNS", "100")
    main_entry()

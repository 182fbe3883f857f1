"""``stac-processor``: try a processor on a product without ingesting anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .common import entry, print_json

app = typer.Typer(
    name="stac-processor",
    help="Run a processor's steps by hand: discover, id, version, process.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.callback()
def main(
    ctx: typer.Context,
    processor: Annotated[str, typer.Option(help="Processor name.")] = "stac",
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    ctx.obj = processor


def _load(ctx: typer.Context) -> Any:
    from ..processors.registry import load

    return load(ctx.obj)


def _call(fn: Any, *args: Any) -> Any:
    """A processor is foreign code: its exceptions become one-line errors."""
    from ..errors import ProcessorError, StacRepositoryError

    try:
        return fn(*args)
    except StacRepositoryError:
        raise
    except Exception as exc:
        raise ProcessorError(f"{fn.__name__} failed: {type(exc).__name__}: {exc}") from exc


def _absolute(source: str) -> str:
    return source if "://" in source else str(Path(source).absolute())


@app.command("show-processors")
def show_processors(as_json: JsonOpt = False) -> None:
    """List the processors."""
    from .repository_app import render_processors

    render_processors(as_json)


@app.command()
def discover(ctx: typer.Context, source: str, as_json: JsonOpt = False) -> None:
    """List the products found in SOURCE."""
    processor = _load(ctx)
    products = _call(lambda s: list(processor.discover(s)), _absolute(source))
    if as_json:
        print_json(products)
    else:
        for product in products:
            typer.echo(product)


@app.command("id")
def product_id(ctx: typer.Context, product: str, as_json: JsonOpt = False) -> None:
    """Print the id of PRODUCT."""
    value = _call(_load(ctx).id, _absolute(product))
    print_json({"id": value}) if as_json else typer.echo(value)


@app.command("version")
def product_version(ctx: typer.Context, product: str, as_json: JsonOpt = False) -> None:
    """Print the version of PRODUCT."""
    value = _call(_load(ctx).version, _absolute(product))
    print_json({"version": value}) if as_json else typer.echo(value)


@app.command()
def process(ctx: typer.Context, product: str, as_json: JsonOpt = False) -> None:
    """Process PRODUCT and print the STAC document it produced."""
    from ..stac.document import read_json_file

    path = _call(_load(ctx).process, _absolute(product))
    doc = read_json_file(Path(path))
    if as_json:
        print_json({"path": str(path), "document": doc})
    else:
        typer.echo(f"# {path}")
        print_json(doc)


main_entry = entry(lambda: app, "stac-processor")

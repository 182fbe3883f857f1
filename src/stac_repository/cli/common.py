"""What both commands share: running a Typer app with one place that maps errors to exit codes."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import typer

from ..errors import StacRepositoryError


def print_json(data: Any) -> None:
    import orjson

    try:
        out = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
    except orjson.JSONEncodeError:  # integers beyond 64 bits
        import json

        out = json.dumps(data, indent=2, ensure_ascii=False, default=str).encode()
    sys.stdout.buffer.write(out + b"\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(code)


def run(app: typer.Typer, name: str, argv: list[str] | None = None) -> int:
    """Run ``app``; a StacRepositoryError becomes one line on stderr, a traceback only with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name=name, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return 1
    except typer.TyperException as exc:  # click's usage errors, vendored by typer
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2))
    except StacRepositoryError as exc:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # a bug: keep it short unless asked
        if debug:
            traceback.print_exc()
        else:
            sys.stderr.write(
                f"error: internal error {type(exc).__name__}: {exc} (run with --debug for the traceback)\n"
            )
        return 3
    return int(result) if isinstance(result, int) else 0


def entry(app_factory: Callable[[], typer.Typer], name: str) -> Callable[[], NoReturn]:
    def main() -> NoReturn:
        raise SystemExit(run(app_factory(), name))

    return main

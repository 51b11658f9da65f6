"""The `dsiem-sql` command line: the typer application, its global options, and what the
commands share. Each command is a few lines in its own module of this package, calling the
library; each imports what it uses when it runs, so that `--help` and `validate` start in a
fraction of a second."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dsiem_sql.config.errors import ConfigError
from dsiem_sql.runtime.logs import setup_logging

if TYPE_CHECKING:
    from dsiem_sql.config import Config
    from dsiem_sql.runtime.settings import EngineSettings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="A Dsiem correlation backend that keeps its state in SQLite.",
)


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@app.callback()
def global_options(
    ctx: typer.Context,
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="-v INFO, -vv DEBUG")
    ] = 0,
    debug: Annotated[bool, typer.Option("--debug", envvar="DSIEM_DEBUG")] = False,
    trace: Annotated[bool, typer.Option("--trace", envvar="DSIEM_TRACE")] = False,
    json_logs: Annotated[bool, typer.Option("-j", "--json", envvar="DSIEM_JSON")] = False,
    test_env: Annotated[bool, typer.Option(
        "--test-env", hidden=True, help="Accepted for compatibility; has no effect.")] = False,
) -> None:
    """Logs go to stderr: INFO for serve, WARNING for the other commands, unless -v/--debug."""
    if debug or trace or verbose >= 2:
        level = logging.DEBUG
    elif verbose or ctx.invoked_subcommand == "serve":
        level = logging.INFO
    else:
        level = logging.WARNING
    setup_logging(level, json_logs)


def load(configs: Path) -> Config:
    from dsiem_sql.config import load_config

    try:
        return load_config(configs)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def engine_settings(ctx: typer.Context) -> EngineSettings:
    """The engine settings among the command's options: those given by flag or variable,
    the defaults for the others, checked."""
    from pydantic import ValidationError

    from dsiem_sql.runtime.settings import EngineSettings

    given = ctx.params
    try:
        return EngineSettings.model_validate({
            name: given[name] for name in EngineSettings.model_fields
            if given.get(name) is not None
        })
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        raise fail(f"{where}: {message}" if where else message) from None


def main() -> None:
    """Entry point. Usage errors (a bad flag value, a missing option) exit 1, as the
    Dsiem backends do, instead of click's 2."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:
        if not hasattr(exc, "show"):  # click's (or typer's vendored click's) usage errors
            raise
        exc.show()
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)

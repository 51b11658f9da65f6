"""`dsiem-sql reload`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsiem_sql import defaults
from dsiem_sql.cli.app import app, fail
from dsiem_sql.store.errors import StoreError


@app.command("reload")
def reload_command(
    db: Annotated[Path, typer.Option("--db", envvar="DSIEM_DB",
                                     help="The database of the serve to reload.")],
    timeout: Annotated[float, typer.Option(
        "--timeout", min=1, help="Seconds to wait for the outcome.")] = defaults.RELOAD_TIMEOUT,
) -> None:
    """Make the serve that holds DB reload its config (SIGHUP); print the outcome."""
    from dsiem_sql.runtime.reload import ReloadCommandError, reload_serve

    try:
        result = reload_serve(db, timeout)
    except (ReloadCommandError, StoreError) as exc:
        raise fail(str(exc)) from None
    if not result.ok:
        raise fail(f"reload refused: {result.message}")
    typer.echo(f"reloaded: {result.message}")

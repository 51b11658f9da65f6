"""`dsiem-sql console`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsiem_sql import defaults
from dsiem_sql.cli.app import app, engine_settings, fail
from dsiem_sql.cli.options import (
    DbOpt,
    MatchProtocolOpt,
    MinAlarmLifetimeOpt,
    TaxonomyCustomDataOpt,
)
from dsiem_sql.store.errors import StoreError


@app.command("console")
def console_command(
    ctx: typer.Context,
    db: DbOpt,
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on; 0.0.0.0 for every one (see docs/console.md "
        "first).")] = defaults.CONSOLE_HOST,
    port: Annotated[int, typer.Option(
        "--port", min=0, max=65535, help="Port to listen on; 0 for any free one.")
    ] = defaults.CONSOLE_PORT,
    configs: Annotated[Path | None, typer.Option(
        "--configs", envvar="DSIEM_CONFIGS", help="Directory of Dsiem config files: the "
        "assets behind the risk in the stories (as explain --configs).")] = None,
    time_limit: Annotated[float, typer.Option(
        "--time-limit", min=0.001, help="Stop a query after this many seconds.")
    ] = defaults.CONSOLE_TIME_LIMIT,
    max_rows: Annotated[int, typer.Option(
        "--max-rows", min=2, help="The most rows a query returns.")] = defaults.CONSOLE_MAX_ROWS,
    refresh: Annotated[float, typer.Option(
        "--refresh", min=0, help="Seconds between two looks for changes of a live page; 0: "
        "pages are not live.")] = defaults.CONSOLE_REFRESH_SECONDS,
    min_alarm_lifetime: MinAlarmLifetimeOpt = None,
    match_protocol: MatchProtocolOpt = None,
    taxonomy_custom_data: TaxonomyCustomDataOpt = None,
) -> None:
    """Serve the database read-only to a browser: live backlogs, alarms, their stories, a
    dashboard (needs the extra: pip install 'dsiem-sql[console]')."""
    from dsiem_sql.console import INSTALL, ConsoleError, missing_packages

    missing = missing_packages()
    if missing:
        raise fail(f"the console needs the console extra: {INSTALL} "
                   f"({', '.join(missing)} not installed)")
    from dsiem_sql.console.serve import ConsoleOptions, run_console

    options = ConsoleOptions(
        db=db, host=host, port=port, configs=configs, time_limit=time_limit,
        max_rows=max_rows, refresh_seconds=refresh,
        engine=engine_settings(ctx).engine_options())
    try:
        run_console(options, lambda url: typer.echo(
            f"dsiem-sql console: {url} (the database {db}, read-only; Ctrl-C stops it)"))
    except (ConsoleError, StoreError) as exc:
        raise fail(str(exc)) from None

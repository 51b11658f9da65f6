"""`dsiem-sql suppress add|list|remove`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsiem_sql.cli.app import app, fail
from dsiem_sql.cli.options import DbOpt, OutputFormat
from dsiem_sql.store.errors import StoreError

suppress_app = typer.Typer(no_args_is_help=True, help="Silence a known source for a while.")
app.add_typer(suppress_app, name="suppress")


@suppress_app.command("add")
def suppress_add(
    db: DbOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
    directive: Annotated[int | None, typer.Option(
        "--directive", help="The directive it silences (default: every directive).")] = None,
    src: Annotated[str | None, typer.Option("--src", help="Source address or CIDR.")] = None,
    dst: Annotated[str | None, typer.Option("--dst", help="Destination address or CIDR.")
                   ] = None,
    custom_data: Annotated[str | None, typer.Option(
        "--custom-data", help="Only events whose custom_data1..3 holds this value.")] = None,
    ttl: Annotated[str | None, typer.Option("--ttl", help="For how long: 24h, 90m, 2d.")
                   ] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Until this time: 2026-12-31T18:00:00Z.")] = None,
    permanent: Annotated[bool, typer.Option("--permanent", help="Without an end.")] = False,
    by: Annotated[str, typer.Option("--by", help="Who adds it.")] = "",
    every: Annotated[bool, typer.Option(
        "--all", help="Allow a scope with neither directive nor address.")] = False,
    from_alarm: Annotated[str | None, typer.Option(
        "--from-alarm", help="Take the directive, source and destination of this alarm.")
    ] = None,
    configs: Annotated[Path | None, typer.Option(
        "--configs", envvar="DSIEM_CONFIGS",
        help="Check the directive against this config (default: the one serve last "
             "loaded).")] = None,
) -> None:
    """Add a suppression: events in its scope open and advance no backlog of the directive."""
    from dsiem_sql.runtime.suppress import SuppressError, add, new_suppression

    try:
        new = new_suppression(db, directive=directive, src=src, dst=dst,
                              custom_data=custom_data, ttl=ttl, until=until,
                              permanent=permanent, reason=reason, by=by, every=every,
                              from_alarm=from_alarm)
        suppression_id, where = add(db, new, configs)
    except (SuppressError, StoreError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"suppression {suppression_id} added by {where}: {new.scope()}")


@suppress_app.command("list")
def suppress_list(
    db: DbOpt,
    format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """Every suppression: its scope, reason, state, hits and time left."""
    from dsiem_sql.cli.tables import echo_rows
    from dsiem_sql.runtime.suppress import listing

    try:
        columns, rows = listing(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    echo_rows(columns, rows, format.value)


@suppress_app.command("remove")
def suppress_remove(
    db: DbOpt,
    suppression_id: Annotated[int, typer.Argument(metavar="ID", help="Its id (see list).")],
) -> None:
    """Remove a suppression: its events are correlated again (it stays listed, removed)."""
    from dsiem_sql.runtime.suppress import SuppressError, remove

    try:
        where = remove(db, suppression_id)
    except (SuppressError, StoreError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"suppression {suppression_id} removed by {where}")

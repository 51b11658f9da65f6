"""`dsiem-sql db upgrade|current` and `dsiem-sql sql`."""

from __future__ import annotations

from typing import Annotated

import typer

from dsiem_sql import defaults
from dsiem_sql.cli.app import app, fail
from dsiem_sql.cli.options import DbOpt, OutputFormat
from dsiem_sql.store.errors import StoreError

db_app = typer.Typer(no_args_is_help=True, help="Database schema commands.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(db: DbOpt) -> None:
    """Create the database or upgrade its schema to the newest revision."""
    from dsiem_sql.store.database import upgrade_alone

    try:
        typer.echo(f"{db}: schema at revision {upgrade_alone(db)} (newest)")
    except StoreError as exc:
        raise fail(str(exc)) from None


@db_app.command("current")
def db_current(db: DbOpt) -> None:
    """Print the schema revision of a database without changing it."""
    from dsiem_sql.store.database import describe_revision

    try:
        typer.echo(f"{db}: schema at revision {describe_revision(db)}")
    except StoreError as exc:
        raise fail(str(exc)) from None


@app.command("sql")
def sql_command(
    query: Annotated[str, typer.Argument(help="One SQL statement, e.g. SELECT * FROM alarms.")],
    db: DbOpt,
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.table,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0, help="Stop the query after this many seconds; 0 = never.")
    ] = defaults.QUERY_TIMEOUT,
) -> None:
    """Run a read-only query (the database is opened with mode=ro)."""
    from dsiem_sql.cli.tables import echo_rows
    from dsiem_sql.store.query import read_query

    try:
        columns, rows = read_query(db, query, timeout=timeout)
    except StoreError as exc:
        raise fail(str(exc)) from None
    echo_rows(columns, rows, format.value)

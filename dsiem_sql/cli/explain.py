"""`dsiem-sql explain`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from dsiem_sql.cli.app import app, engine_settings, fail
from dsiem_sql.cli.options import (
    ExplainFormat,
    MatchProtocolOpt,
    ReferenceModeOpt,
    TaxonomyCustomDataOpt,
)
from dsiem_sql.store.errors import StoreError


# An alarm id may start with "-" (Dsiem's ids do): it is taken as the ID, not as an unknown
# option; explain has long options only, so that no id reads as a cluster of short ones.
@app.command("explain", context_settings={"ignore_unknown_options": True})
def explain_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(
        metavar="ID|EVENT", help="With --db: an alarm (backlog) id. With --directive: an event, "
        "as a JSON object, @FILE or - (stdin).")],
    db: Annotated[Path | None, typer.Option(
        "--db", envvar="DSIEM_DB", help="Explain an alarm of this database (read-only).")] = None,
    configs: Annotated[Path | None, typer.Option(
        "--configs", envvar="DSIEM_CONFIGS", help="Directory of Dsiem config files: the "
        "directive of --directive; with --db, the assets of the risk.")] = None,
    directive: Annotated[int | None, typer.Option(
        "--directive", help="Explain the event against the stages of this directive.")] = None,
    format: Annotated[ExplainFormat, typer.Option("--format")] = ExplainFormat.text,
    min_alarm_lifetime: Annotated[int | None, typer.Option(
        "--min-alarm-lifetime", envvar="DSIEM_MINALARMLIFETIME",
        help="Minutes added to deadlines (default 0)")] = None,
    reference_mode: ReferenceModeOpt = None,
    match_protocol: MatchProtocolOpt = None,
    taxonomy_custom_data: TaxonomyCustomDataOpt = None,
) -> None:
    """Why an alarm fired or did not: its stages, events, risk and deadline (--db); or
    whether an event matches each stage of a directive, and if not why (--directive)."""
    from dsiem_sql.explain import ExplainError
    from dsiem_sql.explain.backlog import explain_backlog
    from dsiem_sql.explain.event import explain_event_of, read_event
    from dsiem_sql.explain.render import render_json, render_text

    settings = engine_settings(ctx)
    try:
        if directive is not None:
            if configs is None:
                raise fail("explain --directive needs --configs DIR")
            report = explain_event_of(configs, directive, read_event(target),
                                      settings.engine_options())
        elif db is not None:
            report = explain_backlog(db, target, configs, settings.engine_options())
        else:
            raise fail("give --db PATH and an alarm id, or --configs DIR --directive ID and "
                       "an event")
    except (ExplainError, StoreError) as exc:
        raise fail(str(exc)) from None
    width = shutil.get_terminal_size((100, 24)).columns
    typer.echo(render_json(report) if format is ExplainFormat.json
               else render_text(report, width), nl=False)

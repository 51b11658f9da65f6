"""`dsiem-sql replay`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsiem_sql import defaults
from dsiem_sql.cli.app import app, engine_settings, fail, load
from dsiem_sql.cli.options import (
    DEFAULT_DB_SYNC,
    CacheOpt,
    CommitIntervalOpt,
    ConfigsOpt,
    DbSyncOpt,
    IntelPrivateIpOpt,
    MatchProtocolOpt,
    MedRiskMaxOpt,
    MedRiskMinOpt,
    MinAlarmLifetimeOpt,
    ReferenceModeOpt,
    RetentionDaysOpt,
    StatusOpt,
    TagsOpt,
    TaxonomyCustomDataOpt,
)
from dsiem_sql.store.errors import StoreError


@app.command("replay")
def replay_command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSON-lines event file, or - for stdin.")],
    configs: ConfigsOpt,
    out: Annotated[Path, typer.Option("--out", help="Directory for the output files.")],
    db: Annotated[
        Path | None, typer.Option("--db", envvar="DSIEM_DB", help="SQLite database for state.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue FILE after the last committed line.")
    ] = False,
    db_sync: DbSyncOpt = DEFAULT_DB_SYNC,
    commit_interval: CommitIntervalOpt = defaults.COMMIT_INTERVAL_MS,
    commit_changes: Annotated[
        int, typer.Option("--commit-changes", min=1, help="...or after this many changes.")
    ] = defaults.COMMIT_CHANGES,
    retention_days: RetentionDaysOpt = defaults.RETENTION_DAYS,
    reference_mode: ReferenceModeOpt = None,
    min_alarm_lifetime: MinAlarmLifetimeOpt = None,
    status: StatusOpt = None,
    tags: TagsOpt = None,
    med_risk_min: MedRiskMinOpt = None,
    med_risk_max: MedRiskMaxOpt = None,
    match_protocol: MatchProtocolOpt = None,
    taxonomy_custom_data: TaxonomyCustomDataOpt = None,
    final_sweep: Annotated[
        bool | None,
        typer.Option(
            "--final-sweep/--no-final-sweep",
            help="Expire at wall-clock time after the last event (default: on without --db).",
        ),
    ] = None,
    cache: CacheOpt = defaults.CACHE_MINUTES,
    intel_private_ip: IntelPrivateIpOpt = False,
) -> None:
    """Run JSON-lines events through the engine and write the alarm files."""
    from dsiem_sql.cli.tables import print_summary
    from dsiem_sql.runtime.correlator import Batching
    from dsiem_sql.runtime.replay import ReplayError, ReplayRun, run_replay

    settings = engine_settings(ctx)
    config = load(configs)
    run = ReplayRun(
        file=file, out=str(out), db=None if db is None else str(db), resume=resume,
        sync=db_sync.value, batching=Batching(commit_interval, commit_changes),
        retention_days=retention_days, final_sweep=final_sweep, cache_minutes=cache,
        intel_private_ip=intel_private_ip,
    )
    try:
        summary = run_replay(run, config, settings.engine_options())
    except (ReplayError, StoreError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{exc.filename}: {exc.strerror}") from None
    print_summary(summary.rows())
    typer.echo(f"output in {out}/")

"""The `dsiem-sql` command line. Kept thin: each command calls the library."""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dsiem_sql.config.errors import ConfigError
from dsiem_sql.shell.logs import setup_logging
from dsiem_sql.store.errors import StoreError

if TYPE_CHECKING:
    from dsiem_sql.config import Config
    from dsiem_sql.shell.settings import EngineSettings

# Each command imports what it uses: `--help` and `validate` start in a fraction of a second.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="A Dsiem correlation backend that keeps its state in SQLite.",
)


class Intake(StrEnum):
    core = "core"
    jetstream = "jetstream"


class DbSync(StrEnum):
    normal = "normal"
    full = "full"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


ConfigsOpt = Annotated[
    Path,
    typer.Option("--configs", envvar="DSIEM_CONFIGS", help="Directory of Dsiem config files."),
]


# Options that replay and serve share (engine, database, enrichment). The engine settings
# default to None, which stands for EngineSettings' default.
ReferenceModeOpt = Annotated[str | None, typer.Option(
    "--reference-mode", envvar="DSIEM_REFERENCE_MODE",
    help="value (default) or rule (Go Dsiem)")]
MinAlarmLifetimeOpt = Annotated[int | None, typer.Option(
    "-l", "--min-alarm-lifetime", envvar="DSIEM_MINALARMLIFETIME",
    help="Minutes added to deadlines (default 0)")]
StatusOpt = Annotated[str | None, typer.Option(
    "-s", "--status", envvar="DSIEM_STATUS",
    help="Alarm statuses, the first for new alarms (default Open,In-Progress,Closed)")]
TagsOpt = Annotated[str | None, typer.Option(
    "-t", "--tags", envvar="DSIEM_TAGS",
    help="Alarm tags, the first for new alarms (default Identified Threat,False Positive,"
         "Valid Threat,Security Incident)")]
MedRiskMinOpt = Annotated[int | None, typer.Option(
    "--med_risk_min", "--med-risk-min", envvar="DSIEM_MEDRISKMIN",
    help="Lowest Medium risk, 2..8 (default 3)")]
MedRiskMaxOpt = Annotated[int | None, typer.Option(
    "--med_risk_max", "--med-risk-max", envvar="DSIEM_MEDRISKMAX",
    help="Highest Medium risk, 3..9 (default 6)")]
MatchProtocolOpt = Annotated[bool | None, typer.Option(
    "--match-protocol", envvar="DSIEM_MATCH_PROTOCOL", help="Match rule protocols exactly.")]
TaxonomyCustomDataOpt = Annotated[bool | None, typer.Option(
    "--taxonomy-custom-data", envvar="DSIEM_TAXONOMY_CUSTOM_DATA",
    help="Check custom data on TaxonomyRules.")]
CacheOpt = Annotated[int, typer.Option(
    "-c", "--cache", envvar="DSIEM_CACHEDURATION", min=0, max=255,
    help="Intel/vuln cache minutes; 0 = no cache.")]
IntelPrivateIpOpt = Annotated[bool, typer.Option(
    "--intel_private_ip", "--intel-private-ip", envvar="DSIEM_INTELPRIVATEIP",
    help="Also look up private addresses in the intel sources.")]
DbSyncOpt = Annotated[DbSync, typer.Option(
    "--db-sync", envvar="DSIEM_DB_SYNC",
    help="normal: survives a process crash; full: also a power loss (slower).")]
CommitIntervalOpt = Annotated[int, typer.Option(
    "--commit-interval", min=1, envvar="DSIEM_COMMIT_INTERVAL",
    help="Group commit every this many ms.")]
RetentionDaysOpt = Annotated[int, typer.Option(
    "--retention-days", min=0, envvar="DSIEM_RETENTION_DAYS",
    help="Delete ended backlogs this many days after they ended.")]


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


def _load(configs: Path) -> Config:
    from dsiem_sql.config import load_config

    try:
        return load_config(configs)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def engine_settings(ctx: typer.Context) -> EngineSettings:
    """The engine settings among the command's options: those given by flag or variable,
    the defaults for the others, checked."""
    from pydantic import ValidationError

    from dsiem_sql.shell.settings import EngineSettings

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


@app.command()
def validate(configs: ConfigsOpt) -> None:
    """Load and validate a config directory; print what it holds."""
    config = _load(configs)
    for f in config.files:
        if f.kind == "directives":
            extra = f", {f.disabled} disabled" if f.disabled else ""
            typer.echo(f"{f.path}: {f.directives} directives, {f.rules} rules{extra}")
        elif f.kind == "assets":
            typer.echo(f"{f.path}: {f.assets} assets")
        else:
            typer.echo(f"{f.path}: {f.sources} {f.kind} sources")
    typer.echo(
        f"valid: {len(config.directives)} directives, "
        f"{sum(len(d.rules) for d in config.directives)} rules, {len(config.assets)} assets"
    )


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
    db_sync: DbSyncOpt = DbSync.normal,
    commit_interval: CommitIntervalOpt = 100,
    commit_changes: Annotated[
        int, typer.Option("--commit-changes", min=1, help="...or after this many changes.")
    ] = 2000,
    retention_days: RetentionDaysOpt = 7,
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
    cache: CacheOpt = 10,
    intel_private_ip: IntelPrivateIpOpt = False,
) -> None:
    """Run JSON-lines events through the engine and write the alarm files."""
    import asyncio

    from dsiem_sql.engine import Engine
    from dsiem_sql.shell.correlator import Batching, EventClock
    from dsiem_sql.shell.replay import ReplayError, ReplayRun, replay_file
    from dsiem_sql.shell.tables import add_row, new_table, print_table

    settings = engine_settings(ctx)
    config = _load(configs)
    run = ReplayRun(
        file=file,
        out=str(out),
        db=None if db is None else str(db),
        resume=resume,
        sync=db_sync.value,
        batching=Batching(commit_interval, commit_changes),
        retention_days=retention_days,
        final_sweep=final_sweep,
        cache_minutes=cache,
        intel_private_ip=intel_private_ip,
    )
    clock = EventClock()
    engine = Engine(config, settings.engine_options(), clock=clock)
    try:
        s = asyncio.run(replay_file(run, engine, clock, config))
    except (ReplayError, StoreError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{exc.filename}: {exc.strerror}") from None
    rows = [
        ("events read", s.read),
        ("invalid", s.invalid),
        ("whitelisted", s.stats.whitelisted),
        ("matched", s.stats.matched),
        ("backlogs opened", s.stats.backlogs_opened),
        ("backlogs finished", s.stats.finished),
        ("backlogs expired", s.stats.expired),
        ("alarms", s.stats.alarms),
        ("alarm lines", s.stats.alarm_lines),
        ("live backlogs", s.live_backlogs),
        ("seconds", f"{s.seconds:.3f}"),
        ("events/s", f"{s.events_per_second:,.0f}"),
    ]
    table = new_table(("name", "value"), right=("value",), show_header=False)
    for name, value in rows:
        add_row(table, name, value)
    print_table(table)
    typer.echo(f"output in {out}/")


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    node: Annotated[str, typer.Option("-n", "--node", envvar="DSIEM_NODE",
                                      help="Node name; selects directives_<node>_*.json.")],
    configs: Annotated[Path, typer.Option("--configs", envvar="DSIEM_CONFIGS",
                                          help="Config directory.")] = Path("configs"),
    db: Annotated[Path, typer.Option("--db", envvar="DSIEM_DB",
                                     help="SQLite database for state.")] = Path("dsiem.db"),
    logs: Annotated[Path, typer.Option("--logs", envvar="DSIEM_LOGS",
                                       help="Directory of siem_alarms.json and "
                                            "siem_alarm_events.json.")] = Path("logs"),
    frontend: Annotated[str | None, typer.Option(
        "-f", "--frontend", envvar="DSIEM_FRONTEND",
        help="Download configs from this Dsiem frontend's /config/ first.")] = None,
    frontend_timeout: Annotated[int, typer.Option(
        "--frontend-timeout", envvar="DSIEM_FRONTEND_TIMEOUT", min=1,
        help="Seconds allowed for the whole config download.")] = 60,
    max_config_size: Annotated[int, typer.Option(
        "--max-config-size", envvar="DSIEM_MAX_CONFIG_SIZE", min=1,
        help="MB allowed for one downloaded config file.")] = 64,
    msq: Annotated[str, typer.Option("--msq", envvar="DSIEM_MSQ",
                                     help="NATS URL (may carry user:password@).")
                   ] = "nats://dsiem-nats:4222",
    nats_token: Annotated[str | None, typer.Option("--nats-token",
                                                   envvar="DSIEM_NATS_TOKEN",
                                                   help="NATS authentication token.")] = None,
    nats_creds: Annotated[Path | None, typer.Option("--nats-creds", envvar="DSIEM_NATS_CREDS",
                                                    help="NATS .creds file.")] = None,
    nats_tls_ca: Annotated[Path | None, typer.Option("--nats-tls-ca",
                                                     envvar="DSIEM_NATS_TLS_CA",
                                                     help="CA bundle for NATS TLS.")] = None,
    nats_tls_cert: Annotated[Path | None, typer.Option("--nats-tls-cert",
                                                       envvar="DSIEM_NATS_TLS_CERT",
                                                       help="NATS client cert.")] = None,
    nats_tls_key: Annotated[Path | None, typer.Option("--nats-tls-key",
                                                      envvar="DSIEM_NATS_TLS_KEY",
                                                      help="NATS client key.")] = None,
    min_alarm_lifetime: MinAlarmLifetimeOpt = None,
    status: StatusOpt = None,
    tags: TagsOpt = None,
    med_risk_min: MedRiskMinOpt = None,
    med_risk_max: MedRiskMaxOpt = None,
    max_eps: Annotated[int, typer.Option(
        "-e", "--max_eps", "--max-eps", min=1, max=2**32 - 1,
        envvar=["DSIEM_MAXEPS", "MAX_EPS"],  # the first that is set and not empty
        help="Expected events/s, for the watchdog.")] = 1000,
    cache: CacheOpt = 10,
    max_queue: Annotated[int, typer.Option("-q", "--max_queue", "--max-queue",
                                           envvar="DSIEM_MAXQUEUE", min=0,
                                           help="Queue size; 0 = unbounded.")] = 25000,
    hold_duration: Annotated[int, typer.Option("--hold_duration", "--hold-duration",
                                               envvar="DSIEM_HOLDDURATION", min=1, max=255,
                                               help="Seconds before overload=false.")] = 10,
    max_delay: Annotated[int, typer.Option("-d", "--max_delay", "--max-delay",
                                           envvar="DSIEM_MAXDELAY", min=0, max=65535,
                                           help="Seconds; 0 disables overload signals.")] = 180,
    intel_private_ip: IntelPrivateIpOpt = False,
    reload_backlogs: Annotated[bool, typer.Option(
        "--reload-backlogs/--no-reload-backlogs", envvar="DSIEM_RELOAD_BACKLOGS",
        help="Resume the live backlogs kept in the database.")] = True,
    reference_mode: ReferenceModeOpt = None,
    match_protocol: MatchProtocolOpt = None,
    taxonomy_custom_data: TaxonomyCustomDataOpt = None,
    commit_interval: CommitIntervalOpt = 100,
    db_sync: DbSyncOpt = DbSync.normal,
    retention_days: RetentionDaysOpt = 7,
    db_retry_window: Annotated[int, typer.Option(
        "--db-retry-window", min=0, envvar="DSIEM_DB_RETRY_WINDOW",
        help="Seconds to retry a write that fails for a passing reason (disk full, a lock) "
             "before stopping.")] = 60,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", min=1, max=65535, envvar="DSIEM_METRICS_PORT",
        help="Serve Prometheus /metrics and /healthz on this port.")] = None,
    metrics_host: Annotated[str, typer.Option(
        "--metrics-host", envvar="DSIEM_METRICS_HOST",
        help="Address that /metrics and /healthz listen on.")] = "0.0.0.0",
    intake: Annotated[Intake, typer.Option(
        "--intake", envvar="DSIEM_INTAKE",
        help="core: subscribe to dsiem_events (at most once); jetstream: read it from a "
             "JetStream stream (nothing lost, exactly-once effects).")] = Intake.core,
    js_stream: Annotated[str, typer.Option(
        "--js-stream", envvar="DSIEM_JS_STREAM",
        help="JetStream stream of the events; created if missing.")] = "DSIEM_EVENTS",
    js_max_age: Annotated[float, typer.Option(
        "--js-max-age", envvar="DSIEM_JS_MAX_AGE", min=0,
        help="Hours a created stream keeps events; 0: no limit.")] = 24,
    js_max_bytes: Annotated[str, typer.Option(
        "--js-max-bytes", envvar="DSIEM_JS_MAX_BYTES",
        help="Size a created stream keeps (like 500M, 20G); 0: no limit.")] = "0",
    js_replicas: Annotated[int, typer.Option(
        "--js-replicas", envvar="DSIEM_JS_REPLICAS", min=1, max=5,
        help="Replicas of a created stream (a JetStream cluster).")] = 1,
) -> None:
    """Correlate events from NATS, keeping state in SQLite (the Dsiem backend's job)."""
    from dsiem_sql.shell.bus import NatsConfigError, NatsOptions, StreamOptions
    from dsiem_sql.shell.correlator import Batching
    from dsiem_sql.shell.jetstream import check_names
    from dsiem_sql.shell.service import ServeOptions, ServiceFailed, run_service

    settings = engine_settings(ctx)
    nats_options = NatsOptions(
        url=msq,
        token=nats_token,
        creds=None if nats_creds is None else str(nats_creds),
        tls_ca=None if nats_tls_ca is None else str(nats_tls_ca),
        tls_cert=None if nats_tls_cert is None else str(nats_tls_cert),
        tls_key=None if nats_tls_key is None else str(nats_tls_key),
    )
    stream_options = StreamOptions(
        stream=js_stream, max_age=js_max_age * 3600,
        max_bytes=_size("--js-max-bytes", js_max_bytes), replicas=js_replicas,
    )
    try:
        nats_options.check()
        if intake == Intake.jetstream:
            check_names(stream_options, node)
    except NatsConfigError as exc:
        raise fail(str(exc)) from None
    options = ServeOptions(
        node=node,
        configs=configs,
        db=db,
        logs=logs,
        frontend=frontend,
        frontend_timeout=frontend_timeout,
        max_config_size=max_config_size * 2**20,
        nats=nats_options,
        intake=intake.value,
        jetstream=stream_options,
        max_queue=max_queue,
        max_delay=max_delay,
        hold_duration=hold_duration,
        max_eps=max_eps,
        batching=Batching(commit_interval),
        db_sync=db_sync.value,
        retention_days=retention_days,
        db_retry_window=db_retry_window,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        reload_backlogs=reload_backlogs,
        cache_minutes=cache,
        intel_private_ip=intel_private_ip,
    )
    try:
        run_service(options, settings.engine_options())
    except ServiceFailed:
        raise typer.Exit(1) from None
    except (ConfigError, StoreError, NatsConfigError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # e.g. the metrics port is taken, the logs directory not writable
        raise fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)) from None


def _size(option: str, text: str) -> int:
    """Bytes of a size like 500M or 20G (K, M, G, T: powers of 1024); 0 is -1, no limit."""
    text = text.strip()
    number, unit = (text[:-1], text[-1].upper()) if text[-1:].isalpha() else (text, "")
    try:
        value = float(number) * 1024 ** " KMGT".index(unit or " ")
    except ValueError:
        raise fail(f"{option} {text!r}: give bytes or a size like 500M or 20G") from None
    return int(value) if value > 0 else -1


@app.command("reload")
def reload_command(
    db: Annotated[Path, typer.Option("--db", envvar="DSIEM_DB",
                                     help="The database of the serve to reload.")],
    timeout: Annotated[float, typer.Option(
        "--timeout", min=1, help="Seconds to wait for the outcome.")] = 120,
) -> None:
    """Make the serve that holds DB reload its config (SIGHUP); print the outcome."""
    from dsiem_sql.shell.reload import ReloadCommandError, reload_serve

    try:
        result = reload_serve(db, timeout)
    except (ReloadCommandError, StoreError) as exc:
        raise fail(str(exc)) from None
    if not result.ok:
        raise fail(f"reload refused: {result.message}")
    typer.echo(f"reloaded: {result.message}")


@app.command("import-backlogs")
def import_backlogs_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(
        help="Saved backlog files (<directive_id>.json) or directories of them.")],
    configs: ConfigsOpt,
    db: Annotated[Path, typer.Option("--db", envvar="DSIEM_DB", help="SQLite database.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing.")
                       ] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Delete fully imported files.")
                      ] = False,
    status: StatusOpt = None,
    tags: TagsOpt = None,
) -> None:
    """Import legacy /logs/backlogs/*.json snapshots ([M] and [R] formats) as live backlogs."""
    import asyncio

    from rich.console import Console
    from rich.progress import Progress

    from dsiem_sql.engine import Engine
    from dsiem_sql.legacy.importer import backlog_files, import_files
    from dsiem_sql.shell.tables import add_row, new_table, print_table

    settings = engine_settings(ctx)
    config = _load(configs)
    files = backlog_files(paths)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"no such file or directory: {', '.join(missing)}")
    engine = Engine(config, settings.engine_options())
    console = Console(stderr=True)

    async def run():
        from dsiem_sql.store.store import Store

        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("importing", total=len(files))

            def advance(_result) -> None:
                progress.advance(task)

            if dry_run:
                return await import_files(files, engine, None, on_file=advance,
                                          present_ids=_present_ids(db))
            store = Store(db, None)
            await store.open()
            try:
                resumed = await store.resume(engine.directive)
                engine.resume(resumed.backlogs, resumed.next_seq)
                return await import_files(files, engine, store, remove=remove, on_file=advance)
            finally:
                await store.close()

    try:
        results = asyncio.run(run())
    except StoreError as exc:
        raise fail(str(exc)) from None
    counts = ("backlogs", "imported", "already present", "skipped")
    table = new_table(("file", *counts, "result"), right=counts,
                      title="dry run: nothing written" if dry_run else None)
    for r in results:
        outcome = r.error or ("; ".join(f"{n} {why}" for why, n in r.skipped.items()) or "ok")
        add_row(table, r.path, r.backlogs, r.imported, r.present, sum(r.skipped.values()),
                outcome)
    add_row(table, "total", sum(r.backlogs for r in results),
            sum(r.imported for r in results), sum(r.present for r in results),
            sum(sum(r.skipped.values()) for r in results),
            f"{sum(1 for r in results if r.error)} files failed")
    print_table(table)
    if any(r.error for r in results):
        raise typer.Exit(1)


def _present_ids(db: Path):
    """For a dry run: which alarm ids the database already holds (read-only)."""
    from dsiem_sql.store.query import read_query

    def present(ids: list[str]) -> set[str]:
        if not db.exists():
            return set()
        marks = ",".join("?" * len(ids))
        _, found = read_query(db, f"SELECT id FROM backlogs WHERE id IN ({marks})", ids)
        return {r[0] for r in found}

    return present


db_app = typer.Typer(no_args_is_help=True, help="Database schema commands.")
app.add_typer(db_app, name="db")
DbOpt = Annotated[Path, typer.Option("--db", envvar="DSIEM_DB", help="SQLite database.")]


@db_app.command("upgrade")
def db_upgrade(db: DbOpt) -> None:
    """Create the database or upgrade its schema to the newest revision."""
    from dsiem_sql.store.database import WriterLock, upgrade

    lock = WriterLock(db)  # a migration is a write: not while a writer runs
    try:
        lock.acquire(db)
        try:
            typer.echo(f"{db}: schema at revision {upgrade(db)} (newest)")
        finally:
            lock.release()
    except StoreError as exc:
        raise fail(str(exc)) from None


@db_app.command("current")
def db_current(db: DbOpt) -> None:
    """Print the schema revision of a database without changing it."""
    from dsiem_sql.store.database import current_revision, head_revision, known_revisions

    try:
        revision = current_revision(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    head = head_revision()
    if revision == head:
        state = "newest"
    elif revision is not None and revision not in known_revisions():
        state = f"newer than this dsiem-sql, which knows up to {head}"
    else:
        state = f"newest is {head}"
    typer.echo(f"{db}: schema at revision {revision or 'none'} ({state})")


@app.command("sql")
def sql_command(
    query: Annotated[str, typer.Argument(help="One SQL statement, e.g. SELECT * FROM alarms.")],
    db: DbOpt,
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.table,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0, help="Stop the query after this many seconds; 0 = never.")] = 30,
) -> None:
    """Run a read-only query (the database is opened with mode=ro)."""
    from dsiem_sql.shell.tables import add_row, new_table, print_table
    from dsiem_sql.store.query import format_rows, read_query

    try:
        columns, result = read_query(db, query, timeout=timeout)
    except StoreError as exc:
        raise fail(str(exc)) from None
    if format is not OutputFormat.table:
        typer.echo(format_rows(columns, result, format.value), nl=False)
        return
    table = new_table(columns)
    for row in result:
        add_row(table, *row)
    print_table(table)
    typer.echo(f"({len(result)} row{'' if len(result) == 1 else 's'})")


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

"""`dsiem-sql serve`: the flags of the Dsiem backend (same names, short flags, `DSIEM_*`
variables and defaults) and dsiem-sql's own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dsiem_sql import defaults
from dsiem_sql.cli.app import app, engine_settings, fail
from dsiem_sql.cli.options import (
    DEFAULT_DB_SYNC,
    DEFAULT_INTAKE,
    CacheOpt,
    CommitIntervalOpt,
    DbSyncOpt,
    Intake,
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
from dsiem_sql.config.errors import ConfigError
from dsiem_sql.store.errors import StoreError


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    node: Annotated[str, typer.Option("-n", "--node", envvar="DSIEM_NODE",
                                      help="Node name; selects directives_<node>_*.json.")],
    configs: Annotated[Path, typer.Option("--configs", envvar="DSIEM_CONFIGS",
                                          help="Config directory.")] = defaults.NODE_CONFIGS,
    db: Annotated[Path, typer.Option("--db", envvar="DSIEM_DB",
                                     help="SQLite database for state.")] = defaults.DB,
    logs: Annotated[Path, typer.Option("--logs", envvar="DSIEM_LOGS",
                                       help="Directory of siem_alarms.json and "
                                            "siem_alarm_events.json.")] = defaults.LOGS,
    frontend: Annotated[str | None, typer.Option(
        "-f", "--frontend", envvar="DSIEM_FRONTEND",
        help="Download configs from this Dsiem frontend's /config/ first.")] = None,
    frontend_timeout: Annotated[int, typer.Option(
        "--frontend-timeout", envvar="DSIEM_FRONTEND_TIMEOUT", min=1,
        help="Seconds allowed for the whole config download.")] = defaults.FRONTEND_TIMEOUT,
    max_config_size: Annotated[int, typer.Option(
        "--max-config-size", envvar="DSIEM_MAX_CONFIG_SIZE", min=1,
        help="MB allowed for one downloaded config file.")] = defaults.MAX_CONFIG_SIZE_MB,
    msq: Annotated[str, typer.Option("--msq", envvar="DSIEM_MSQ",
                                     help="NATS URL (may carry user:password@).")
                   ] = defaults.NATS_URL,
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
    nats_reconnect_window: Annotated[int, typer.Option(
        "--nats-reconnect-window", envvar="DSIEM_NATS_RECONNECT_WINDOW", min=0,
        help="Seconds to wait for a lost NATS connection to come back before stopping "
             "with an error; 0 = wait forever.")] = defaults.NATS_RECONNECT_WINDOW,
    min_alarm_lifetime: MinAlarmLifetimeOpt = None,
    status: StatusOpt = None,
    tags: TagsOpt = None,
    med_risk_min: MedRiskMinOpt = None,
    med_risk_max: MedRiskMaxOpt = None,
    max_eps: Annotated[int, typer.Option(
        "-e", "--max_eps", "--max-eps", min=1, max=2**32 - 1,
        envvar=["DSIEM_MAXEPS", "MAX_EPS"],  # the first that is set and not empty
        help="Expected events/s, for the watchdog.")] = defaults.MAX_EPS,
    cache: CacheOpt = defaults.CACHE_MINUTES,
    max_queue: Annotated[int, typer.Option("-q", "--max_queue", "--max-queue",
                                           envvar="DSIEM_MAXQUEUE", min=0,
                                           help="Queue size; 0 = unbounded.")] = defaults.MAX_QUEUE,
    hold_duration: Annotated[int, typer.Option("--hold_duration", "--hold-duration",
                                               envvar="DSIEM_HOLDDURATION", min=1, max=255,
                                               help="Seconds before overload=false.")
                   ] = defaults.HOLD_DURATION,
    max_delay: Annotated[int, typer.Option("-d", "--max_delay", "--max-delay",
                                           envvar="DSIEM_MAXDELAY", min=0, max=65535,
                                           help="Seconds; 0 disables overload signals.")
                   ] = defaults.MAX_DELAY,
    intel_private_ip: IntelPrivateIpOpt = False,
    reload_backlogs: Annotated[bool, typer.Option(
        "--reload-backlogs/--no-reload-backlogs", envvar="DSIEM_RELOAD_BACKLOGS",
        help="Resume the live backlogs kept in the database.")] = True,
    reference_mode: ReferenceModeOpt = None,
    match_protocol: MatchProtocolOpt = None,
    taxonomy_custom_data: TaxonomyCustomDataOpt = None,
    commit_interval: CommitIntervalOpt = defaults.COMMIT_INTERVAL_MS,
    db_sync: DbSyncOpt = DEFAULT_DB_SYNC,
    retention_days: RetentionDaysOpt = defaults.RETENTION_DAYS,
    db_retry_window: Annotated[int, typer.Option(
        "--db-retry-window", min=0, envvar="DSIEM_DB_RETRY_WINDOW",
        help="Seconds to retry a write that fails for a passing reason (disk full, a lock) "
             "before stopping.")] = defaults.DB_RETRY_WINDOW,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", min=1, max=65535, envvar="DSIEM_METRICS_PORT",
        help="Serve Prometheus /metrics and /healthz on this port.")] = None,
    enable_lifecycle: Annotated[bool, typer.Option(
        "--enable-lifecycle", envvar="DSIEM_ENABLE_LIFECYCLE",
        help="Accept POST /-/reload on the metrics port (off: anyone who reaches the port "
             "could make serve reload).")] = False,
    metrics_host: Annotated[str, typer.Option(
        "--metrics-host", envvar="DSIEM_METRICS_HOST",
        help="Address that /metrics and /healthz listen on.")] = defaults.METRICS_HOST,
    intake: Annotated[Intake, typer.Option(
        "--intake", envvar="DSIEM_INTAKE",
        help="core: subscribe to dsiem_events (at most once); jetstream: read it from a "
             "JetStream stream (nothing lost, exactly-once effects).")] = DEFAULT_INTAKE,
    js_stream: Annotated[str, typer.Option(
        "--js-stream", envvar="DSIEM_JS_STREAM",
        help="JetStream stream of the events; created if missing.")] = defaults.JS_STREAM,
    js_max_age: Annotated[float, typer.Option(
        "--js-max-age", envvar="DSIEM_JS_MAX_AGE", min=0,
        help="Hours a created stream keeps events; 0: no limit.")] = defaults.JS_MAX_AGE_HOURS,
    js_max_bytes: Annotated[str, typer.Option(
        "--js-max-bytes", envvar="DSIEM_JS_MAX_BYTES",
        help="Size a created stream keeps (like 500M, 20G); 0: no limit.")] = defaults.JS_MAX_BYTES,
    js_replicas: Annotated[int, typer.Option(
        "--js-replicas", envvar="DSIEM_JS_REPLICAS", min=1, max=5,
        help="Replicas of a created stream (a JetStream cluster).")] = defaults.JS_REPLICAS,
) -> None:
    """Correlate events from NATS, keeping state in SQLite (the Dsiem backend's job)."""
    from dsiem_sql.adapters.nats.connection import NatsUnreachable
    from dsiem_sql.adapters.nats.options import NatsConfigError
    from dsiem_sql.runtime.service import ServiceFailed, run_service

    settings = engine_settings(ctx)
    try:
        options = serve_options(ctx.params)
        run_service(options, settings.engine_options())
    except ServiceFailed:
        raise typer.Exit(1) from None
    except (ConfigError, StoreError, NatsConfigError, NatsUnreachable) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # e.g. the metrics port is taken, the logs directory not writable
        raise fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)) from None


def serve_options(p: dict[str, Any]):
    """The `ServeOptions` of the command's parsed flags; NatsConfigError for NATS options
    that cannot work."""
    from dsiem_sql.adapters.nats.options import NatsOptions, StreamOptions, check_names, parse_size
    from dsiem_sql.runtime.correlator import Batching
    from dsiem_sql.runtime.service import ServeOptions

    def path(value: Path | None) -> str | None:
        return None if value is None else str(value)

    nats = NatsOptions(
        url=p["msq"], token=p["nats_token"], creds=path(p["nats_creds"]),
        tls_ca=path(p["nats_tls_ca"]), tls_cert=path(p["nats_tls_cert"]),
        tls_key=path(p["nats_tls_key"]), reconnect_window=p["nats_reconnect_window"],
    )
    stream = StreamOptions(
        stream=p["js_stream"], max_age=p["js_max_age"] * 3600,
        max_bytes=parse_size("--js-max-bytes", p["js_max_bytes"]), replicas=p["js_replicas"],
    )
    nats.check()
    if p["intake"] == Intake.jetstream:
        check_names(stream, p["node"])
    return ServeOptions(
        node=p["node"], configs=p["configs"], db=p["db"], logs=p["logs"],
        frontend=p["frontend"], frontend_timeout=p["frontend_timeout"],
        max_config_size=p["max_config_size"] * defaults.MB, nats=nats,
        intake=p["intake"].value, jetstream=stream, max_queue=p["max_queue"],
        max_delay=p["max_delay"], hold_duration=p["hold_duration"], max_eps=p["max_eps"],
        batching=Batching(p["commit_interval"]), db_sync=p["db_sync"].value,
        retention_days=p["retention_days"], db_retry_window=p["db_retry_window"],
        metrics_port=p["metrics_port"], metrics_host=p["metrics_host"],
        enable_lifecycle=p["enable_lifecycle"], reload_backlogs=p["reload_backlogs"],
        cache_minutes=p["cache"], intel_private_ip=p["intel_private_ip"],
    )

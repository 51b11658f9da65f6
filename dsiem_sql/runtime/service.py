"""`dsiem-sql serve`: the correlation service, put together (docs/architecture.md).

The service loads the config, opens the store, resumes the engine, opens its intake and runs,
in one `asyncio.TaskGroup`, the worker loop (`runtime/worker.py`) with the reloader, the
overload signal, the watchdog and the NATS connection's watch beside it. An unexpected error
in any of them stops the service at once, with an ERROR naming the cause, and
`ServiceFailed` for a non-zero exit.

The intake is a plug-in (`runtime/intake.py`): `serve` builds a core NATS or a JetStream one
(`open_intake`); the tests give a `MemoryIntake` and a fake clock, and drive the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsiem_sql import defaults
from dsiem_sql.adapters.http.frontend import download_config
from dsiem_sql.adapters.http.metrics import Metrics
from dsiem_sql.adapters.http.server import HttpEndpoints
from dsiem_sql.adapters.nats.connection import Connection, NatsUnreachable
from dsiem_sql.adapters.nats.core import CoreIntake
from dsiem_sql.adapters.nats.jetstream import JetStreamIntake
from dsiem_sql.adapters.nats.options import NatsOptions, StreamOptions
from dsiem_sql.config import load_config
from dsiem_sql.engine import CompiledConfig, Engine, EngineOptions, Reloaded
from dsiem_sql.engine.engine import wall_clock
from dsiem_sql.engine.suppressions import Suppressions
from dsiem_sql.enrichment.enricher import Enricher, checkers
from dsiem_sql.enrichment.lookups import Lookups
from dsiem_sql.legacy.importer import import_saved_backlogs
from dsiem_sql.runtime.aio import first_cause, settle_memory
from dsiem_sql.runtime.correlator import Batching, Correlator
from dsiem_sql.runtime.intake import Intake
from dsiem_sql.runtime.logs import log_loop_errors
from dsiem_sql.runtime.overload import Overload
from dsiem_sql.runtime.reload import Reloader, ReloadResult, Sources, describe, record
from dsiem_sql.runtime.requests import Requests
from dsiem_sql.runtime.watchdog import Watchdog
from dsiem_sql.runtime.worker import DAY, Counters, Timing, Worker
from dsiem_sql.store.errors import StoreError
from dsiem_sql.store.store import Store
from dsiem_sql.store.suppressions import NewSuppression

log = logging.getLogger(__name__)

STALLED = 10.0  # seconds without a turn of the worker's loop: it is stuck


class ServiceFailed(Exception):
    """The service stopped on a fault; the cause is already logged as an ERROR."""


@dataclass(frozen=True)
class ServeOptions:
    node: str
    configs: Path = defaults.NODE_CONFIGS
    db: Path = defaults.DB
    logs: Path = defaults.LOGS
    frontend: str | None = None
    frontend_timeout: float = defaults.FRONTEND_TIMEOUT
    max_config_size: int = defaults.MAX_CONFIG_SIZE_MB * defaults.MB  # bytes
    nats: NatsOptions = field(default_factory=NatsOptions)
    intake: str = defaults.INTAKE  # or "jetstream"
    jetstream: StreamOptions = field(default_factory=StreamOptions)
    max_queue: int = defaults.MAX_QUEUE
    max_delay: int = defaults.MAX_DELAY
    hold_duration: int = defaults.HOLD_DURATION
    max_eps: int = defaults.MAX_EPS
    batching: Batching = field(default_factory=Batching)
    db_sync: str = defaults.DB_SYNC
    retention_days: int = defaults.RETENTION_DAYS
    metrics_port: int | None = None
    metrics_host: str = defaults.METRICS_HOST
    enable_lifecycle: bool = False  # POST /-/reload
    reload_backlogs: bool = True
    cache_minutes: int = defaults.CACHE_MINUTES
    intel_private_ip: bool = False
    expiry_interval: float = defaults.EXPIRY_INTERVAL
    watchdog_interval: float = defaults.WATCHDOG_INTERVAL
    db_retry_window: float = defaults.DB_RETRY_WINDOW


def open_intake(options: ServeOptions) -> tuple[Intake, Connection]:
    """The intake that `options.intake` names, on a new NATS connection."""
    connection = Connection(options.nats)
    if options.intake == "jetstream":
        return JetStreamIntake(connection, options.jetstream, options.node), connection
    return CoreIntake(connection, options.max_queue), connection


class Service:
    def __init__(
        self,
        options: ServeOptions,
        engine_options: EngineOptions,
        intake: Intake,
        connection: Connection | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        send_overload: Callable[[bool], Awaitable[None]] | None = None,
    ):
        """`connection`: the NATS connection that `intake` reads from, started before it
        and watched (None: the intake needs none, as in tests). The overload signal goes
        out with `send_overload`, by default on the connection."""
        self.options = options
        self.engine_options = engine_options
        self.intake = intake
        self.connection = connection
        self.monotonic = monotonic
        self.send_overload = send_overload or (
            connection.publish_overload if connection is not None else _nowhere)
        self.counters = Counters()
        self.metrics = Metrics(
            self._live, lambda: self.engine.stats.suppressed if self.engine else {})
        self.reloader = Reloader(Sources(options.configs, options.node, options.frontend,
                                         options.frontend_timeout, options.max_config_size))
        self.requests = Requests(options.db, self._request)
        self.ready = False
        self.engine: Engine | None = None
        self.store: Store | None = None
        self.worker: Worker | None = None
        self.working: asyncio.Task[None] | None = None

    def healthy(self) -> bool:
        """Whether the service can make progress now: connected to NATS, the worker running
        and going round, commits succeeding."""
        return (
            self.ready
            and (self.connection is None or self.connection.connected)
            and self.worker is not None
            and self.working is not None
            and not self.working.done()
            and self.monotonic() - self.worker.turned < STALLED
            and self.store is not None
            and not self.store.failing
        )

    def _live(self) -> dict[str, float]:
        """The values the metrics show."""
        return {
            "received": self.intake.received,
            "invalid": self.counters.invalid,
            "dropped": self.intake.dropped,
            "processed": self.counters.processed,
            "alarms": self.counters.alarm_lines,
            "commit_retries": self.store.retries if self.store else 0,
            "queue_length": len(self.intake),
            "backlogs": len(self.engine.backlogs) if self.engine else 0,
            "last_commit": self.store.last_commit if self.store else 0.0,
            "reloads_success": self.reloader.succeeded,
            "reloads_failure": self.reloader.failed,
            "last_reload_successful": int(self.reloader.last_ok),
            **self.intake.values(),
        }

    async def run(self, stop: asyncio.Event) -> None:
        o = self.options
        started, clock = time.time(), time.perf_counter()
        downloaded = ""
        if o.frontend:
            count = await download_config(
                o.frontend, o.node, o.configs, deadline=o.frontend_timeout,
                max_file_size=o.max_config_size, stop=stop,
            )
            if count is None:
                return
            log.info("downloaded %d config files from %s", count, o.frontend)
            downloaded = f"downloaded {count} files from {o.frontend}; "
        config = load_config(o.configs)
        engine = self.engine = Engine(config, self.engine_options, clock=self.intake.clock)
        loaded = ReloadResult(True, downloaded + describe(o.configs, config))
        store = self.store = Store(o.db, o.logs, o.db_sync,  # type: ignore[arg-type]
                                   retry_window=o.db_retry_window, role="serve")
        await store.open()
        endpoints = None
        failed = False
        try:
            await store.record_reload(record(started, time.perf_counter() - clock, "start",
                                             o.configs, loaded, config))
            resumed = await store.resume(engine.directive, self.intake.source,
                                         with_backlogs=o.reload_backlogs)
            engine.resume(resumed.backlogs, resumed.next_seq)
            engine.suppressions = Suppressions(await store.suppressions())
            if engine.suppressions:
                log.info("%d suppressions in force", len(engine.suppressions))
            if o.reload_backlogs:
                log.info("resumed %d live backlogs from %s", len(resumed.backlogs), o.db)
            else:
                log.warning("--no-reload-backlogs: the live backlogs in %s are not resumed", o.db)
            await import_saved_backlogs(o.logs / "backlogs", engine, store)
            await store.prune(wall_clock() - o.retention_days * DAY)
            if o.metrics_port is not None:
                endpoints = HttpEndpoints(
                    self.metrics, self.healthy,
                    self.reloader.reload if o.enable_lifecycle else None)
                await endpoints.start(o.metrics_host, o.metrics_port)
            settle_memory()
            if self.connection is not None and not await self.connection.start(stop):
                return
            if not await self.intake.open(resumed, stop):
                return
            enricher = Enricher(
                checkers(config.intel, config.vuln),
                cache_minutes=o.cache_minutes,
                private_ips=o.intel_private_ip,
            )
            async with enricher:
                await self._serve(engine, store, enricher, endpoints, stop)
        except ServiceFailed:
            failed = True
            raise
        finally:
            self.ready = False
            await store.close(abort=failed)
            if self.connection is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.connection.close(), 1 if failed else None)
            if endpoints is not None:
                await endpoints.stop()
        log.info("stopped: %d events processed", self.counters.processed)

    async def _serve(self, engine: Engine, store: Store, enricher: Enricher,
                     endpoints: HttpEndpoints | None, stop: asyncio.Event) -> None:
        """Correlate until `stop`; then drain the intake and the lookups, and commit. A task
        that fails stops the others and the service (`ServiceFailed`)."""
        o = self.options
        overload = Overload(self.send_overload, o.hold_duration, lambda: store.failing,
                            self.monotonic)
        watchdog = Watchdog(self.intake, self.counters, engine, o.watchdog_interval, o.max_eps)
        try:
            async with asyncio.TaskGroup() as tasks:
                correlator = Correlator(engine, store, batching=o.batching,
                                        lookups=Lookups(enricher, tasks), tasks=tasks,
                                        monotonic=self.monotonic)
                worker = self.worker = Worker(
                    self.intake, correlator, store=store, reloader=self.reloader,
                    overload=overload, counters=self.counters,
                    on_commit=self.metrics.commit_seconds.observe, monotonic=self.monotonic,
                    timing=Timing(o.expiry_interval, o.retention_days, o.max_delay),
                )
                watches = {"overload": overload.run(), "watchdog": watchdog.run()}
                if self.connection is not None:
                    watches["nats"] = self.connection.watch()
                if endpoints is not None:
                    watches["http"] = endpoints.watch()
                watches["requests"] = self.requests.run()
                helpers = [tasks.create_task(job, name=name) for name, job in watches.items()]

                def take(compiled: CompiledConfig) -> Reloaded:  # on the worker's task
                    enricher.use(checkers(compiled.config.intel, compiled.config.vuln))
                    return engine.reload(compiled)

                reloading = tasks.create_task(
                    self.reloader.run(store, take, self.intake.wake), name="reloader")
                self.working = tasks.create_task(worker.run(), name="worker")
                self.ready = True
                await _first(stop.wait(), self.working)
                log.info("stopping: no new events, draining %d queued", len(self.intake))
                self.ready = False
                await self.intake.stop()
                await self.working
                await self.intake.close()
                self.reloader.stop()
                await reloading
                for task in helpers:
                    task.cancel()
        except Exception as failure:  # the TaskGroup's ExceptionGroup
            cause = first_cause(failure)
            log.error("stopping on a fault: %s", _describe(cause),
                      exc_info=None if isinstance(cause, StoreError | NatsUnreachable) else cause)
            raise ServiceFailed(_describe(cause)) from None


    async def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        """A change asked by another command (`dsiem-sql suppress`): made in the database,
        then in the engine, between two events of the worker."""
        engine, store = self.engine, self.store
        if engine is None or store is None or not self.ready:
            return {"ok": False, "error": "serve is not running yet (or any more)"}
        try:
            if request.get("op") == "add":
                new = NewSuppression(**request["suppression"])
                if new.directive_id is not None and engine.directive(new.directive_id) is None:
                    return {"ok": False, "error": f"--directive {new.directive_id}: no such "
                                                  f"directive in the config serve runs"}
                suppression_id = await store.add_suppression(new, engine.clock())
                engine.suppressions.add(new.suppression(suppression_id))
                log.info("suppression %d added: %s, %s", suppression_id, new.scope(),
                         new.reason)
                return {"ok": True, "id": suppression_id}
            if request.get("op") == "remove":
                suppression_id = int(request["id"])
                if not await store.remove_suppression(suppression_id, engine.clock()):
                    return {"ok": False, "error": f"no suppression {suppression_id} in force"}
                engine.suppressions.remove(suppression_id)
                log.info("suppression %d removed", suppression_id)
                return {"ok": True}
        except (KeyError, TypeError, ValueError) as exc:
            return {"ok": False, "error": f"a malformed request: {exc!r}"}
        return {"ok": False, "error": f"unknown request {request.get('op')!r}"}


async def _first(*waits: Awaitable[object]) -> None:
    """Until the first of `waits` is done (the others are cancelled if not tasks)."""
    futures = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f, w in zip(futures, waits, strict=True):
            if f is not w:
                f.cancel()


async def _nowhere(overloaded: bool) -> None:
    """No connection to send the overload signal on."""


def run_service(options: ServeOptions, engine_options: EngineOptions) -> None:
    """Run until SIGTERM or SIGINT; then drain, commit and return. SIGHUP reloads the config
    (Dsiem's backends stop on it). Raises `ServiceFailed` when a fault stopped the service."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        log_loop_errors(loop)  # an error that repeats is logged once, then counted
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        intake, connection = open_intake(options)
        service = Service(options, engine_options, intake, connection)
        loop.add_signal_handler(signal.SIGHUP, service.reloader.on_sighup)
        loop.add_signal_handler(signal.SIGUSR1, service.requests.on_signal)
        await service.run(stop)

    asyncio.run(main())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StoreError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

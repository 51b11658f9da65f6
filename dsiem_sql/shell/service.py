"""`dsiem-sql serve`: the NATS correlation service (SPEC §1, §9).

NATS callbacks only enqueue. One task, the worker, takes events from the intake queue in
arrival order and drives the `Correlator`: expiry on the wall clock every 10 s, and group
commits to the single database writer. The overload signal and the watchdog run beside it.

The service's tasks (and each write and lookup) run in one `asyncio.TaskGroup`: an
unexpected error in any of them stops the service at once, with an ERROR naming the cause
and `ServiceFailed` for a non-zero exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dsiem_sql.config import load_config
from dsiem_sql.engine import (
    Changes,
    CompiledConfig,
    Engine,
    EngineOptions,
    Event,
    InvalidEvent,
    Reloaded,
    decode_event,
)
from dsiem_sql.engine.engine import wall_clock
from dsiem_sql.enrichment.enricher import Enricher, checkers
from dsiem_sql.enrichment.lookups import Lookups
from dsiem_sql.shell.aio import first_cause, settle_memory
from dsiem_sql.shell.bus import Bus, NatsOptions, StreamOptions
from dsiem_sql.shell.correlator import Batching, Correlator
from dsiem_sql.shell.download import download_config
from dsiem_sql.shell.intake import Intake
from dsiem_sql.shell.logs import RateLimitedLog
from dsiem_sql.shell.metrics import Metrics, serve_metrics
from dsiem_sql.shell.overload import Overload
from dsiem_sql.shell.reload import Reloader, ReloadResult, Sources, describe, record
from dsiem_sql.shell.watchdog import Counters, Queue, Watchdog
from dsiem_sql.store.errors import StoreError

if TYPE_CHECKING:
    from dsiem_sql.store.resume import Resumed
    from dsiem_sql.store.store import Store

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 256 * 1024
TAKE = 256  # events handled between two yields to the event loop
DAY = 86400
STALLED = 10.0  # seconds without a turn of the worker's loop: it is stuck


class ServiceFailed(Exception):
    """The service stopped on a fault; the cause is already logged as an ERROR."""


@dataclass(frozen=True)
class ServeOptions:
    node: str
    configs: Path = Path("configs")
    db: Path = Path("dsiem.db")
    logs: Path = Path("logs")
    frontend: str | None = None
    frontend_timeout: float = 60.0
    max_config_size: int = 64 * 2**20  # bytes
    nats: NatsOptions = field(default_factory=NatsOptions)
    intake: str = "core"  # or "jetstream" (shell/jetstream.py)
    jetstream: StreamOptions = field(default_factory=StreamOptions)
    max_queue: int = 25000
    max_delay: int = 180
    hold_duration: int = 10
    max_eps: int = 1000
    batching: Batching = field(default_factory=Batching)
    db_sync: str = "normal"
    retention_days: int = 7
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    reload_backlogs: bool = True
    cache_minutes: int = 10
    intel_private_ip: bool = False
    expiry_interval: float = 10.0
    watchdog_interval: float = 10.0
    db_retry_window: float = 60.0


class Service:
    def __init__(self, options: ServeOptions, engine_options: EngineOptions,
                 monotonic: Callable[[], float] = time.monotonic):
        self.options = options
        self.engine_options = engine_options
        self.monotonic = monotonic
        self.intake = Intake(options.max_queue)
        self.counters = Counters()
        self.invalid_log = RateLimitedLog(log, "invalid events")
        self.metrics = Metrics(self._live)
        self.reloader = Reloader(Sources(options.configs, options.node, options.frontend,
                                         options.frontend_timeout, options.max_config_size))
        self.ready = False
        self.engine: Engine | None = None
        self.bus: Bus | None = None
        self.store: Store | None = None
        self.worker: asyncio.Task[None] | None = None
        self.turned = 0.0  # when the worker last went round its loop
        self.source: str | None = None  # the input_progress row the commits keep

    def healthy(self) -> bool:
        """Whether the service can make progress now: subscribed and connected to NATS, the
        worker running and going round, commits succeeding."""
        return (
            self.ready
            and self.bus is not None
            and self.bus.connected
            and self.worker is not None
            and not self.worker.done()
            and self.monotonic() - self.turned < STALLED
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
            "queue_length": len(self.queue),
            "backlogs": len(self.engine.backlogs) if self.engine else 0,
            "last_commit": self.store.last_commit if self.store else 0.0,
            "reloads_success": self.reloader.succeeded,
            "reloads_failure": self.reloader.failed,
            "last_reload_successful": int(self.reloader.last_ok),
        }

    async def run(self, stop: asyncio.Event) -> None:
        from dsiem_sql.store.store import Store

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
        engine = self.engine = Engine(config, self.engine_options, clock=self._engine_clock())
        loaded = ReloadResult(True, downloaded + describe(o.configs, config))
        store = Store(o.db, o.logs, o.db_sync, retry_window=o.db_retry_window,  # type: ignore[arg-type]
                      role="serve")
        await store.open()
        self.store = store
        metrics_server = None
        bus = self.bus = self._bus()
        failed = False
        try:
            await store.record_reload(record(started, time.perf_counter() - clock, "start",
                                             o.configs, loaded, config))
            resumed = await store.resume(engine.directive, self.source,
                                         with_backlogs=o.reload_backlogs)
            engine.resume(resumed.backlogs, resumed.next_seq)
            self._resumed(resumed)
            if o.reload_backlogs:
                log.info("resumed %d live backlogs from %s", len(resumed.backlogs), o.db)
            else:
                log.warning("--no-reload-backlogs: the live backlogs in %s are not resumed", o.db)
            await self._import_legacy(engine, store)
            await store.prune(wall_clock() - o.retention_days * DAY)
            if o.metrics_port is not None:
                metrics_server = await serve_metrics(
                    self.metrics, o.metrics_host, o.metrics_port, self.healthy,
                    self.reloader.reload,
                )
            settle_memory()
            if not await bus.start(stop) or not await self._open_intake(stop):
                return
            enricher = Enricher(
                checkers(config.intel, config.vuln),
                cache_minutes=o.cache_minutes,
                private_ips=o.intel_private_ip,
            )
            async with enricher:
                await self._serve(engine, store, bus, enricher, stop)
        except ServiceFailed:
            failed = True
            raise
        finally:
            self.ready = False
            await store.close(abort=failed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bus.close(), 1 if failed else None)
            if metrics_server is not None:
                metrics_server.close()
        log.info("stopped: %d events processed", self.counters.processed)

    async def _serve(self, engine: Engine, store: Store, bus: Bus, enricher: Enricher,
                     stop: asyncio.Event) -> None:
        """Correlate until `stop`; then drain the queue and the lookups, and commit. A task
        that fails stops the others and the service (`ServiceFailed`)."""
        o = self.options
        overload = Overload(bus.publish_overload, o.hold_duration, lambda: store.failing,
                            self.monotonic)
        watchdog = Watchdog(self.queue, self.counters, engine, o.watchdog_interval, o.max_eps)
        try:
            async with asyncio.TaskGroup() as tasks:
                correlator = Correlator(
                    engine, store, batching=o.batching, lookups=Lookups(enricher, tasks),
                    tasks=tasks, monotonic=self.monotonic, on_commit=self._committed,
                )
                helpers = [
                    tasks.create_task(overload.run(), name="overload"),
                    tasks.create_task(watchdog.run(), name="watchdog"),
                ]

                def take(compiled: CompiledConfig) -> Reloaded:  # on the worker's task
                    enricher.use(checkers(compiled.config.intel, compiled.config.vuln))
                    return engine.reload(compiled)

                reloading = tasks.create_task(
                    self.reloader.run(store, take, self.queue.wake), name="reloader")
                self.turned = self.monotonic()
                self.worker = tasks.create_task(self._work(correlator, overload), name="worker")
                self.ready = True
                await stop.wait()
                log.info("stopping: no new events, draining %d queued", len(self.queue))
                self.ready = False
                await self._stop_intake()
                await self.worker
                self.reloader.stop()
                await reloading
                for task in helpers:
                    task.cancel()
        except Exception as failure:  # the TaskGroup's ExceptionGroup
            cause = first_cause(failure)
            log.error("stopping on a fault: %s", _describe(cause),
                      exc_info=None if isinstance(cause, StoreError) else cause)
            raise ServiceFailed(_describe(cause)) from None

    # -- what another intake changes (shell/jetstream.py) -------------------------------------

    def _engine_clock(self) -> Callable[[], int]:
        return wall_clock

    def _bus(self) -> Bus:
        return Bus(self.options.nats, self.intake.put)

    def _resumed(self, resumed: Resumed) -> None:
        """The stored state is read (the engine has its backlogs)."""

    async def _open_intake(self, stop: asyncio.Event) -> bool:
        """Connected to NATS: start taking events; False if `stop` came first."""
        return True

    async def _stop_intake(self) -> None:
        """Take no new events; those received can still be taken."""
        assert self.bus is not None
        await self.bus.stop_intake()
        self.intake.close()

    @property
    def queue(self) -> Queue:
        """The events received and not taken yet, for the watchdog and the metrics."""
        return self.intake

    def _committed(self, seconds: float, changes: Changes) -> None:
        self.metrics.commit_seconds.observe(seconds)
        self.counters.alarm_lines += len(changes.alarms)

    async def _import_legacy(self, engine: Engine, store) -> None:
        """A swapped-in legacy deployment: import `<logs>/backlogs/*.json`, remove what was
        fully imported (SPEC §11.3)."""
        from dsiem_sql.legacy.importer import backlog_files, import_files

        directory = self.options.logs / "backlogs"
        files = backlog_files([directory]) if directory.is_dir() else []
        for r in await import_files(files, engine, store, remove=True, restore=True):
            if r.error:
                log.error("cannot import saved backlogs from %s: %s", r.path, r.error)
            else:
                log.info(
                    "imported %d saved backlogs from %s (%d already present, %d skipped)",
                    r.imported, r.path, r.present, sum(r.skipped.values()),
                )

    async def _work(self, correlator: Correlator, overload: Overload) -> None:
        o = self.options
        store = self.store
        assert store is not None
        correlator.expire()  # backlogs whose deadline passed while the service was down
        now = self.monotonic()
        next_expiry, next_prune = now + o.expiry_interval, now + 3600
        while True:
            now = self.turned = self.monotonic()
            # at least once a second: rate-limited warnings, health
            await self.intake.wait(min(next_expiry - now, correlator.seconds_to_due(1.0)))
            started = time.perf_counter()
            for payload in self.intake.take(TAKE):
                event = self._decode(payload)
                if event is not None:
                    if correlator.feed(event) and self._late(event):
                        overload.signal()
                    self.counters.processed += 1
            self.counters.proc_seconds += time.perf_counter() - started
            self.reloader.take_pending()  # a reloaded config, between two events
            now = self.monotonic()
            if now >= next_expiry:
                correlator.expire()
                next_expiry = now + o.expiry_interval
                if await store.checkpoint():
                    log.info("%s: the WAL, grown while a reader held it, is truncated", o.db)
            if self.intake.closed and not len(self.intake):
                await correlator.finish()
                self.invalid_log.flush(force=True)
                return
            if correlator.due():
                await correlator.commit()
            if now >= next_prune:
                await store.prune(wall_clock() - o.retention_days * DAY)
                next_prune = now + 3600
            self.invalid_log.flush()
            await asyncio.sleep(0)  # let NATS hand over more events

    def _late(self, event: Event) -> bool:
        """Older than --max_delay when it reached its backlog (SPEC §9.4)."""
        max_delay = self.options.max_delay
        return bool(max_delay) and time.time_ns() - event.rcvd_time > max_delay * 1_000_000_000

    def _decode(self, payload: bytes) -> Event | None:
        try:
            if len(payload) > MAX_EVENT_BYTES:
                raise InvalidEvent(f"event of {len(payload)} bytes is larger than the limit")
            return decode_event(payload)
        except InvalidEvent as exc:
            self.counters.invalid += 1
            self.invalid_log.warning("%s, skipping it", exc)
            return None


def run_service(options: ServeOptions, engine_options: EngineOptions) -> None:
    """Run until SIGTERM or SIGINT; then drain, commit and return. SIGHUP reloads the config
    (Dsiem's backends stop on it). Raises `ServiceFailed` when a fault stopped the service."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        service_class = Service
        if options.intake == "jetstream":
            from dsiem_sql.shell.jetstream import StreamService as service_class
        service = service_class(options, engine_options)
        loop.add_signal_handler(signal.SIGHUP, service.reloader.on_sighup)
        await service.run(stop)

    asyncio.run(main())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StoreError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

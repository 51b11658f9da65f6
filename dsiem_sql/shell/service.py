"""`dsiem-sql serve`: the NATS correlation service (SPEC §1, §9).

One task runs the engine: it takes events from the intake queue in arrival order, runs
expiry on the wall clock every 10 s, and hands changes to the single database writer in
group commits. NATS callbacks only enqueue.

The service's tasks run in one `asyncio.TaskGroup`: an unexpected error in any of them stops
the service at once, with an ERROR naming the cause and `ServiceFailed` for a non-zero exit.
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

from dsiem_sql.config import load_config
from dsiem_sql.engine import Changes, Engine, EngineOptions, InvalidEvent, decode_event
from dsiem_sql.engine.engine import wall_clock
from dsiem_sql.enrichment.enricher import Enricher, checkers
from dsiem_sql.enrichment.lookups import Lookups
from dsiem_sql.shell.bus import Bus, NatsOptions
from dsiem_sql.shell.download import download_config
from dsiem_sql.shell.intake import Intake
from dsiem_sql.shell.logs import RateLimitedLog
from dsiem_sql.shell.metrics import Metrics, serve_metrics
from dsiem_sql.shell.replay import Batching
from dsiem_sql.store.errors import StoreError

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


class Overload:
    """SPEC §9.4: `true` on the first pressure signal, `false` `hold` seconds after the last.
    While `pressure()` holds (commits failing), the signal stays on."""

    def __init__(self, bus: Bus, hold: float, pressure: Callable[[], bool] = lambda: False):
        self.bus, self.hold, self.pressure = bus, hold, pressure
        self.active = False
        self.until = 0.0
        self._raised = asyncio.Event()

    def signal(self) -> None:
        self.until = time.monotonic() + self.hold
        if not self.active:
            self._raised.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._raised.wait(), min(self.hold, 1.0) / 4)
            self._raised.clear()
            now = time.monotonic()
            if self.pressure():
                self.until = now + self.hold
            if not self.active and now < self.until:
                self.active = True
                await self._send(True)
            elif self.active and now >= self.until:
                self.active = False
                await self._send(False)

    async def _send(self, value: bool) -> None:
        try:
            await self.bus.publish_overload(value)
            log.info("overload = %s signal sent to frontend", str(value).lower())
        except Exception as exc:
            log.warning("cannot send the overload signal: %s", exc)


class Service:
    def __init__(self, options: ServeOptions, engine_options: EngineOptions):
        self.options = options
        self.engine_options = engine_options
        self.metrics = Metrics()
        self.intake = Intake(options.max_queue)
        self.invalid = 0
        self.invalid_log = RateLimitedLog(log, "invalid events")
        self.processed = 0
        self.proc_seconds = 0.0
        self.ready = False
        self._synced = {"received": 0, "dropped": 0, "processed": 0, "retries": 0}
        self.lookups = Lookups(None)
        self.bus: Bus | None = None
        self.store = None
        self.worker: asyncio.Task[None] | None = None
        self.turned = 0.0  # monotonic time the worker last went round its loop

    def healthy(self) -> bool:
        """Whether the service can make progress now: subscribed and connected to NATS, the
        worker running and going round, commits succeeding."""
        return (
            self.ready
            and self.bus is not None
            and self.bus.connected
            and self.worker is not None
            and not self.worker.done()
            and time.monotonic() - self.turned < STALLED
            and self.store is not None
            and not self.store.failing
        )

    async def run(self, stop: asyncio.Event) -> None:
        from dsiem_sql.store.store import Store

        o = self.options
        if o.frontend:
            count = await download_config(
                o.frontend, o.node, o.configs, deadline=o.frontend_timeout,
                max_file_size=o.max_config_size, stop=stop,
            )
            if count is None:
                return
            log.info("downloaded %d config files from %s", count, o.frontend)
        config = load_config(o.configs)
        engine = Engine(config, self.engine_options, clock=wall_clock)
        store = Store(o.db, o.logs, o.db_sync, retry_window=o.db_retry_window)  # type: ignore[arg-type]
        await store.open()
        self.store = store
        self.metrics.last_commit.set_function(lambda: store.last_commit)
        metrics_server = None
        bus = self.bus = Bus(o.nats, self.intake.put)
        failed = False
        try:
            resumed = await store.load(engine, with_backlogs=o.reload_backlogs)
            if o.reload_backlogs:
                log.info("resumed %d live backlogs from %s", resumed.backlogs, o.db)
            else:
                log.warning("--no-reload-backlogs: the live backlogs in %s are not resumed", o.db)
            await self._import_legacy(engine, store)
            await store.prune(wall_clock() - o.retention_days * DAY)
            if o.metrics_port is not None:
                metrics_server = await serve_metrics(
                    self.metrics, o.metrics_host, o.metrics_port, self.healthy
                )
            if not await bus.start(stop):
                return
            enricher = Enricher(
                checkers(config.intel, config.vuln),
                cache_minutes=o.cache_minutes,
                private_ips=o.intel_private_ip,
            )
            async with enricher:
                self.lookups = Lookups(enricher)
                await self._serve(engine, store, bus, stop)
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
        log.info("stopped: %d events processed", self.processed)

    async def _serve(self, engine: Engine, store, bus: Bus, stop: asyncio.Event) -> None:
        """Correlate until `stop`; then drain the queue and the lookups, and commit. A task
        that fails stops the others and the service (`ServiceFailed`)."""
        overload = Overload(bus, self.options.hold_duration, lambda: store.failing)
        try:
            async with asyncio.TaskGroup() as tasks:
                helpers = [
                    tasks.create_task(overload.run(), name="overload"),
                    tasks.create_task(self._watchdog(engine), name="watchdog"),
                ]
                self.turned = time.monotonic()
                self.worker = tasks.create_task(self._work(engine, store, overload),
                                                name="worker")
                self.ready = True
                await stop.wait()
                log.info("stopping: no new events, draining %d queued", len(self.intake))
                self.ready = False
                await bus.stop_intake()
                self.intake.close()
                await self.worker
                for task in helpers:
                    task.cancel()
        except Exception as failure:  # the TaskGroup's ExceptionGroup
            cause = _first_cause(failure)
            log.error("stopping on a fault: %s", _describe(cause),
                      exc_info=None if isinstance(cause, StoreError) else cause)
            raise ServiceFailed(_describe(cause)) from None

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

    async def _work(self, engine: Engine, store, overload: Overload) -> None:
        o = self.options
        batch = engine.expire()  # backlogs whose deadline passed while the service was down
        interval = o.batching.interval_ms / 1000
        last_commit = time.monotonic()
        next_expiry = last_commit + o.expiry_interval
        next_prune = last_commit + 3600
        max_delay_ns = o.max_delay * 1_000_000_000
        while True:
            now = self.turned = time.monotonic()
            # at least once a second: rate-limited warnings, health and writer faults
            deadline = min(next_expiry, last_commit + interval if batch else now + 1.0)
            if self.lookups.pending or self.lookups.done or store.writing:
                deadline = min(deadline, now + interval)  # pick up their outcome soon
            await self.intake.wait(max(0.0, deadline - now))
            if not store.writing:
                await store.flush()  # raises the error of a write that failed
            started = time.perf_counter()
            for payload in self.intake.take(TAKE):
                event = self._decode(payload)
                if event is None:
                    continue
                links = len(batch.links)
                engine.process(event, into=batch)
                if (
                    max_delay_ns
                    and len(batch.links) > links
                    and time.time_ns() - event.rcvd_time > max_delay_ns
                ):
                    overload.signal()
                self.processed += 1
            self.proc_seconds += time.perf_counter() - started
            now = time.monotonic()
            if now >= next_expiry:
                engine.expire(into=batch)
                next_expiry = now + o.expiry_interval
                if await store.checkpoint():
                    log.info("%s: the WAL, grown while a reader held it, is truncated", o.db)
            drained = self.intake.closed and not len(self.intake)
            if drained:  # nothing is lost at the end: wait for the lookups in flight
                self.lookups.start(batch)
                await self.lookups.drain()
            self.lookups.apply(engine, into=batch)
            if batch and (
                drained
                or now - last_commit >= interval
                or len(batch.links) + len(batch.backlogs) >= o.batching.changes
            ):
                await self._commit(store, engine, batch)
                batch = Changes()
                last_commit = time.monotonic()
            elif not batch:
                last_commit = now
            if now >= next_prune:
                await store.prune(wall_clock() - o.retention_days * DAY)
                next_prune = now + 3600
            self.invalid_log.flush(force=drained)
            if drained:
                return
            await asyncio.sleep(0)  # let NATS hand over more events

    def _decode(self, payload: bytes):
        try:
            if len(payload) > MAX_EVENT_BYTES:
                raise InvalidEvent(f"event of {len(payload)} bytes is larger than the limit")
            return decode_event(payload)
        except InvalidEvent as exc:
            self.invalid += 1
            self.metrics.invalid.inc()
            self.invalid_log.warning("%s, skipping it", exc)
            return None

    async def _commit(self, store, engine: Engine, batch: Changes) -> None:
        self.lookups.start(batch)
        started = time.perf_counter()
        await store.commit(batch, engine, engine.clock())
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self.metrics.alarms.inc(len(batch.alarms))
        self._sync_metrics(engine)

    def _sync_metrics(self, engine: Engine) -> None:
        m, synced = self.metrics, self._synced
        now = {"received": self.intake.received, "dropped": self.intake.dropped,
               "processed": self.processed, "retries": self.store.retries if self.store else 0}
        m.received.inc(now["received"] - synced["received"])
        m.dropped.inc(now["dropped"] - synced["dropped"])
        m.processed.inc(now["processed"] - synced["processed"])
        m.commit_retries.inc(now["retries"] - synced["retries"])
        m.queue_length.set(len(self.intake))
        m.backlogs.set(len(engine.backlogs))
        self._synced = now

    async def _watchdog(self, engine: Engine) -> None:
        """SPEC §9.6: a `watchdog report` every 10 s, with [R]'s field names."""
        o = self.options
        seen = {"received": 0, "processed": 0, "matched": 0, "dropped": 0, "seconds": 0.0}
        while True:
            await asyncio.sleep(o.watchdog_interval)
            self._sync_metrics(engine)
            received, dropped = self.intake.received, self.intake.dropped
            matched, seconds = engine.stats.matched, self.proc_seconds
            processed = self.processed
            done = processed - seen["processed"]
            avg_ms = 1000 * (seconds - seen["seconds"]) / done if done else 0.0
            fields = {
                "eps": round(done / o.watchdog_interval, 2),
                "queue_length": len(self.intake),
                "avg_proc_time_ms": round(avg_ms, 3),
                "directives_ttl": len(engine.directives),
                "directives_active": sum(1 for d in engine.directives if d.backlogs),
                "backlogs": len(engine.backlogs),
                "events_rcvd": received - seen["received"],
                "events_matched": matched - seen["matched"],
                "events_dropped": dropped - seen["dropped"],
                "events_invalid": self.invalid,
            }
            log.info("watchdog report", extra={"fields": fields})
            if len(self.intake) and o.max_eps and avg_ms > 1000 / o.max_eps:
                log.warning(
                    "avg. processing time maybe too long to sustain the target %d event/sec "
                    "(or %.3f ms/event)", o.max_eps, 1000 / o.max_eps,
                )
            seen.update(received=received, processed=processed, matched=matched,
                        dropped=dropped, seconds=seconds)


def run_service(options: ServeOptions, engine_options: EngineOptions) -> None:
    """Run until SIGTERM, SIGINT or SIGHUP; then drain, commit and return. Raises
    `ServiceFailed` when a fault stopped the service."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        await Service(options, engine_options).run(stop)

    asyncio.run(main())


def _first_cause(group: BaseException) -> BaseException:
    while isinstance(group, BaseExceptionGroup):  # the first task that failed
        group = group.exceptions[0]
    return group


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StoreError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

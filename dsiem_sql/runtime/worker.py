"""The worker loop: the one task that takes events from an intake, in order, and drives the
correlator with them. `serve` runs it with a NATS intake, `replay` with a file intake, the
tests with a memory one; the loop is the same.

Each turn: wait for events (at most until the next expiry tick or commit), take up to `TAKE`,
decode and correlate each, apply a reloaded config between two events, expire on the wall
clock's tick (as the intake says), commit when the policy says so, with the intake's position,
and prune ended backlogs once an hour. Once the intake is closed and empty: commit the rest
and return. A commit written is passed on to the intake (`committed`), which acknowledges the
events it holds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dsiem_sql import defaults
from dsiem_sql.engine import Changes, Event, InvalidEvent, decode_event
from dsiem_sql.engine.engine import wall_clock
from dsiem_sql.runtime.correlator import Correlator, EventClock
from dsiem_sql.runtime.intake import Intake, Item, Progress
from dsiem_sql.runtime.logs import RateLimitedLog

if TYPE_CHECKING:
    from dsiem_sql.runtime.overload import Overload
    from dsiem_sql.runtime.reload import Reloader
    from dsiem_sql.store.store import Store

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 256 * 1024
TAKE = 256  # events handled between two yields to the event loop
DAY = 86400
PRUNE_INTERVAL = 3600.0  # seconds


@dataclass
class Counters:
    """What the worker counts; read live by the watchdog and the metrics."""

    processed: int = 0
    invalid: int = 0
    proc_seconds: float = 0.0  # spent correlating
    alarm_lines: int = 0  # committed


@dataclass(frozen=True)
class Timing:
    expiry_interval: float = defaults.EXPIRY_INTERVAL  # seconds between two wall-clock ticks
    retention_days: int = defaults.RETENTION_DAYS  # days after which an ended backlog goes
    max_delay: int = 0  # seconds; an older event taken by a backlog raises the overload signal


class Worker:
    def __init__(
        self,
        intake: Intake,
        correlator: Correlator,
        *,
        timing: Timing = Timing(),
        store: Store | None = None,
        reloader: Reloader | None = None,
        overload: Overload | None = None,
        counters: Counters | None = None,
        on_commit: Callable[[float], None] | None = None,
        final_sweep: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        """`store`: the database to checkpoint and prune (None: none). `on_commit` hears how
        long each commit took. With `final_sweep`, once the intake is closed the clock moves
        to the wall clock, and what timed out by then expires, before the last commit."""
        self.intake = intake
        self.correlator = correlator
        self.timing = timing
        self.store = store
        self.reloader = reloader
        self.overload = overload
        self.counters = counters or Counters()
        self.on_commit = on_commit
        self.final_sweep = final_sweep
        self.monotonic = monotonic
        self.invalid_log = RateLimitedLog(log, "invalid events")
        self.turned = monotonic()  # when the loop last went round
        self.clock_at_end = 0  # the engine clock once the input ended, before a final sweep
        self._clock = intake.clock if isinstance(intake.clock, EventClock) else None
        self._progress: Progress | None = None  # of the last commit asked for
        correlator.on_commit = self._written

    async def run(self) -> None:
        intake, correlator, timing = self.intake, self.correlator, self.timing
        if intake.tick():  # backlogs whose deadline passed while the service was down
            correlator.expire()
        now = self.monotonic()
        next_expiry, next_prune = now + timing.expiry_interval, now + PRUNE_INTERVAL
        while True:
            now = self.turned = self.monotonic()
            next_expiry = min(next_expiry, self._absence_due(now))
            # at least once a second: rate-limited warnings, health
            await intake.wait(min(next_expiry - now, correlator.seconds_to_due(1.0)))
            started = time.perf_counter()
            self._correlate(await intake.take(TAKE))
            self.counters.proc_seconds += time.perf_counter() - started
            if self.reloader is not None:
                self.reloader.take_pending()  # a reloaded config, between two events
            now = self.monotonic()
            if now >= next_expiry:
                if intake.tick():
                    correlator.expire()
                next_expiry = now + timing.expiry_interval
                if self.store is not None and await self.store.checkpoint():
                    log.info("%s: the WAL, grown while a reader held it, is truncated",
                             self.store.path)
            if intake.closed:
                await self._finish()
                return
            progress = intake.position()
            if correlator.due(empty=progress != self._progress):
                self._progress = progress
                await correlator.commit(progress)
            if self.store is not None and now >= next_prune:
                await self.store.prune(correlator.engine.clock() - timing.retention_days * DAY)
                next_prune = now + PRUNE_INTERVAL
            self.invalid_log.flush()
            await asyncio.sleep(0)  # let the intake's source hand over more events

    def _absence_due(self, now: float) -> float:
        """When (on the monotonic clock) the wall-clock sweep is due for the next absence
        stage, which completes in the second after its deadline, not at the next 10 s tick
        (docs/extensions.md, "Absence stages"); infinity when none waits."""
        engine = self.correlator.engine
        deadline = engine.next_absence() if self._clock is None else None
        return now + max(0, deadline + 1 - engine.clock()) if deadline is not None else math.inf

    def _correlate(self, items: list[Item]) -> None:
        """Decode and correlate each event, in order: the loop that every event goes through,
        in one call per batch."""
        correlator, clock, overload = self.correlator, self._clock, self.overload
        feed = correlator.feed
        processed = 0
        for item in items:
            if item.time is not None and clock is not None and clock.advance(item.time):
                correlator.expire()
            payload = item.payload
            try:
                if len(payload) > MAX_EVENT_BYTES:
                    raise InvalidEvent(f"event of {len(payload)} bytes is larger than the "
                                       f"limit of {MAX_EVENT_BYTES}")
                event = decode_event(payload)
            except InvalidEvent as exc:
                self._invalid(item, exc)
                continue
            if feed(event) and overload is not None and self._late(event):
                overload.signal()
            processed += 1
        self.counters.processed += processed

    def _invalid(self, item: Item, exc: InvalidEvent) -> None:
        self.counters.invalid += 1
        if self.intake.label:
            self.invalid_log.warning("%s %d: %s, skipping it", self.intake.label,
                                     item.position, exc)
        else:
            self.invalid_log.warning("%s, skipping it", exc)

    def _late(self, event: Event) -> bool:
        """Older than --max_delay when a backlog took it (docs/behaviour.md, "Overload signal")."""
        max_delay = self.timing.max_delay
        return bool(max_delay) and time.time_ns() - event.rcvd_time > max_delay * 1_000_000_000

    async def _finish(self) -> None:
        """Nothing is lost at the end: the lookups in flight and the last commit."""
        self.clock_at_end = self.correlator.engine.clock()
        if self.final_sweep:
            self.correlator.sweep(wall_clock())
        progress = self._progress = self.intake.position()
        await self.correlator.finish(progress)
        self.invalid_log.flush(force=True)

    def _written(self, seconds: float, changes: Changes, progress: Progress | None) -> None:
        self.counters.alarm_lines += len(changes.alarms)
        self.intake.committed(progress)
        self.intake.wake()  # the next commit may be due
        if self.on_commit is not None:
            self.on_commit(seconds)

"""`dsiem-sql replay`: JSON-lines events through the engine at full speed, on the event-time
clock, by the same worker loop as `serve`, with a file intake (`adapters/file.py`).

A `Correlator` hands the changes in batches to a sink: the output files directly
(`FileSink`), or the database first (`Store`, group commit).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from dsiem_sql import defaults
from dsiem_sql.adapters.file import FileIntake, open_events
from dsiem_sql.config.loader import Config
from dsiem_sql.engine import Engine, EngineOptions, Stats
from dsiem_sql.engine.suppressions import Suppressions
from dsiem_sql.enrichment.enricher import Enricher, checkers
from dsiem_sql.enrichment.lookups import Lookups
from dsiem_sql.runtime.aio import first_cause, settle_memory
from dsiem_sql.runtime.correlator import Batching, Correlator, EventClock, FileSink, Sink
from dsiem_sql.runtime.worker import DAY, Worker
from dsiem_sql.store.outbox import Appender

log = logging.getLogger(__name__)


@dataclass
class ReplaySummary:
    read: int = 0
    invalid: int = 0
    live_backlogs: int = 0
    seconds: float = 0.0
    event_clock: int = 0  # the clock after the last event, before any final sweep
    stats: Stats = field(default_factory=Stats)

    @property
    def events_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def rows(self) -> list[tuple[str, Any]]:
        """What `dsiem-sql replay` prints."""
        s = self.stats
        return [
            ("events read", self.read),
            ("invalid", self.invalid),
            ("whitelisted", s.whitelisted),
            ("matched", s.matched),
            ("backlogs opened", s.backlogs_opened),
            ("backlogs finished", s.finished),
            ("backlogs expired", s.expired),
            ("alarms", s.alarms),
            ("alarm lines", s.alarm_lines),
            ("live backlogs", self.live_backlogs),
            ("seconds", f"{self.seconds:.3f}"),
            ("events/s", f"{self.events_per_second:,.0f}"),
        ]


async def replay(
    lines: Iterable[bytes | str],
    correlator: Correlator,
    *,
    final_sweep: bool = True,
    source: str | None = None,
    line: int = 0,
    offset: int = 0,
) -> ReplaySummary:
    """Feed every line to the correlator, committing as its policy says.

    Expiry runs whenever the event clock advances, and once more at the wall-clock time at
    the end when `final_sweep` is set. `source`, `line` and `offset` name the input and where
    it starts; each commit records the position reached (for `--resume`).
    """
    assert correlator.clock is not None, "replay runs on event time"
    started = time.perf_counter()
    intake = FileIntake(lines, correlator.clock, source, line, offset)
    worker = Worker(intake, correlator, final_sweep=final_sweep)
    await worker.run()
    return ReplaySummary(
        read=intake.received,
        invalid=worker.counters.invalid,
        live_backlogs=len(correlator.engine.backlogs),
        seconds=time.perf_counter() - started,
        event_clock=worker.clock_at_end,
        stats=correlator.engine.stats,
    )


@dataclass(frozen=True)
class ReplayRun:
    """Everything one `dsiem-sql replay` needs besides the engine."""

    file: str  # a path, or "-" for stdin
    out: str
    db: str | None = None
    resume: bool = False
    sync: str = defaults.DB_SYNC
    batching: Batching = field(default_factory=Batching)
    retention_days: int = defaults.RETENTION_DAYS
    final_sweep: bool | None = None  # default: on without a database, off with one
    cache_minutes: int = defaults.CACHE_MINUTES
    intel_private_ip: bool = False


class ReplayError(Exception):
    pass


def run_replay(run: ReplayRun, config: Config, engine_options: EngineOptions) -> ReplaySummary:
    """`dsiem-sql replay`: a new engine on the event clock, through `replay_file`."""
    clock = EventClock()
    engine = Engine(config, engine_options, clock=clock)
    return asyncio.run(replay_file(run, engine, clock, config))


async def replay_file(
    run: ReplayRun, engine: Engine, clock: EventClock, config: Config | None = None
) -> ReplaySummary:
    """Open the input (and the database), resume state, replay, and close everything.
    With `config`, its intel and vuln sources enrich the alarms."""
    if run.resume and (run.db is None or run.file == "-"):
        raise ReplayError("--resume needs --db and an event file (not stdin)")
    try:
        source = open_events(run.file)
    except OSError as exc:
        raise ReplayError(f"{run.file}: cannot read events: {exc.strerror}") from None
    enricher = Enricher(
        checkers(config.intel, config.vuln) if config else [],
        cache_minutes=run.cache_minutes,
        private_ips=run.intel_private_ip,
    )
    with source:
        try:
            return await _replay(run, source, engine, clock, enricher)
        except BaseExceptionGroup as failure:  # of the task group: the first task's error
            raise first_cause(failure) from None


async def _replay(run: ReplayRun, source: BinaryIO, engine: Engine, clock: EventClock,
                  enricher: Enricher) -> ReplaySummary:
    async with enricher, asyncio.TaskGroup() as tasks:

        def correlator(sink: Sink) -> Correlator:
            return Correlator(engine, sink, batching=run.batching, clock=clock,
                              lookups=Lookups(enricher, tasks), tasks=tasks)

        if run.db is None:
            out = Appender(run.out)
            out.open()
            final_sweep = True if run.final_sweep is None else run.final_sweep
            settle_memory()
            return await replay(source, correlator(FileSink(out)), final_sweep=final_sweep)
        return await _replay_into_database(run, source, correlator, engine, clock)


async def _replay_into_database(run: ReplayRun, source: BinaryIO, correlator, engine: Engine,
                                clock: EventClock) -> ReplaySummary:
    from dsiem_sql.store.store import Store  # SQLAlchemy and alembic load only when a db is used

    name = None if run.file == "-" else os.path.abspath(run.file)
    assert run.db is not None
    store = Store(run.db, run.out, run.sync)  # type: ignore[arg-type]
    await store.open()
    try:
        resumed = await store.resume(engine.directive, name)
        engine.resume(resumed.backlogs, resumed.next_seq)
        engine.suppressions = Suppressions(await store.suppressions())
        clock.now = max(clock.now, resumed.clock)
        line = offset = 0
        if run.resume:
            if resumed.offset > Path(run.file).stat().st_size:
                raise ReplayError(
                    f"{run.file}: shorter than the position recorded in {run.db} "
                    f"(line {resumed.line}); is it the same file?"
                )
            source.seek(resumed.offset)
            line, offset = resumed.line, resumed.offset
            log.info("resuming %s after line %d", run.file, line)
        await store.prune(clock.now - run.retention_days * DAY)
        settle_memory()
        summary = await replay(source, correlator(store), final_sweep=bool(run.final_sweep),
                               source=name, line=line, offset=offset)
        # retention follows event time; a final sweep's jump to wall-clock time prunes nothing
        await store.prune(summary.event_clock - run.retention_days * DAY)
    except BaseException:
        await store.close(abort=True)
        raise
    await store.close()
    return summary

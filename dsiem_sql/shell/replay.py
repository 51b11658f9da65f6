"""Offline replay: JSON-lines events through the engine at full speed, event time as clock.

Changes are handed to a sink in batches: `FileSink` writes the output files directly,
`dsiem_sql.store.Store` commits them to the database first (group commit).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dsiem_sql.config.loader import Config
from dsiem_sql.engine import Changes, Engine, InvalidEvent, Stats, decode_event
from dsiem_sql.engine.engine import wall_clock
from dsiem_sql.enrichment.enricher import Enricher, checkers
from dsiem_sql.enrichment.lookups import Lookups
from dsiem_sql.output import OutputFiles
from dsiem_sql.shell.logs import RateLimitedLog

log = logging.getLogger(__name__)


class EventClock:
    """The newest event time seen so far; it never goes back."""

    def __init__(self, now: int = 0):
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, to: int) -> bool:
        if to > self.now:
            self.now = to
            return True
        return False


class Sink(Protocol):
    async def commit(
        self,
        changes: Changes,
        engine: Engine,
        clock: int,
        progress: tuple[str, int, int] | None = None,
    ) -> None: ...


class FileSink:
    """Writes each batch straight to the output files (no database)."""

    def __init__(self, out: OutputFiles):
        self.out = out

    async def commit(
        self,
        changes: Changes,
        engine: Engine,
        clock: int,
        progress: tuple[str, int, int] | None = None,
    ) -> None:
        self.out.write(changes)


@dataclass(frozen=True)
class Batching:
    """Commit when `interval_ms` has passed since the last commit, or after `changes`."""

    interval_ms: int = 100
    changes: int = 2000


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


async def replay(
    lines: Iterable[bytes | str],
    engine: Engine,
    clock: EventClock,
    sink: Sink,
    *,
    final_sweep: bool = True,
    batching: Batching = Batching(),
    source: str | None = None,
    line: int = 0,
    offset: int = 0,
    lookups: Lookups | None = None,
) -> ReplaySummary:
    """Feed every line to the engine and hand the changes to `sink` in batches.

    Expiry runs whenever the event clock advances, and once more at the wall-clock time at
    the end when `final_sweep` is set. `source`, `line` and `offset` name the input and where
    it starts; each commit records the position reached (for `--resume`).
    """
    summary = ReplaySummary()
    started = time.perf_counter()
    batch = Changes()
    interval = batching.interval_ms / 1000
    last_commit = time.monotonic()
    invalid_log = RateLimitedLog(log, "invalid events")
    for text in lines:
        line += 1
        offset += len(text)
        if not text.strip():
            continue
        summary.read += 1
        try:
            event = decode_event(text)
        except InvalidEvent as exc:
            summary.invalid += 1
            invalid_log.warning("line %d: %s, skipping it", line, exc)
            continue
        if clock.advance(event.ts):
            engine.expire(into=batch)
        engine.process(event, into=batch)
        if len(batch.links) + len(batch.backlogs) >= batching.changes or (
            time.monotonic() - last_commit >= interval
        ):
            if lookups is not None:
                lookups.apply(engine, into=batch)
                lookups.start(batch)
            await sink.commit(batch, engine, clock.now, _position(source, line, offset))
            await asyncio.sleep(0)  # let lookups in flight make progress
            batch = Changes()
            last_commit = time.monotonic()
            invalid_log.flush()
    invalid_log.flush(force=True)
    summary.event_clock = clock.now
    if final_sweep:
        clock.advance(wall_clock())
        engine.expire(into=batch)
    if lookups is not None:  # nothing is lost at the end: wait for the lookups in flight
        lookups.start(batch)
        await lookups.drain()
        lookups.apply(engine, into=batch)
    await sink.commit(batch, engine, clock.now, _position(source, line, offset))
    summary.seconds = time.perf_counter() - started
    summary.stats = engine.stats
    summary.live_backlogs = len(engine.backlogs)
    return summary


def _position(source: str | None, line: int, offset: int) -> tuple[str, int, int] | None:
    return None if source is None else (source, line, offset)


@dataclass(frozen=True)
class ReplayRun:
    """Everything one `dsiem-sql replay` needs besides the engine."""

    file: str  # a path, or "-" for stdin
    out: str
    db: str | None = None
    resume: bool = False
    sync: str = "normal"
    batching: Batching = Batching()
    retention_days: int = 7
    final_sweep: bool | None = None  # default: on without a database, off with one
    cache_minutes: int = 10
    intel_private_ip: bool = False


class ReplayError(Exception):
    pass


async def replay_file(
    run: ReplayRun, engine: Engine, clock: EventClock, config: Config | None = None
) -> ReplaySummary:
    """Open the input (and the database), restore state, replay, and close everything.
    With `config`, its intel and vuln sources enrich the alarms."""
    enricher = Enricher(
        checkers(config.intel, config.vuln) if config else [],
        cache_minutes=run.cache_minutes,
        private_ips=run.intel_private_ip,
    )
    async with enricher:
        return await _replay_file(run, engine, clock, Lookups(enricher))


async def _replay_file(
    run: ReplayRun, engine: Engine, clock: EventClock, lookups: Lookups
) -> ReplaySummary:
    from dsiem_sql.store.store import Store  # SQLAlchemy and alembic load only when a db is used

    if run.resume and (run.db is None or run.file == "-"):
        raise ReplayError("--resume needs --db and an event file (not stdin)")
    try:
        source = sys.stdin.buffer if run.file == "-" else open(run.file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise ReplayError(f"{run.file}: cannot read events: {exc.strerror}") from None
    name = None if run.file == "-" else os.path.abspath(run.file)
    with source:
        if run.db is None:
            final_sweep = True if run.final_sweep is None else run.final_sweep
            with OutputFiles(run.out) as files:
                return await replay(
                    source,
                    engine,
                    clock,
                    FileSink(files),
                    final_sweep=final_sweep,
                    batching=run.batching,
                    lookups=lookups,
                )
        store = Store(run.db, run.out, run.sync)  # type: ignore[arg-type]
        await store.open()
        try:
            resumed = await store.load(engine, name)
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
            day = 86400
            await store.prune(clock.now - run.retention_days * day)
            summary = await replay(
                source,
                engine,
                clock,
                store,
                final_sweep=bool(run.final_sweep),
                batching=run.batching,
                source=name,
                line=line,
                offset=offset,
                lookups=lookups,
            )
            # retention follows event time; a final sweep's jump to wall-clock time prunes nothing
            await store.prune(summary.event_clock - run.retention_days * day)
            return summary
        finally:
            await store.close()

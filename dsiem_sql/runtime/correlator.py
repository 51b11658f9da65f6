"""The drive loop around the engine, the same for `serve`, `replay` and the tests.

A `Correlator` owns the pending `Changes`, the clock advance and expiry, the commit policy
(`Batching`) and the enrichment lookups. Its user only feeds it events and ticks, and
commits when it is due: a batch goes to the sink while the engine goes on, one write at a
time and in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from dsiem_sql import defaults
from dsiem_sql.engine import Changes, Engine, Event
from dsiem_sql.enrichment.lookups import Lookups
from dsiem_sql.store.outbox import Appender, Line

Progress = tuple[str, int, int]  # (input source, line or sequence, byte offset) reached
OnCommit = Callable[[float, Changes, Progress | None], None]


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


WRITE_BEHIND = 4  # see Correlator.due


@dataclass(frozen=True)
class Batching:
    """Commit when `interval_ms` has passed since the last commit, or after `changes`."""

    interval_ms: int = defaults.COMMIT_INTERVAL_MS
    changes: int = defaults.COMMIT_CHANGES


class Sink(Protocol):
    """Where committed batches go: the database (`Store`) or the output files alone."""

    def snapshot(self, changes: Changes, clock: int, progress: Progress | None) -> Any: ...

    async def write(self, batch: Any) -> None: ...


class FileSink:
    """The output files alone, without a database (`replay` without `--db`)."""

    def __init__(self, out: Appender):
        self.out = out

    def snapshot(self, changes: Changes, clock: int, progress: Progress | None) -> list[Line]:
        return self.out.number(changes)

    async def write(self, batch: list[Line]) -> None:
        self.out.append(batch)


class Correlator:
    def __init__(
        self,
        engine: Engine,
        sink: Sink | None = None,
        *,
        batching: Batching = Batching(),
        clock: EventClock | None = None,
        lookups: Lookups | None = None,
        tasks: asyncio.TaskGroup | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        on_commit: OnCommit | None = None,
    ):
        """With `clock`, the clock is event time: it advances with each event, and expiry
        runs whenever it does; otherwise the caller calls `expire` on its ticks. With
        `tasks`, each write runs as a task of that group while the next batch is built.
        `on_commit` hears of each write done: its seconds, changes and progress."""
        self.engine = engine
        self.sink = sink
        self.batching = batching
        self.clock = clock
        self.lookups = lookups
        self.tasks = tasks
        self.monotonic = monotonic
        self.on_commit = on_commit
        self.pending = Changes()
        self.last_commit = monotonic()
        self._writing: asyncio.Task[None] | None = None

    def feed(self, event: Event) -> bool:
        """Correlate one event; returns whether a backlog took it."""
        if self.clock is not None and self.clock.advance(event.ts):
            self.engine.expire(into=self.pending)
        links = len(self.pending.links)
        self.engine.process(event, into=self.pending)
        return len(self.pending.links) > links

    def expire(self) -> None:
        self.engine.expire(into=self.pending)

    def sweep(self, now: int) -> None:
        """Move the event clock to `now` and expire what timed out by then."""
        assert self.clock is not None
        self.clock.advance(now)
        self.expire()

    @property
    def waiting(self) -> bool:
        """Something waits to be committed: changes, or lookup results."""
        return bool(self.pending) or bool(self.lookups and self.lookups.done)

    @property
    def writing(self) -> bool:
        """A write is under way."""
        return self._writing is not None and not self._writing.done()

    def due(self, empty: bool = False) -> bool:
        """The commit policy: something waits (or `empty`, to record the input position
        reached), and the interval has passed since the last commit or enough changes piled
        up. While the previous write is under way, the batch grows instead (up to
        `WRITE_BEHIND` times the changes), rather than the engine waiting for that write."""
        if not (empty or self.waiting):
            return False
        size = len(self.pending.links) + len(self.pending.backlogs)
        if self.writing:
            return size >= WRITE_BEHIND * self.batching.changes
        return (size >= self.batching.changes
                or self.monotonic() - self.last_commit >= self.batching.interval_ms / 1000)

    def seconds_to_due(self, idle: float) -> float:
        """How long the caller may wait for events before the next commit is due; `idle`
        when nothing waits (then lookups in flight are looked at again within an interval),
        or while a write is under way (its end wakes the caller: `on_commit`)."""
        interval = self.batching.interval_ms / 1000
        if self.writing:
            return idle
        if self.waiting:
            return max(0.0, self.last_commit + interval - self.monotonic())
        return min(idle, interval) if self.lookups and self.lookups.pending else idle

    def take(self) -> Changes:
        """The pending changes, with the lookup results that arrived; the lookups they ask
        for are started."""
        if self.lookups is not None:
            self.lookups.apply(self.engine, into=self.pending)
            self.lookups.start(self.pending)
        batch, self.pending = self.pending, Changes()
        self.last_commit = self.monotonic()
        return batch

    async def commit(self, progress: Progress | None = None) -> None:
        """Hand the pending changes to the sink; with a task group, return once the previous
        write is done and this one has started."""
        assert self.sink is not None
        changes = self.take()
        batch = self.sink.snapshot(changes, self.engine.clock(), progress)
        await self.written()
        if self.tasks is not None:
            self._writing = self.tasks.create_task(self._write(batch, changes, progress))
        else:
            await self._write(batch, changes, progress)

    async def _write(self, batch: Any, changes: Changes, progress: Progress | None) -> None:
        assert self.sink is not None
        started = time.perf_counter()
        await self.sink.write(batch)
        if self.on_commit is not None:
            self.on_commit(time.perf_counter() - started, changes, progress)

    async def written(self) -> None:
        """Wait for the write under way; its error is raised here."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing

    async def finish(self, progress: Progress | None = None) -> None:
        """Nothing is lost at the end: wait for the lookups in flight, commit everything and
        wait for the write."""
        if self.lookups is not None:
            self.lookups.start(self.pending)
            await self.lookups.drain()
            self.lookups.cancel()
        await self.commit(progress)
        await self.written()

"""Offline replay: JSON-lines events through the engine at full speed, event time as clock."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from dsiem_sql.engine import Changes, Engine, InvalidEvent, decode_event
from dsiem_sql.engine.engine import wall_clock
from dsiem_sql.output import OutputFiles

log = logging.getLogger(__name__)

BATCH_LINKS = 1000  # output records are written in batches of about this many


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


@dataclass
class ReplaySummary:
    read: int = 0
    invalid: int = 0
    whitelisted: int = 0
    matched: int = 0
    backlogs_opened: int = 0
    alarms: int = 0
    alarm_lines: int = 0
    live_backlogs: int = 0
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


def replay(
    lines: Iterable[str | bytes],
    engine: Engine,
    clock: EventClock,
    out: OutputFiles,
    final_sweep: bool = True,
) -> ReplaySummary:
    """Feed every line to the engine. Expiry runs whenever the event clock advances, and
    once more at the wall-clock time at the end when `final_sweep` is set."""
    summary = ReplaySummary()
    started = time.perf_counter()
    batch = Changes()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        summary.read += 1
        try:
            event = decode_event(line)
        except InvalidEvent as exc:
            summary.invalid += 1
            log.warning("line %d: %s, skipping it", lineno, exc)
            continue
        if clock.advance(event.ts):
            engine.expire(into=batch)
        engine.process(event, into=batch)
        if len(batch.links) >= BATCH_LINKS:
            out.write(batch)
            batch = Changes()
    if final_sweep:
        clock.advance(wall_clock())
        engine.expire(into=batch)
    out.write(batch)
    out.flush()
    summary.seconds = time.perf_counter() - started
    stats = engine.stats
    summary.whitelisted = stats.whitelisted
    summary.matched = stats.matched
    summary.backlogs_opened = stats.backlogs_opened
    summary.alarms = stats.alarms
    summary.alarm_lines = stats.alarm_lines
    summary.live_backlogs = len(engine.backlogs)
    return summary

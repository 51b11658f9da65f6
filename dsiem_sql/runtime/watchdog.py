"""The watchdog report: every 10 s an INFO line with dsiem-rs's field names
(docs/behaviour.md, "Watchdog report")."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from dsiem_sql.engine import Engine
from dsiem_sql.runtime.intake import Intake
from dsiem_sql.runtime.worker import Counters

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, intake: Intake, counters: Counters, engine: Engine, interval: float,
                 max_eps: int, sleep: Callable[[float], object] = asyncio.sleep):
        self.intake, self.counters, self.engine = intake, counters, engine
        self.interval, self.max_eps, self.sleep = interval, max_eps, sleep
        self.seen = {"received": 0, "processed": 0, "matched": 0, "dropped": 0, "seconds": 0.0}

    async def run(self) -> None:
        while True:
            await self.sleep(self.interval)  # type: ignore[misc]
            self.report()

    def report(self) -> dict[str, float]:
        """Log the report of the last interval; returns its fields."""
        c, seen = self.counters, self.seen
        received, dropped = self.intake.received, self.intake.dropped
        matched = self.engine.stats.matched
        done = c.processed - seen["processed"]
        avg_ms = 1000 * (c.proc_seconds - seen["seconds"]) / done if done else 0.0
        fields = {
            "eps": round(done / self.interval, 2),
            "queue_length": len(self.intake),
            "avg_proc_time_ms": round(avg_ms, 3),
            "directives_ttl": len(self.engine.directives),
            "directives_active": sum(1 for d in self.engine.directives if d.backlogs),
            "backlogs": len(self.engine.backlogs),
            "events_rcvd": received - seen["received"],
            "events_matched": matched - seen["matched"],
            "events_dropped": dropped - seen["dropped"],
            "events_invalid": c.invalid,
        }
        log.info("watchdog report", extra={"fields": fields})
        if len(self.intake) and self.max_eps and avg_ms > 1000 / self.max_eps:
            log.warning(
                "avg. processing time maybe too long to sustain the target %d event/sec "
                "(or %.3f ms/event)", self.max_eps, 1000 / self.max_eps,
            )
        seen.update(received=received, processed=c.processed, matched=matched,
                    dropped=dropped, seconds=c.proc_seconds)
        return fields

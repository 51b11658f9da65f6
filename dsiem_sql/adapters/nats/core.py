"""`serve --intake core`: the events of a core NATS subscription to `dsiem_events`, at most
once, as Dsiem's backends take them. The subscription's callback only puts each event into
the bounded queue of `MemoryIntake`; the worker takes them from there."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import nats

from dsiem_sql.adapters.nats.connection import EVENTS_SUBJECT, Connection
from dsiem_sql.runtime.intake import MemoryIntake

if TYPE_CHECKING:
    from dsiem_sql.store.resume import Resumed

log = logging.getLogger(__name__)


class CoreIntake(MemoryIntake):
    def __init__(self, connection: Connection, max_queue: int):
        super().__init__(max_queue)
        self.connection = connection

    async def open(self, resumed: Resumed, stop: asyncio.Event) -> bool:
        client = self.connection.nats
        await client.subscribe_fast(EVENTS_SUBJECT, lambda d: self.put(d.data))
        # a round trip, so the server has the subscription before the service says it is ready
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await client.flush(5)
        log.info("subscribed to %s", EVENTS_SUBJECT)
        return not stop.is_set()

    async def stop(self) -> None:
        await self.connection.drain()  # hands over what already arrived
        await super().stop()

"""The overload signal to the frontend: `true` on `dsiem_overload_signals` at the first
pressure signal, `false` `hold` seconds after the last. While `pressure()` holds (commits
failing), the signal stays on (docs/behaviour.md, "Overload signal")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Overload:
    def __init__(
        self,
        send: Callable[[bool], Awaitable[None]],
        hold: float,
        pressure: Callable[[], bool] = lambda: False,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.send, self.hold, self.pressure, self.monotonic = send, hold, pressure, monotonic
        self.active = False
        self.until = 0.0
        self._raised = asyncio.Event()

    def signal(self) -> None:
        """An event older than --max_delay went into a backlog."""
        self.until = self.monotonic() + self.hold
        if not self.active:
            self._raised.set()

    def check(self) -> bool | None:
        """The signal to send now, if the state changes: True, False, or None."""
        now = self.monotonic()
        if self.pressure():
            self.until = now + self.hold
        if not self.active and now < self.until:
            self.active = True
            return True
        if self.active and now >= self.until:
            self.active = False
            return False
        return None

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._raised.wait(), min(self.hold, 1.0) / 4)
            self._raised.clear()
            value = self.check()
            if value is not None:
                try:
                    await self.send(value)
                    log.info("overload = %s signal sent to frontend", str(value).lower())
                except Exception as exc:  # NATS away: the next change is sent again
                    log.warning("cannot send the overload signal: %s", exc)

"""The bounded queue between NATS and the engine (SPEC §9.3).

When full, the oldest event is dropped and counted; `max_queue = 0` means unbounded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class Intake:
    def __init__(self, max_queue: int = 0):
        self.max_queue = max_queue
        self._items: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self.received = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, payload: bytes) -> None:
        if self._closed:
            return
        self.received += 1
        if self.max_queue and len(self._items) >= self.max_queue:
            self._items.popleft()
            self.dropped += 1
        self._items.append(payload)
        self._ready.set()

    def wake(self) -> None:
        """Make `wait` return now, without an event (the worker has something else to do)."""
        self._ready.set()

    def close(self) -> None:
        """Stop taking events; what is queued can still be taken."""
        self._closed = True
        self._ready.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def take(self, limit: int) -> list[bytes]:
        """Up to `limit` queued events, oldest first, without waiting."""
        n = min(limit, len(self._items))
        batch = [self._items.popleft() for _ in range(n)]
        if not self._items and not self._closed:
            self._ready.clear()
        return batch

    async def wait(self, timeout: float) -> None:
        """Until an event is queued, the intake is closed, or `timeout` seconds passed."""
        if self._items or self._closed:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

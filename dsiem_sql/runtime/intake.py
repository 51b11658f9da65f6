"""Where events come from: the `Intake` protocol that the worker loop (`runtime/worker.py`)
reads, and `MemoryIntake`, the bounded queue that NATS callbacks and tests put events into.

An intake hands over events in batches, in the order they are to be correlated, and says how
far it got (`position`): each commit stores that position with the effects of the events
before it, and the intake hears when that commit is written (`committed`), so that it can
acknowledge them to their source. The implementations: `MemoryIntake` (tests), `CoreIntake`
(`adapters/nats/core.py`), `JetStreamIntake` (`adapters/nats/jetstream.py`) and `FileIntake`
(`adapters/file.py`, for `replay`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from dsiem_sql.engine.engine import wall_clock
from dsiem_sql.runtime.correlator import Progress

if TYPE_CHECKING:
    from dsiem_sql.store.resume import Resumed


class Item(NamedTuple):
    payload: bytes | str  # the JSON of one event
    time: int | None = None  # seconds: move the engine clock to this before the event
    position: int = 0  # its line or sequence in the source, for messages about it


class Intake(Protocol):
    @property
    def source(self) -> str | None:
        """Names the `input_progress` row of this input; None: it keeps none."""

    @property
    def label(self) -> str | None:
        """What `Item.position` counts ("line"), for messages; None: nothing."""

    @property
    def received(self) -> int:
        """Events taken from the source."""

    @property
    def dropped(self) -> int:
        """Events dropped before the worker took them."""

    @property
    def clock(self) -> Callable[[], int]:
        """The engine's clock while this intake feeds it."""

    @property
    def closed(self) -> bool:
        """Stopped, and every event received was taken."""

    def __len__(self) -> int:
        """Events received and not taken yet."""

    async def open(self, resumed: Resumed, stop: asyncio.Event) -> bool:
        """Start delivering after the position `resumed` holds; False if `stop` came first."""

    async def wait(self, timeout: float) -> None:
        """Until there is something to take, the intake is closed, `wake` was called, or
        `timeout` seconds passed."""

    async def take(self, limit: int) -> list[Item]:
        """Up to `limit` events, in order, without waiting for more."""

    def tick(self) -> bool:
        """The wall clock's expiry tick: whether the backlogs are to be expired now."""

    def position(self) -> Progress | None:
        """How far the events taken so far reach, for the commit being made."""

    def committed(self, progress: Progress | None) -> None:
        """The commit that recorded `progress` is written."""

    def wake(self) -> None:
        """Make `wait` return now: the worker has something else to do."""

    async def stop(self) -> None:
        """Take no new events from the source; those received can still be taken."""

    async def close(self) -> None:
        """After the last commit: settle with the source (acknowledge), let it go."""

    def values(self) -> dict[str, float]:
        """What this intake adds to the metrics (`adapters/http/metrics.py`)."""


class MemoryIntake:
    """A bounded queue of events, on the wall clock, that keeps no position. `put` adds an
    event; when the queue is full the oldest is dropped and counted (`max_queue = 0`:
    unbounded). The core NATS intake is this queue filled by the subscription; tests fill it
    by hand."""

    source: str | None = None
    label: str | None = None

    def __init__(self, max_queue: int = 0, clock: Callable[[], int] = wall_clock):
        self.max_queue = max_queue
        self._clock = clock
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()
        self._stopped = False
        self.received = 0
        self.dropped = 0

    @property
    def clock(self) -> Callable[[], int]:
        return self._clock

    def __len__(self) -> int:
        return len(self._items)

    def put(self, payload: bytes) -> None:
        if self._stopped:
            return
        self.received += 1
        if self.max_queue and len(self._items) >= self.max_queue:
            self._items.popleft()
            self.dropped += 1
        self._items.append(Item(payload))
        self._ready.set()

    @property
    def closed(self) -> bool:
        return self._stopped and not self._items

    async def open(self, resumed: Resumed, stop: asyncio.Event) -> bool:
        return not stop.is_set()

    async def wait(self, timeout: float) -> None:
        if self._items or self._stopped:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    async def take(self, limit: int) -> list[Item]:
        n = min(limit, len(self._items))
        batch = [self._items.popleft() for _ in range(n)]
        if not self._items and not self._stopped:
            self._ready.clear()
        return batch

    def tick(self) -> bool:
        return True

    def position(self) -> Progress | None:
        return None

    def committed(self, progress: Progress | None) -> None:
        pass

    def wake(self) -> None:
        self._ready.set()

    async def stop(self) -> None:
        self._stopped = True
        self._ready.set()

    async def close(self) -> None:
        pass

    def values(self) -> dict[str, float]:
        return {}

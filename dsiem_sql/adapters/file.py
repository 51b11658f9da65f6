"""`replay`'s intake: the lines of a JSON-lines file (or stdin), one event a line, on the
event-time clock. It keeps its position (line and byte offset) in `input_progress` when the
file is named (`source`), so that `replay --resume` goes on after the last committed line."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, BinaryIO

from dsiem_sql.runtime.correlator import EventClock, Progress
from dsiem_sql.runtime.intake import Item

if TYPE_CHECKING:
    from dsiem_sql.store.resume import Resumed

READ_BUFFER = 4 * 1024 * 1024


def open_events(path: str) -> BinaryIO:
    """The event input, read in blocks of `READ_BUFFER`. At the default 8 KB, the engine's
    thread lets go of the interpreter lock for a moment at every read, and each time the
    writer's thread has to start waiting for it anew: CPython hands the lock over on request
    only once its holder kept it 5 ms without a break. Commits then waited up to 100 ms to
    start, and `replay --db` ran at half its speed."""
    if path != "-":
        return open(path, "rb", buffering=READ_BUFFER)
    try:
        return open(sys.stdin.fileno(), "rb", buffering=READ_BUFFER, closefd=False)
    except (AttributeError, OSError, io.UnsupportedOperation):  # stdin replaced, as in tests
        return sys.stdin.buffer


class FileIntake:
    """Every line of `lines`; blank lines are counted but not handed over. `source` names the
    input in `input_progress` (None: no position is kept); `line` and `offset` say where
    `lines` starts in it."""

    label = "line"
    dropped = 0

    def __init__(self, lines: Iterable[bytes | str], clock: EventClock,
                 source: str | None = None, line: int = 0, offset: int = 0):
        self.lines = iter(lines)
        self.event_clock = clock
        self.source = source
        self.line = line
        self.offset = offset
        self.received = 0
        self._ended = False

    @property
    def clock(self) -> Callable[[], int]:
        return self.event_clock

    def __len__(self) -> int:
        return 0

    @property
    def closed(self) -> bool:
        return self._ended

    async def open(self, resumed: Resumed, stop: asyncio.Event) -> bool:
        return True

    async def wait(self, timeout: float) -> None:
        pass  # a file never keeps the worker waiting

    async def take(self, limit: int) -> list[Item]:
        items: list[Item] = []
        line, offset = self.line, self.offset
        for text in self.lines:
            line += 1
            offset += len(text)
            if text and not text.isspace():
                items.append(Item(text, None, line))
                if len(items) == limit:
                    break
        else:
            self._ended = True
        self.line, self.offset = line, offset
        self.received += len(items)
        return items

    def tick(self) -> bool:
        return False  # expiry follows the events' times

    def position(self) -> Progress | None:
        return None if self.source is None else (self.source, self.line, self.offset)

    def committed(self, progress: Progress | None) -> None:
        pass

    def wake(self) -> None:
        pass

    async def stop(self) -> None:
        self._ended = True

    async def close(self) -> None:
        pass

    def values(self) -> dict[str, float]:
        return {}

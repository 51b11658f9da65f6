"""Logging set-up: plain text, or JSON lines with `timestamp`, `level`, `fields`, `target`.

Both keep each record on one line (JSON through its string escapes); values from events and
configs are cut with `dsiem_sql.logtext.shown` where they enter a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dsiem_sql.logtext import escaped


class JsonFormatter(logging.Formatter):
    """Structured values go under `fields`, next to the message, as dsiem-rs writes them
    (docs/behaviour.md, "Logs")."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname,
                "fields": {"message": record.getMessage(), **getattr(record, "fields", {})},
                "target": record.name.replace(".", "::"),
            }
        )


class PlainFormatter(logging.Formatter):
    """`<time> <LEVEL> <target>: <message> key=value ...` on one line: control characters
    are escaped, so a value from an event cannot forge a line. A traceback follows as is."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)5s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return escaped(text)


class RateLimitedLog:
    """Warnings of one kind, at most `limit` per `window` seconds. The others are counted and
    reported in one summary line once the window is over: by the next warning, or by `flush`,
    which a loop calls so that the summary of a burst also comes when nothing follows it."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        limit: int = 10,
        window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.logger, self.what, self.limit, self.window, self.clock = (
            logger, what, limit, window, clock
        )
        self.started = -float("inf")  # when the current window started
        self.logged = 0
        self.suppressed = 0

    def warning(self, msg: str, *args: object) -> None:
        now = self.clock()
        if now - self.started >= self.window:
            self._summary(now)
            self.started, self.logged = now, 0
        if self.logged < self.limit:
            self.logged += 1
            self.logger.warning(msg, *args)
        else:
            self.suppressed += 1

    def flush(self, force: bool = False) -> None:
        """Report what the window left out once it is over; with `force` (at the end of the
        input) at once."""
        if self.suppressed:
            now = self.clock()
            if force or now - self.started >= self.window:
                self._summary(now)

    def _summary(self, now: float) -> None:
        if self.suppressed:
            self.logger.warning(
                "… and %d more %s in the last %.1f s", self.suppressed, self.what,
                now - self.started,
            )
            self.suppressed = 0


def setup_logging(level: int, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # alembic announces each of its plugins at INFO on every start
    logging.getLogger("alembic.runtime.plugins").setLevel(max(level, logging.WARNING))


@dataclass
class _Seen:
    """One message of a RepeatedLog: when it came last, and the repeats not logged yet."""

    level: int
    text: str
    last: float  # when it came last
    since: float  # when its count started: its own line, or the last summary
    count: int = 0
    timer: asyncio.TimerHandle | None = None


class RepeatedLog:
    """Messages that may repeat, such as the same error every second, logged once with a
    count instead of as a flood.

    A message (its text, arguments put in) is logged whole the first time, traceback
    included. The same message again within `window` seconds of its last coming is only
    counted; the count is logged, without a traceback, in one line once `window` seconds
    are over since the message or its last summary: ``<message> (29 more times in the last
    30 s)``. A message that stayed away for a window is logged whole again. Of the new
    messages, at most `limit` a window are logged; the others are counted together in the
    same way (``… and N more messages like these in the last 30 s``), so that messages that
    differ every time cannot flood the log either.

    The summaries come from a timer of the running event loop; without one, with the next
    message, or from `flush`."""

    def __init__(
        self,
        logger: logging.Logger,
        window: float = 30.0,
        limit: int = 10,
        clock: Callable[[], float] = time.monotonic,
        keep: int = 1000,
    ):
        self.logger, self.window, self.limit, self.clock, self.keep = (
            logger, window, limit, clock, keep
        )
        self._seen: dict[str, _Seen] = {}  # by text, the oldest first
        self._others = _Seen(logging.DEBUG, "", -float("inf"), -float("inf"))
        self._new_since = -float("inf")  # when the window of new messages started
        self._new = 0  # new messages logged in that window

    def log(self, level: int, msg: str, *args: object, exc_info: Any = None) -> None:
        text = msg % args if args else msg
        if self.first(text, level):
            self.logger.log(level, msg, *args, exc_info=exc_info)

    def warning(self, msg: str, *args: object) -> None:
        self.log(logging.WARNING, msg, *args)

    def error(self, msg: str, *args: object, exc_info: Any = None) -> None:
        self.log(logging.ERROR, msg, *args, exc_info=exc_info)

    def first(self, text: str, level: int = logging.WARNING) -> bool:
        """Whether `text` is to be logged whole now; False: it is counted for a summary
        (the caller logs it itself when True, e.g. with more detail)."""
        now = self.clock()
        seen = self._seen.get(text)
        if seen is not None and now - seen.last < self.window:
            seen.last = now
            seen.count += 1
            self._due(seen, now)
            return False
        if seen is not None:  # back after a quiet window
            self._summary(seen, now)
            del self._seen[text]
        if now - self._new_since >= self.window:
            self._summary(self._others, now)
            self._new_since, self._new = now, 0
        if self._new >= self.limit:
            others = self._others
            others.level, others.last = max(others.level, level), now
            others.count += 1
            self._due(others, now)
            return False
        self._new += 1
        self._forget(now)
        self._seen[text] = _Seen(level, text, now, now)
        return True

    def flush(self) -> None:
        """Log every count not logged yet, now."""
        now = self.clock()
        for seen in [*self._seen.values(), self._others]:
            self._summary(seen, now)

    def _due(self, seen: _Seen, now: float) -> None:
        """Log the count of `seen` once its window is over: now if it is, else by a timer."""
        if now - seen.since >= self.window:
            self._summary(seen, now)
            return
        if seen.timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: the next message or flush logs it
                return
            seen.timer = loop.call_later(seen.since + self.window - now, self._ring, seen)

    def _ring(self, seen: _Seen) -> None:
        seen.timer = None
        self._summary(seen, self.clock())

    def _summary(self, seen: _Seen, now: float) -> None:
        if seen.timer is not None:
            seen.timer.cancel()
            seen.timer = None
        if seen.count:
            if seen is self._others:
                self.logger.log(seen.level, "… and %d more messages like these in the last "
                                "%.0f s", seen.count, now - seen.since)
                seen.level = logging.DEBUG
            else:
                self.logger.log(seen.level, "%s (%d more %s in the last %.0f s)", seen.text,
                                seen.count, "time" if seen.count == 1 else "times",
                                now - seen.since)
            seen.count = 0
        seen.since = now

    def _forget(self, now: float) -> None:
        """Drop the messages quiet for a window (their counts logged), and the oldest beyond
        `keep`."""
        if len(self._seen) < self.keep // 2:
            return
        for text, seen in list(self._seen.items()):
            if now - seen.last >= self.window or len(self._seen) >= self.keep:
                self._summary(seen, now)
                del self._seen[text]


def log_loop_errors(loop: asyncio.AbstractEventLoop, window: float = 60.0) -> RepeatedLog:
    """Make `loop` log the errors it reports (an exception nobody retrieved, a failed
    accept, an exception in a callback) through a RepeatedLog: the first of each whole, as
    asyncio does, with its traceback; its repeats as a count. By message and exception."""
    repeated = RepeatedLog(logging.getLogger("asyncio"), window)

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        text = context.get("message") or "Unhandled exception in event loop"
        exc = context.get("exception")
        if exc is not None:
            text = f"{text}: {type(exc).__name__}: {exc}"
        if repeated.first(text, logging.ERROR):
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
    return repeated

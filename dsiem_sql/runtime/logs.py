"""Logging set-up: plain text, or JSON lines with `timestamp`, `level`, `fields`, `target`.

Both keep each record on one line (JSON through its string escapes); values from events and
configs are cut with `dsiem_sql.logtext.shown` where they enter a message.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

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

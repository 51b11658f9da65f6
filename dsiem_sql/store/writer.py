"""The one connection that writes the database.

aiosqlite runs the connection on its own thread, fed a queue of jobs: the shape of datasette's
write thread. Every write of dsiem-sql (commits, imports, pruning, directive versions, the
WAL checkpoint) is a transaction on it, run whole on that thread as one job, one at a time
and in the order they were asked for; a transaction that fails raises in the coroutine that
asked for it. A fault that passes by
itself (a full disk, a lock held too long) is retried with backoff for `retry_window` seconds.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from dsiem_sql.internals import run_on_thread
from dsiem_sql.store.database import BUSY_TIMEOUT_MS, Sync, describe_error, filename, pragmas
from dsiem_sql.store.errors import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_SQLITE = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
                    sqlite3.SQLITE_IOERR}
TRANSIENT_OS = {errno.ENOSPC, errno.EDQUOT, errno.EIO}
MAX_BACKOFF = 5.0
# CPython gives the interpreter lock to a thread waiting for it once the holder has kept it
# this long; but each short break of the holder (every turn of the event loop, every socket
# read) restarts the wait. At the default 5 ms, the engine's thread, which breaks every few
# milliseconds, kept the writer's thread (which needs the lock back after each statement)
# waiting until the engine waited for that write: writes and correlation took turns instead
# of overlapping, and `replay --db` ran a third slower. Shorter than the engine's breaks,
# the wait ends in time.
SWITCH_INTERVAL = 0.0005  # seconds


class Writer:
    def __init__(self, path: Path, db: aiosqlite.Connection, retry_window: float = 0.0):
        self.path = path
        self.db = db
        self.retry_window = retry_window
        self.failing_since: float | None = None  # monotonic time of the first failed try
        self.retries = 0
        self._turn = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, sync: Sync, retry_window: float = 0.0) -> Writer:
        try:
            db = await aiosqlite.connect(filename(path), isolation_level=None)
            db.row_factory = sqlite3.Row
            for pragma in pragmas(sync):
                await db.execute(pragma)
        except sqlite3.Error as exc:
            raise describe_error(exc, path) from None
        sys.setswitchinterval(SWITCH_INTERVAL)
        return cls(path, db, retry_window)

    @property
    def failing(self) -> bool:
        """The write under way has failed at least once and is being retried."""
        return self.failing_since is not None

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job` on the connection's thread: one hop for the whole job, however many
        statements it runs. (aiosqlite's job queue; its public calls are one hop each, and
        a hop waits for the event loop's next turn, which a busy engine delays.)"""
        return await run_on_thread(self.db, job)

    async def transaction(self, what: str, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job` in one write transaction on the writer's thread, after the transactions
        asked for before it; `what` names it in messages ("commit", "import ...")."""
        async with self._turn:
            return await self.retrying(what, lambda: self.run(partial(_in_transaction, job)))

    async def execute(self, what: str, sql: str, parameters: Sequence[Any]) -> None:
        """Run one write statement, a transaction by itself (SQLite's autocommit): the
        cheapest write, one trip to the writer's thread and back."""
        async with self._turn:
            await self.retrying(what, lambda: self.run(lambda con: con.execute(sql, parameters)))

    async def read(self, sql: str, parameters: Any = ()) -> list[sqlite3.Row]:
        async with self._turn:
            try:
                return await self.run(lambda con: con.execute(sql, parameters).fetchall())
            except sqlite3.Error as exc:
                raise describe_error(exc, self.path) from None

    async def checkpoint(self) -> bool:
        """Truncate the WAL if no reader holds an old snapshot; never waits for one.
        Returns whether it was truncated."""

        def job(con: sqlite3.Connection) -> bool:
            con.execute("PRAGMA busy_timeout = 0")
            try:
                busy = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            return not busy

        async with self._turn:
            try:
                return await self.run(job)
            except sqlite3.Error as exc:
                if transient_cause(exc) is None:
                    raise describe_error(exc, self.path) from None
                return False

    async def retrying(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt`; retry it with backoff while it fails with a fault that can pass,
        for at most `retry_window` seconds from the first failure."""
        delay = 0.1
        while True:
            try:
                result = await attempt()
            except Exception as exc:
                cause = transient_cause(exc)
                if cause is None:
                    if isinstance(exc, sqlite3.Error):
                        raise StoreError(f"cannot {what}: {describe_error(exc, self.path)}"
                                         ) from exc
                    raise
                now = time.monotonic()
                if self.failing_since is None:
                    self.failing_since = now
                failing = now - self.failing_since
                if failing >= self.retry_window:
                    raise StoreError(
                        f"{self.path}: cannot {what} for {failing:.0f} s: {cause}"
                    ) from None
                self.retries += 1
                log.warning(
                    "cannot %s: %s; retry %d in %.1f s (failing for %.0f s, giving up after "
                    "%.0f s)", what, cause, self.retries, delay, failing, self.retry_window,
                )
                await asyncio.sleep(min(delay, self.retry_window - failing))
                delay = min(delay * 2, MAX_BACKOFF)
            else:
                if self.failing_since is not None:
                    log.warning("%s: writing again after %.1f s of failures", self.path,
                                time.monotonic() - self.failing_since)
                    self.failing_since = None
                return result

    async def close(self) -> None:
        await self.db.close()


def _in_transaction(job: Callable[[sqlite3.Connection], T], con: sqlite3.Connection) -> T:
    con.execute("BEGIN IMMEDIATE")
    try:
        result = job(con)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    return result


def transient_cause(exc: BaseException) -> str | None:
    """What went wrong, if `exc` is a fault that can pass by itself; else None."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        return str(exc) if code in TRANSIENT_SQLITE else None
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_OS:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror)
    return None

"""The one connection that writes the database.

aiosqlite runs the connection on its own thread, fed a queue of jobs: the shape of datasette's
write thread. Every write of dsiem-sql (commits, imports, pruning, directive versions, the
WAL checkpoint) is a transaction on it, one at a time and in the order they were asked for;
a transaction that fails raises in the coroutine that asked for it. A fault that passes by
itself (a full disk, a lock held too long) is retried with backoff for `retry_window` seconds.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from dsiem_sql.store.database import BUSY_TIMEOUT_MS, Sync, describe_error, pragmas
from dsiem_sql.store.errors import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_SQLITE = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
                    sqlite3.SQLITE_IOERR}
TRANSIENT_OS = {errno.ENOSPC, errno.EDQUOT, errno.EIO}
MAX_BACKOFF = 5.0


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
            db = await aiosqlite.connect(path, isolation_level=None)
            db.row_factory = sqlite3.Row
            for pragma in pragmas(sync):
                await db.execute(pragma)
        except sqlite3.Error as exc:
            raise describe_error(exc, path) from None
        return cls(path, db, retry_window)

    @property
    def failing(self) -> bool:
        """The write under way has failed at least once and is being retried."""
        return self.failing_since is not None

    async def transaction(
        self, what: str, job: Callable[[aiosqlite.Connection], Awaitable[T]]
    ) -> T:
        """Run `job` in one write transaction, after the transactions asked for before it;
        `what` names it in messages ("commit", "import 1001.json")."""
        async with self._turn:
            return await self.retrying(what, lambda: self._once(job))

    async def _once(self, job: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            result = await job(self.db)
            await self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                await self.db.execute("ROLLBACK")
            raise
        return result

    async def read(self, sql: str, parameters: Any = ()) -> list[sqlite3.Row]:
        async with self._turn:
            try:
                return list(await self.db.execute_fetchall(sql, parameters))
            except sqlite3.Error as exc:
                raise describe_error(exc, self.path) from None

    async def checkpoint(self) -> bool:
        """Truncate the WAL if no reader holds an old snapshot; never waits for one.
        Returns whether it was truncated."""
        async with self._turn:
            await self.db.execute("PRAGMA busy_timeout = 0")
            try:
                rows = await self.db.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                if transient_cause(exc) is None:
                    raise describe_error(exc, self.path) from None
                return False
            finally:
                await self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        busy = next(iter(rows))[0]
        return not busy

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


def transient_cause(exc: BaseException) -> str | None:
    """What went wrong, if `exc` is a fault that can pass by itself; else None."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        return str(exc) if code in TRANSIENT_SQLITE else None
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_OS:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror)
    return None

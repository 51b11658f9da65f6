"""The database as datasette sees it: every connection read-only.

datasette opens a mutable database file with `file:PATH?mode=ro`, PATH not escaped (a `#` or
`?` in it opens another file), and opens a writing connection for whatever asks to write (its
write API, a plugin). `ConsoleDatabase` opens every connection with the escaped read-only URI
of `dsiem-sql sql` (`store.database.connect_read_only`), refuses to open a writing one, and
allows no ATTACH. It is never immutable: `immutable=1` on a file that serve writes would read
stale or torn pages.

Reads hold no snapshot between queries: datasette runs each query as one statement outside any
transaction, so SQLite ends its read transaction when the statement is done, and serve's
checkpoints can reset the WAL (tests/runtime/test_console_wal.py).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from datasette.database import Database

from dsiem_sql.store.database import BUSY_TIMEOUT_MS, lock_holder, read_only_uri


class ReadOnlyConsole(sqlite3.OperationalError):
    """Something asked the console to write the database."""


def now_of(path: Path) -> int:
    """The time the console counts from, as `dsiem-sql explain` does: the wall clock while a
    serve holds the database's writer lock, else the engine clock of the last commit (a
    replay database, a stopped serve), else the wall clock."""
    holder = lock_holder(path)
    if holder is None or holder.role != "serve":
        con = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            row = con.execute("SELECT value FROM engine_state WHERE key = 'clock'").fetchone()
        except sqlite3.Error:
            row = None
        finally:
            con.close()
        if row is not None:
            return int(row[0])
    return int(time.time())


class ConsoleDatabase(Database):
    def __init__(self, ds: Any, path: Path):
        super().__init__(ds, path=str(path), is_mutable=True)
        self.file = Path(path)

    def connect(self, write: bool = False) -> sqlite3.Connection:
        if write:
            raise ReadOnlyConsole(
                f"{self.file}: the console opens the database read-only and never writes it")
        conn = sqlite3.connect(read_only_uri(self.file), uri=True, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)  # ATTACH would open other files
        conn.create_function("dsiem_now", 0, lambda: now_of(self.file))
        return conn

"""Read-only queries for operators (`dsiem-sql sql`). Never blocks the writer (WAL)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dsiem_sql.store.database import (
    BUSY_TIMEOUT_MS,
    StoreError,
    check_database_file,
    connect_read_only,
)

PROGRESS_STEPS = 10_000  # SQLite VM steps between two looks at the clock
JOURNAL_MODE = re.compile(r"\s*PRAGMA\s+(\w+\s*\.\s*)?journal_mode\s*[=(]", re.IGNORECASE)


def read_query(
    path: Path, query: str, parameters: list[Any] | None = None, timeout: float | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one statement on a read-only connection (`mode=ro`); writes fail. A statement
    still running after `timeout` seconds is interrupted."""
    check_database_file(path, must_exist=True)
    con = connect_read_only(path, timeout=BUSY_TIMEOUT_MS / 1000)
    deadline = time.monotonic() + timeout if timeout else None
    try:
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # ATTACH and VACUUM INTO would create or write other database files
        con.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        if deadline is not None:
            con.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
        cursor = con.execute(query, tuple(parameters or ()))
        if cursor.description is None:
            return [], []
        return [d[0] for d in cursor.description], cursor.fetchall()
    except sqlite3.Error as exc:
        if deadline is not None and time.monotonic() > deadline and \
                getattr(exc, "sqlite_errorname", "") == "SQLITE_INTERRUPT":
            raise StoreError(f"{path}: query stopped after {timeout:g} s (--timeout)") from None
        raise StoreError(f"{path}: {_explain(exc, path, query)}") from None
    finally:
        con.close()


@contextmanager
def read_transaction(path: Path, command: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection (`mode=ro`) inside one read transaction: every query sees the
    same commit, while a writer goes on (WAL). Errors become `StoreError`s that name the file."""
    check_database_file(path, must_exist=True)
    try:
        con = connect_read_only(path, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: {_explain(exc, path, '', command)}") from None
    con.isolation_level = None  # the transaction is this one's own BEGIN and COMMIT
    try:
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        con.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        con.execute("BEGIN")
        yield con
        con.execute("COMMIT")
    except sqlite3.Error as exc:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            raise StoreError(f"{path}: not a usable SQLite database ({text})") from None
        raise StoreError(f"{path}: {_explain(exc, path, '', command)}") from None
    finally:
        con.close()


def _explain(exc: sqlite3.Error, path: Path, query: str, command: str = "dsiem-sql sql") -> str:
    """The driver's message, unless it is misleading here."""
    if JOURNAL_MODE.match(query):
        return f"cannot change the journal mode: {command} opens the database read-only"
    directory = Path(path).resolve().parent
    if _is_wal(path) and not Path(f"{path}-shm").exists() and not os.access(directory, os.W_OK):
        read_only_fs = os.statvfs(directory).f_flag & os.ST_RDONLY
        why = "is on a read-only file system" if read_only_fs else "is not writable by this user"
        name = Path(path).name
        return (
            f"cannot read this WAL database: SQLite must create {name}-shm and {name}-wal "
            f"next to it, but the directory {directory} {why}; run {command} as a user "
            "who may write there (such as the user of dsiem-sql serve), "
            "or query a copy of the database"
        )
    message = str(exc).splitlines()[0]
    if any(w in message for w in ("readonly", "read-only", "attached databases")):
        message += f" ({command} opens the database read-only)"
    return message


def _is_wal(path: Path) -> bool:
    """Byte 18 of the header is 2 in a database in WAL mode."""
    try:
        with open(path, "rb") as f:
            return f.read(19)[18:] == b"\x02"
    except OSError:
        return False


def format_rows(columns: list[str], rows: list[tuple[Any, ...]], style: str) -> str:
    """The rows as JSON (a list of objects) or CSV (a header, then one line a row); the
    `sql` command prints tables itself (`dsiem_sql.cli.tables`)."""
    if style == "json":
        return json.dumps([dict(zip(columns, r, strict=True)) for r in rows], indent=2) + "\n"
    if style != "csv":
        raise ValueError(f"unknown format {style!r}")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def present_backlog_ids(db: Path, ids: list[str]) -> set[str]:
    """Which of the alarm ids `ids` the database holds (read-only; none if it is missing)."""
    if not Path(db).exists():
        return set()
    _, found = read_query(
        db, "SELECT id FROM backlogs WHERE id IN (SELECT value FROM json_each(?))",
        [json.dumps(ids)])
    return {r[0] for r in found}

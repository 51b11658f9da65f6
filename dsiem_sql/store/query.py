"""Read-only queries for operators (`dsiem-sql sql`). Never blocks the writer (WAL)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from dsiem_sql.store.database import BUSY_TIMEOUT_MS, StoreError, check_database_file


def read_query(
    path: Path, query: str, parameters: list[Any] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one statement on a read-only connection (`mode=ro`); writes fail."""
    check_database_file(path, must_exist=True)
    uri = f"file:{Path(path).resolve()}?mode=ro"

    def connect() -> sqlite3.Connection:
        con = sqlite3.connect(uri, uri=True)
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # ATTACH and VACUUM INTO would create or write other database files
        con.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        return con

    engine = create_engine("sqlite://", creator=connect)
    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(query, tuple(parameters or ()))
            if not result.returns_rows:
                return [], []
            return list(result.keys()), [tuple(r) for r in result.all()]
    except Exception as exc:  # the driver's message is the clearest explanation
        message = str(getattr(exc, "orig", exc)).splitlines()[0]
        if any(w in message for w in ("readonly", "read-only", "attached databases")):
            message += " (dsiem-sql sql opens the database read-only)"
        raise StoreError(f"{path}: {message}") from None
    finally:
        engine.dispose()


def format_rows(columns: list[str], rows: list[tuple[Any, ...]], style: str) -> str:
    if style == "json":
        return json.dumps([dict(zip(columns, r, strict=True)) for r in rows], indent=2) + "\n"
    if style == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return buf.getvalue()
    text = [[("" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in text]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines) + "\n"

"""The console's datasette in-process, on a real database file (issue 20): whatever asks
datasette to write (its write API, a plugin) gets an error and the file is unchanged; every
connection is read-only and cannot ATTACH; `dsiem_now()` is the clock of explain (the wall
clock under a serve, else the engine clock)."""

from __future__ import annotations

import sqlite3
import time

import pytest
from kit import CONFIGS, EXAMPLES, ok, replay

from dsiem_sql.console.database import ReadOnlyConsole
from dsiem_sql.console.metadata import DATABASE
from dsiem_sql.console.serve import ConsoleOptions, console
from dsiem_sql.store.database import WriterLock

pytestmark = pytest.mark.asyncio


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "state.db"
    ok(replay(CONFIGS, tmp_path / "out", EXAMPLES / "events.jsonl", "--db", path))
    return path


def backlogs(path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM backlogs").fetchone()[0]
    finally:
        con.close()


async def test_a_write_asked_of_datasette_is_refused(db):
    ds = console(ConsoleOptions(db))
    database = ds.get_database(DATABASE)
    for attempt in (lambda: database.execute_write("DELETE FROM backlogs"),
                    lambda: database.execute_write_script("DELETE FROM backlogs;"),
                    lambda: database.execute_write_fn(lambda con: con.execute("VACUUM"))):
        with pytest.raises(ReadOnlyConsole, match="opens the database read-only"):
            await attempt()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await database.execute_fn(lambda con: con.execute("DELETE FROM backlogs"))
    with pytest.raises(sqlite3.OperationalError, match="too many attached databases"):
        await database.execute_fn(
            lambda con: con.execute("ATTACH ? AS other", (str(db.parent / "other.db"),)))
    assert backlogs(db) == 6
    assert not (db.parent / "other.db").exists()


async def test_dsiem_now_is_the_clock_explain_counts_from(db):
    ds = console(ConsoleOptions(db))
    database = ds.get_database(DATABASE)

    async def now() -> int:
        return (await database.execute("SELECT dsiem_now()")).first()[0]

    engine = (await database.execute(
        "SELECT value FROM engine_state WHERE key = 'clock'")).first()[0]
    assert await now() == engine == 1714558000  # the newest event time of the replay
    lock = WriterLock(db, role="serve")
    lock.acquire(db)
    try:
        assert abs(await now() - time.time()) < 5
    finally:
        lock.release()
    assert await now() == engine

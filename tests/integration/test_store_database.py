"""Opening the database: migrations, connection settings, the writer lock and bad input.

Everything runs on real SQLite files in `tmp_path`; the CLI runs as a real process.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import kit
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from dbcompare import migrate
from kit import CONFIGS, EXAMPLES, cli
from sqlalchemy import Column, Index, Integer, MetaData, Table, exc

from dsiem_sql.store import rows, schema
from dsiem_sql.store.database import (
    BUSY_TIMEOUT_MS,
    HEAD_REVISION,
    StoreError,
    WriterLock,
    current_revision,
    head_revision,
    sync_engine,
    upgrade,
)
from dsiem_sql.store.schema import VIEWS, metadata
from dsiem_sql.store.writer import Writer

TABLES = set(metadata.tables)


def replay(db: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return kit.replay(CONFIGS, out, EXAMPLES / "events.jsonl", "--db", db, *extra)


def objects(db: Path) -> dict[str, set[str]]:
    """Names in sqlite_master by type (tables, views, indexes), read with plain sqlite3."""
    con = sqlite3.connect(db)
    try:
        found: dict[str, set[str]] = {}
        for kind, name in con.execute("SELECT type, name FROM sqlite_master"):
            if not name.startswith("sqlite_"):
                found.setdefault(kind, set()).add(name)
        return found
    finally:
        con.close()


def schema_sql(db: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        con.close()


def query(db: Path, sql: str, *params: object) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


# -- migrations --------------------------------------------------------------------------


def test_the_cheap_revision_check_knows_the_newest_migration():
    assert head_revision() == HEAD_REVISION


def test_migrations_and_metadata_agree(tmp_path):
    db = tmp_path / "fresh.db"
    assert upgrade(db) == head_revision()
    engine = sync_engine(db)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(ctx, metadata) == []

            # the comparison does see the schema: a drifted metadata is reported
            drifted = MetaData()
            for table in metadata.tables.values():
                table.to_metadata(drifted)
            Table("not_migrated", drifted, Column("x", Integer))
            Index("ix_not_migrated", drifted.tables["outbox"].c.file)
            drifted.tables["engine_state"].append_column(Column("extra", Integer))
            kinds = {
                d[0] if isinstance(d, tuple) else d[0][0]
                for d in compare_metadata(MigrationContext.configure(conn), drifted)
            }
            assert kinds == {"add_table", "add_index", "add_column"}
    finally:
        engine.dispose()


def test_db_upgrade_creates_tables_and_views_and_is_idempotent(tmp_path):
    db = tmp_path / "state.db"
    first = cli("db", "upgrade", "--db", str(db))
    assert first.returncode == 0, first.stderr
    assert f"revision {head_revision()}" in first.stdout
    found = objects(db)
    assert found["table"] == TABLES | {"alembic_version"}
    assert found["view"] == {"live_backlogs", "alarms", "alarm_events", "alarm_intel",
                             "alarm_vulns", "config_reloads", "suppressions"} == set(VIEWS)
    assert query(db, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
    # the views compile against the tables (a broken view fails only when used)
    for view in VIEWS:
        assert query(db, f"SELECT * FROM {view}") == []

    before = schema_sql(db)
    con = sqlite3.connect(db)
    with con:
        con.execute("INSERT INTO engine_state VALUES ('clock', 42)")
    con.close()
    second = cli("db", "upgrade", "--db", str(db))
    assert second.returncode == 0, second.stderr
    assert schema_sql(db) == before
    assert query(db, "SELECT * FROM engine_state") == [("clock", 42)]
    assert query(db, "SELECT count(*) FROM alembic_version") == [(1,)]
    assert upgrade(db) == head_revision()  # and once more in-process
    assert schema_sql(db) == before


def upgrade_to(db: Path, revision: str) -> None:
    """Create `db` at an older schema revision, as an older dsiem-sql left it."""
    migrate(db, revision)


def test_a_0003_database_gets_the_event_details_of_its_links_as_nulls(tmp_path):
    """Revision 0004 adds the time, addresses and ports of each stage event: the rows of an
    older database keep NULL there (explain says "not recorded"), new links fill them."""
    db, out = tmp_path / "state.db", tmp_path / "out"
    upgrade_to(db, "0003")
    con = sqlite3.connect(db)
    with con:
        con.execute("INSERT INTO directive_versions VALUES (1, 7, 'sha', '{}')")
        con.execute(
            "INSERT INTO backlogs VALUES ('old', 0, 7, 1, 'live', 't', 'Open', 'x', 2, 2,"
            " 0, '', '[]', '[]', '[]', '[]', 0, 0, 0, 0, 0, NULL, '[]', '[]')")
        con.execute("INSERT INTO stages VALUES ('old', 1, '{}', 1, 'finished', 0, 0, NULL, '[]')")
        # live, of a directive the config does not have: replay leaves it as it is
        con.execute("INSERT INTO stage_events VALUES (1, 'old', 1, 'e1')")
    con.close()
    assert current_revision(db) == "0003"

    ok_run = replay(db, out)  # upgrades first, then commits links with their details
    assert ok_run.returncode == 0, ok_run.stderr
    assert current_revision(db) == head_revision()
    assert query(db, "SELECT * FROM stage_events WHERE backlog_id = 'old'") == [
        (1, "old", 1, "e1", None, None, None, None, None)]
    sent = {}
    for line in (EXAMPLES / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        try:
            ts = int(datetime.fromisoformat(e["timestamp"]).timestamp())
        except ValueError:
            continue  # the examples' invalid event
        sent[e["event_id"]] = (ts, e["src_ip"], e["dst_ip"], e.get("src_port", 0),
                               e.get("dst_port", 0))
    links = query(db, "SELECT event_id, event_time, src_ip, dst_ip, src_port, dst_port"
                      " FROM stage_events WHERE backlog_id != 'old'")
    assert len(links) > 10
    assert all(sent[event_id] == tuple(details) for event_id, *details in links)
    # the alarm-event lines keep their three keys
    lines = (out / "siem_alarm_events.json").read_text().splitlines()
    assert len(lines) == len(links)
    assert {tuple(json.loads(line)) for line in lines} == {("alarm_id", "stage", "event_id")}

    # and back: the downgrade drops the columns and keeps the rows
    migrate(db, "0003", downgrade=True)
    assert query(db, "SELECT count(*) FROM stage_events") == [(len(links) + 1,)]
    assert [c[1] for c in query(db, "PRAGMA table_info(stage_events)")] == [
        "id", "backlog_id", "stage", "event_id"]


def test_db_current_prints_the_revision_without_changing_the_file(tmp_path):
    db = tmp_path / "state.db"
    upgrade(db)
    before = snapshot(db)
    run = cli("db", "current", "--db", str(db))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"{db}: schema at revision {head_revision()} (newest)"
    assert snapshot(db) == before
    assert current_revision(db) == head_revision()

    missing = tmp_path / "missing.db"
    run = cli("db", "current", "--db", str(missing))
    assert run.returncode == 1
    assert f"{missing}: no such database" in run.stderr
    assert not missing.exists()


def test_db_current_says_when_the_schema_is_newer_than_the_code(tmp_path):
    db = tmp_path / "state.db"
    upgrade(db)
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE alembic_version SET version_num = '9999'")
    con.close()
    run = cli("db", "current", "--db", str(db))
    assert run.returncode == 0, run.stderr
    assert "revision 9999 (newer than this dsiem-sql" in run.stdout
    assert f"newest is {head_revision()}" not in run.stdout


def test_replay_upgrades_the_database_first(tmp_path):
    db = tmp_path / "empty.db"
    db.touch()  # an empty file is a database without a schema
    run = replay(db, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert current_revision(db) == head_revision()
    assert set(VIEWS) <= objects(db)["view"]
    assert query(db, "SELECT count(*) FROM backlogs")[0][0] > 0


def test_retention_prunes_ended_backlogs_and_their_links_but_never_live_ones(tmp_path):
    db, out = tmp_path / "state.db", tmp_path / "out"
    run = replay(db, out, "--retention-days", "0")
    assert run.returncode == 0, run.stderr
    states = {s for (s,) in query(db, "SELECT DISTINCT state FROM backlogs")}
    assert states == {"live"}
    # the examples finish two backlogs: their alarm lines exist, their rows are gone
    finished = {
        json.loads(line)["alarm_id"]
        for line in (out / "siem_alarms.json").read_text().splitlines()
    } - {i for (i,) in query(db, "SELECT id FROM backlogs")}
    assert len(finished) == 2
    marks = ",".join("?" * len(finished))
    for table in ("stages", "stage_events"):
        assert query(db, f"SELECT count(*) FROM {table} WHERE backlog_id IN ({marks})",
                     *finished) == [(0,)]
    assert query(db, "SELECT count(*) FROM stage_events")[0][0] > 0  # live links are kept


# -- connection settings -----------------------------------------------------------------


@pytest.mark.parametrize(("sync", "level"), [("normal", 1), ("full", 2)])
def test_sync_engine_pragmas(tmp_path, sync, level):
    db = tmp_path / "state.db"
    upgrade(db)
    engine = sync_engine(db, sync)
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        engine.dispose()
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": level,
        "foreign_keys": 1,
        "busy_timeout": BUSY_TIMEOUT_MS,
    }
    assert BUSY_TIMEOUT_MS == 5000
    # WAL is recorded in the file, so plain sqlite3 readers use it too
    assert query(db, "PRAGMA journal_mode") == [("wal",)]


@pytest.mark.parametrize(("sync", "level"), [("normal", 1), ("full", 2)])
async def test_writer_pragmas(tmp_path, sync, level):
    """The Store writes through its Writer connection; it gets the same settings."""
    db = tmp_path / "state.db"
    upgrade(db)
    writer = await Writer.open(db, sync)
    try:
        got = [
            (await writer.read(f"PRAGMA {name}"))[0][0]
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        ]
    finally:
        await writer.close()
    assert got == ["wal", level, 1, BUSY_TIMEOUT_MS]


def test_foreign_keys_are_enforced_and_cascade(tmp_path):
    db = tmp_path / "state.db"
    upgrade(db)
    engine = sync_engine(db)
    backlog = (
        "INSERT INTO backlogs VALUES ('b1', 1, 7, {version}, 'live', 't', 'Open', 'x', 1, 2,"
        " 0, '', '[]', '[]', '[]', '[]', 0, 0, 0, 0, 0, NULL, '[]', '[]')"
    )
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO directive_versions VALUES (1, 7, 'sha', '{}')")
            conn.exec_driver_sql(backlog.format(version=1))
            conn.exec_driver_sql(
                "INSERT INTO stages VALUES ('b1', 1, '{}', 1, '', 0, 0, NULL, '[]')"
            )
            conn.exec_driver_sql(
                "INSERT INTO stage_events (backlog_id, stage, event_id) VALUES ('b1', 1, 'e1')"
            )
            conn.exec_driver_sql(
                "INSERT INTO enrichments VALUES ('b1', 'intel', 'p', 'term', 'r')"
            )
        with pytest.raises(exc.IntegrityError, match="FOREIGN KEY"), engine.begin() as conn:
            conn.exec_driver_sql(backlog.format(version=99).replace("'b1', 1", "'b2', 2"))
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM backlogs WHERE id = 'b1'")
    finally:
        engine.dispose()
    for table in ("backlogs", "stages", "stage_events", "enrichments"):
        assert query(db, f"SELECT count(*) FROM {table}") == [(0,)], table


def test_replay_accepts_db_sync_full(tmp_path):
    db = tmp_path / "state.db"
    run = replay(db, tmp_path / "out", "--db-sync", "full")
    assert run.returncode == 0, run.stderr
    assert query(db, "SELECT count(*) FROM live_backlogs")[0][0] > 0
    assert (tmp_path / "out" / "siem_alarms.json").stat().st_size > 0


# -- the writer lock ---------------------------------------------------------------------


def test_writer_lock_is_exclusive_and_released(tmp_path):
    db = tmp_path / "state.db"
    upgrade(db)
    first, second = WriterLock(db), WriterLock(db)
    first.acquire(db)
    try:
        assert Path(f"{db}.lock").is_file()
        with pytest.raises(StoreError, match="locked by another dsiem-sql writer"):
            second.acquire(db)
    finally:
        first.release()
    second.acquire(db)  # free again once released
    second.release()


# -- bad input ---------------------------------------------------------------------------


def make_read_only(path: Path) -> Callable[[], None]:
    """Make `path` (a file or directory) unwritable, also for root; returns the undo.

    Root ignores file modes, so as root the immutable attribute is used (`chattr +i`);
    the test is skipped when that is not possible (no chattr, no CAP_LINUX_IMMUTABLE, or a
    file system without attributes such as tmpfs).
    """
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        return lambda: path.chmod(mode)
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root (file modes do not apply) and chattr is not installed")
    done = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"running as root and `chattr +i` failed: {done.stderr.strip()}")
    return lambda: subprocess.run([chattr, "-i", str(path)], check=True)


def _assert_unwritable(path: Path) -> None:
    probe = path / "probe" if path.is_dir() else path
    try:
        with probe.open("ab"):
            pass
    except OSError:
        return
    pytest.fail(f"{path} is still writable; the read-only setup did not work")


BAD_CASES = {
    # case: (phrase the error must contain, whether the directory listing must stay the same)
    "not_sqlite": ("not an SQLite database", True),
    "newer_schema": ("newer than this dsiem-sql", False),
    "locked": ("locked", False),
    "read_only_file": ("read-only", False),
    "read_only_dir": ("read-only", True),
    "directory": ("not a regular file", True),
    "missing_dir": ("does not exist", True),
}


@pytest.fixture(params=list(BAD_CASES))
def bad_db(request, tmp_path) -> Iterator[tuple[Path, str, bool]]:
    case = request.param
    phrase, same_listing = BAD_CASES[case]
    where = tmp_path / "data"
    where.mkdir()
    db = where / "state.db"
    undo: Callable[[], None] | None = None
    lock: WriterLock | None = None
    if case == "not_sqlite":
        db.write_text("this is a text file, not a database\n" * 10)
    elif case == "newer_schema":
        upgrade(db)
        con = sqlite3.connect(db)
        with con:
            con.execute("UPDATE alembic_version SET version_num = '9999'")
        con.close()
    elif case == "locked":
        upgrade(db)
        lock = WriterLock(db)
        lock.acquire(db)  # flock is per open file description: another process sees it held
    elif case == "read_only_file":
        upgrade(db)
        undo = make_read_only(db)
        _assert_unwritable(db)
    elif case == "read_only_dir":
        upgrade(db)
        earlier = WriterLock(db)  # an earlier run leaves the lock file behind
        earlier.acquire(db)
        earlier.release()
        undo = make_read_only(where)
        _assert_unwritable(where)
    elif case == "directory":
        db.mkdir()
    elif case == "missing_dir":
        db = where / "nowhere" / "state.db"
    try:
        yield db, phrase, same_listing
    finally:
        if lock is not None:
            lock.release()
        if undo is not None:
            undo()


@pytest.mark.parametrize("command", ["replay", "db upgrade"])
def test_bad_database_gives_a_clear_error_and_leaves_it_untouched(bad_db, command, tmp_path):
    db, phrase, same_listing = bad_db
    listing = sorted(p.name for p in db.parent.parent.rglob("*"))
    before = snapshot(db) if db.is_file() else None
    out = tmp_path / "out"
    run = replay(db, out) if command == "replay" else cli("db", "upgrade", "--db", str(db))
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, run.stderr
    assert errors[0].startswith(f"error: {db}: ")
    assert phrase in errors[0]
    if before is not None:
        assert snapshot(db) == before
    else:
        assert not db.is_file()  # not created
    if same_listing:  # nothing created beside it either (no lock file, no -wal/-shm)
        assert sorted(p.name for p in db.parent.parent.rglob("*")) == listing
    assert not (out / "siem_alarms.json").exists()


def test_the_row_columns_are_the_tables_columns_in_their_order():
    def names(table) -> list[str]:
        return [c.name for c in table.c]

    backlogs = names(schema.backlogs)
    backlogs.remove("directive_version")  # the writer appends it
    assert [*backlogs, "directive_version"] == list(rows.BACKLOG_COLUMNS)
    assert names(schema.stages) == list(rows.STAGE_COLUMNS)
    assert names(schema.stage_events)[1:] == list(rows.LINK_COLUMNS)  # without its id
    assert names(schema.enrichments) == list(rows.ENRICHMENT_COLUMNS)
    assert names(schema.outbox) == list(rows.OUTBOX_COLUMNS)

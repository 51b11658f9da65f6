"""`dsiem-sql sql`: read-only queries on a database a replay filled, as a real process."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from kit import CONFIGS, EXAMPLES, ROOT, cli, ok, replay

from dsiem_sql.store.database import WriterLock, connect_read_only
from dsiem_sql.store.query import read_query

COLUMNS = {
    "live_backlogs": [
        "alarm_id", "directive_id", "title", "current_stage", "highest_stage", "stage_events",
        "stage_occurrence", "risk", "risk_class", "src_ips", "dst_ips", "created_time",
        "update_time", "expires_at",
    ],
    "alarms": [
        "alarm_id", "directive_id", "title", "status", "tag", "risk", "risk_class", "state",
        "created_time", "update_time",
    ],
    "alarm_events": ["alarm_id", "stage", "event_id"],
}


def sql(db: Path, statement: str, *options: str, **kw) -> subprocess.CompletedProcess[str]:
    return cli("sql", "--db", db, *options, statement, **kw)


def direct(db: Path, statement: str, *params: object) -> list[tuple]:
    """The same query through a plain read-only sqlite3 connection."""
    con = connect_read_only(db)
    try:
        return con.execute(statement, params).fetchall()
    finally:
        con.close()


def records(db: Path, statement: str) -> list[dict]:
    """Rows as dicts, through the library function the sql command uses (in-process)."""
    columns, rows = read_query(db, statement)
    return [dict(zip(columns, r, strict=True)) for r in rows]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> tuple[Path, Path]:
    """One replay of the examples with a database (no final sweep: live backlogs remain)."""
    where = tmp_path_factory.mktemp("replayed")
    db, out = where / "state.db", where / "out"
    ok(replay(CONFIGS, out, EXAMPLES / "events.jsonl", "--db", db))
    assert not Path(f"{db}-wal").exists()  # the writer checkpointed on close: one file
    return db, out


@pytest.fixture
def db(replayed, tmp_path) -> Path:
    """A private copy, so a test that manages to write cannot spoil the others."""
    copy = tmp_path / "state.db"
    shutil.copyfile(replayed[0], copy)
    return copy


def test_the_replay_left_live_and_ended_backlogs(db):
    states = Counter(s for (s,) in direct(db, "SELECT state FROM backlogs"))
    assert states["live"] >= 2 and states["finished"] >= 1, states


@pytest.mark.parametrize("view", list(COLUMNS))
def test_json_format_has_the_view_columns_and_the_rows(db, view):
    run = sql(db, f"SELECT * FROM {view}", "--format", "json")
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    expected = direct(db, f"SELECT * FROM {view}")
    assert len(got) == len(expected) > 0
    assert all(list(r) == COLUMNS[view] for r in got)
    assert sorted(tuple(r.values()) for r in got) == sorted(expected)


@pytest.mark.parametrize("view", list(COLUMNS))
def test_csv_format_has_the_view_columns_and_the_rows(db, view):
    run = sql(db, f"SELECT * FROM {view}", "--format", "csv")
    assert run.returncode == 0, run.stderr
    header, *rows = list(csv.reader(io.StringIO(run.stdout)))
    assert header == COLUMNS[view]
    rows_now = direct(db, f"SELECT * FROM {view}")
    expected = [["" if v is None else str(v) for v in r] for r in rows_now]
    assert sorted(rows) == sorted(expected)


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def test_table_format(db):
    """An ASCII table of every value whole, piped: one line a row, however long."""
    run = sql(db, "SELECT * FROM live_backlogs ORDER BY alarm_id", env={"COLUMNS": None})
    assert run.returncode == 0, run.stderr
    top, header, rule, *body, bottom, count = run.stdout.splitlines()
    assert set(top) == set(bottom) == {"+", "-"}
    assert cells(header) == COLUMNS["live_backlogs"]
    assert set(rule) == {"|", "-", "+"}
    expected = direct(db, "SELECT * FROM live_backlogs ORDER BY alarm_id")
    assert count == f"({len(expected)} rows)"
    assert [cells(row) for row in body] == [
        ["" if v is None else str(v) for v in r] for r in expected]
    # columns line up: every value starts where its header starts
    assert len({len(line) for line in (top, header, rule, *body, bottom)}) == 1
    start = header.index("| title ")
    for row in body:
        assert row[start] == "|"

    one = sql(db, "SELECT count(*) AS n FROM alarms")
    assert one.stdout.splitlines()[-1] == "(1 row)"


def test_table_values_are_text_not_markup(db):
    run = sql(db, "SELECT '[bold]x[/]' AS a, ':smile:' AS b, NULL AS c, 'é😀' AS d")
    assert run.returncode == 0, run.stderr
    assert cells(run.stdout.splitlines()[3]) == ["[bold]x[/]", ":smile:", "", "é😀"]


def test_live_backlogs_view_values(db):
    """stage_events and stage_occurrence describe the current stage; expires_at its deadline."""
    rows = records(db, "SELECT * FROM live_backlogs")
    for r in rows:
        at = (r["alarm_id"], r["current_stage"])
        [(events,)] = direct(
            db, "SELECT count(*) FROM stage_events WHERE backlog_id = ? AND stage = ?", *at
        )
        assert r["stage_events"] == events
        [(rule, start)] = direct(
            db, "SELECT rule, start_time FROM stages WHERE backlog_id = ? AND stage = ?", *at
        )
        assert r["stage_occurrence"] == json.loads(rule)["occurrence"]
        assert r["expires_at"] == start + json.loads(rule)["timeout"]
        assert isinstance(json.loads(r["src_ips"]), list)
    live = {i for (i,) in direct(db, "SELECT id FROM backlogs WHERE state = 'live'")}
    assert {r["alarm_id"] for r in rows} == live


def test_alarms_view_matches_the_alarm_file(replayed, db):
    _, out = replayed
    in_file = {r["alarm_id"] for r in lines(out / "siem_alarms.json")}
    rows = records(db, "SELECT * FROM alarms")
    assert {r["alarm_id"] for r in rows} == in_file
    assert len(rows) == len(in_file)  # one row per alarm, however many alarm lines
    assert {r["state"] for r in rows} >= {"live", "finished"}
    # live backlogs that never reached risk 1 are not alarms
    quiet = direct(db, "SELECT id FROM backlogs WHERE state = 'live' AND created_time = 0")
    assert quiet and not {i for (i,) in quiet} & in_file


def test_alarm_events_view_matches_the_alarm_events_file(replayed, db):
    _, out = replayed
    in_file = Counter(
        (r["alarm_id"], r["stage"], r["event_id"]) for r in lines(out / "siem_alarm_events.json")
    )
    rows = records(db, "SELECT * FROM alarm_events")
    assert Counter((r["alarm_id"], r["stage"], r["event_id"]) for r in rows) == in_file


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM backlogs",
        "CREATE TABLE x(a)",
        "DROP VIEW alarms",
        "PRAGMA user_version = 5",
    ],
)
def test_writes_are_rejected_and_the_data_stays(db, statement):
    before = db.read_bytes()
    counts = direct(db, "SELECT (SELECT count(*) FROM backlogs), (SELECT count(*) FROM alarms)")
    run = sql(db, statement)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith(f"error: {db}: ")
    assert "read-only" in run.stderr
    assert db.read_bytes() == before
    assert direct(db, "SELECT (SELECT count(*) FROM backlogs), (SELECT count(*) FROM alarms)") \
        == counts
    names = {n for (n,) in direct(db, "SELECT name FROM sqlite_master")}
    assert "x" not in names and "alarms" in names


@pytest.mark.parametrize("statement", ["VACUUM INTO '{dir}/copy.db'", "ATTACH '{dir}/a.db' AS a"])
def test_no_other_database_file_is_written(db, tmp_path, statement):
    run = sql(db, statement.format(dir=tmp_path))
    assert run.returncode == 1
    assert "read-only" in run.stderr
    assert not (tmp_path / "copy.db").exists() and not (tmp_path / "a.db").exists()


def test_syntax_error_is_a_clear_error(db):
    run = sql(db, "SELEC * FROM alarms")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip() == f'error: {db}: near "SELEC": syntax error'


def test_bad_database_paths(tmp_path):
    missing = tmp_path / "missing.db"
    run = sql(missing, "SELECT 1")
    assert (run.returncode, run.stderr.strip()) == (1, f"error: {missing}: no such database")
    assert not missing.exists()  # mode=ro never creates the file

    text = tmp_path / "notes.db"
    text.write_text("not a database\n")
    run = sql(text, "SELECT 1")
    assert (run.returncode, run.stderr.strip()) == (1, f"error: {text}: not an SQLite database")
    assert text.read_text() == "not a database\n"


def test_works_while_a_writer_holds_a_write_transaction(db):
    lock = WriterLock(db)
    lock.acquire(db)  # a writer is running
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO engine_state VALUES ('uncommitted', 1)")
        writer.execute("DELETE FROM stage_events")
        committed = direct(db, "SELECT count(*) FROM stage_events")[0][0]
        # the reader does not wait for the writer: waiting, it would fail after the busy
        # timeout, as the writer holds its transaction until the reader is done
        run = sql(db, "SELECT (SELECT count(*) FROM alarm_events) AS links,"
                      " (SELECT count(*) FROM engine_state WHERE key = 'uncommitted') AS probe",
                  "--format", "json")
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == [{"links": committed, "probe": 0}]
        assert committed > 0
        # the writer is unaffected and can still commit
        writer.execute("COMMIT")
    finally:
        writer.close()
        lock.release()
    assert direct(db, "SELECT count(*) FROM stage_events") == [(0,)]


def test_sql_leaves_the_database_file_unchanged(db):
    before = db.read_bytes(), db.stat().st_mtime_ns
    everything = " UNION ALL ".join(f"SELECT count(*) FROM {view}" for view in COLUMNS)
    assert sql(db, everything).returncode == 0
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 command is not installed")
def test_the_sqlite3_command_reads_the_views(db):
    for view in COLUMNS:
        run = subprocess.run(
            ["sqlite3", str(db), f"select count(*) from {view}"],
            capture_output=True, text=True, timeout=30,
        )
        assert run.returncode == 0, run.stderr
        assert int(run.stdout) == direct(db, f"SELECT count(*) FROM {view}")[0][0] > 0


def test_the_example_queries_of_the_schema_docs_run(db):
    queries = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "schema.md").read_text(), re.S)
    assert len(queries) >= 5
    for statement in queries:
        columns, rows = read_query(db, statement)
        assert columns, statement
        if "alarm_id = '" not in statement:  # the one with a made-up alarm id may find nothing
            assert rows, statement


ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def test_a_query_that_runs_too_long_is_stopped(db):
    run = sql(db, ENDLESS, "--timeout", "1", timeout=20)  # a hang guard
    assert (run.returncode, run.stderr.strip()) == (
        1, f"error: {db}: query stopped after 1 s (--timeout)")


def test_a_negative_timeout_is_refused(db):
    run = sql(db, "SELECT 1", "--timeout", "-1")
    assert run.returncode == 1
    assert "Invalid value for '--timeout'" in run.stderr


@pytest.mark.parametrize("statement", ["PRAGMA journal_mode=DELETE",
                                       "pragma main.journal_mode = 'truncate'"])
def test_changing_the_journal_mode_is_a_clear_error(db, statement):
    before = db.read_bytes()
    run = sql(db, statement)
    assert (run.returncode, run.stderr.strip()) == (
        1, f"error: {db}: cannot change the journal mode: "
           "dsiem-sql sql opens the database read-only")
    assert db.read_bytes() == before


@pytest.mark.parametrize("way", ["another-users-directory", "read-only-mount"])
def test_a_wal_database_in_a_directory_it_cannot_write(replayed, tmp_path, way):
    """SQLite must create <db>-shm next to a WAL database even to read it."""
    where = tmp_path / "data"
    where.mkdir()
    prefix: list[str] = []
    if way == "read-only-mount":
        run = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs: {run.stderr.strip()}")
        shutil.copyfile(replayed[0], where / "state.db")
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        reason = "is on a read-only file system"
    else:
        if shutil.which("setpriv") is None or os.geteuid() != 0:
            pytest.skip("needs root and setpriv, to run the command without the right to "
                        "write to any directory")
        shutil.copyfile(replayed[0], where / "state.db")
        os.chown(where, 65534, 65534)
        where.chmod(0o555)
        # root, without the capabilities that let it write where the mode bits say no
        prefix = ["setpriv", "--inh-caps=-all",
                  "--bounding-set=-dac_override,-dac_read_search,-fowner"]
        reason = "is not writable by this user"
    db = where / "state.db"
    try:
        assert db.read_bytes()[18] == 2  # a WAL database
        run = sql(db, "SELECT count(*) FROM alarms", prefix=prefix)
        assert run.returncode == 1
        assert run.stderr.strip() == (
            f"error: {db}: cannot read this WAL database: SQLite must create state.db-shm "
            f"and state.db-wal next to it, but the directory {where} {reason}; run dsiem-sql "
            "sql as a user who may write there (such as the user of dsiem-sql serve), "
            "or query a copy of the database")
        assert sorted(p.name for p in where.iterdir()) == ["state.db"]
    finally:
        if way == "read-only-mount":
            subprocess.run(["umount", str(where)], check=False)

"""`dsiem-sql console` as a process (issue 20): what it serves of a database (the views with
their descriptions, JSON and CSV as `dsiem-sql sql` gives them, the canned queries, the stories
of `dsiem-sql explain`, the dashboard's files from the console itself), that nothing can be
written through it, its time and row limits, a path with URI characters, and its errors,
the missing extra among them. The browser tests are in tests/service/test_console_browser.py,
the WAL under load in tests/runtime/test_console_wal.py."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from consolekit import Console
from kit import CONFIGS, EXAMPLES, cli, ok, replay

VIEWS = ("live_backlogs", "alarms", "alarm_events", "alarm_intel", "alarm_vulns",
         "config_reloads")
CANNED = ("live_by_risk", "expiring", "alarms_24h", "top_sources", "address",
          "latest_reloads", "story_events")
SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def replayed(directory: Path, name: str = "state.db") -> Path:
    """A database of the example events, replayed: 4 live backlogs, 4 alarms."""
    db = directory / name
    ok(replay(CONFIGS, directory / "out", EXAMPLES / "events.jsonl", "--db", db))
    return db


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One console over a replayed database, for the tests that only read."""
    work = tmp_path_factory.mktemp("console")
    db = replayed(work)
    console = Console(db, workdir=work / "run").start()
    yield console
    console.stop()


def ids(db: Path) -> dict[str, str]:
    """The ids of the replayed backlogs (new ones each replay): the live Ping Flood from
    10.0.0.1 (risk 2), the other live ones by directive, the finished Port Scan."""
    rows = json.loads(sql(db, "SELECT id, title, state, directive_id FROM backlogs"))
    found = {"ping": "Ping Flood from 10.0.0.1", "ping2": "Ping Flood from 10.0.0.2"}
    named = {key: next(r["id"] for r in rows if r["title"] == title and r["state"] == "live")
             for key, title in found.items()}
    named["scan"] = next(r["id"] for r in rows if r["directive_id"] == 2001
                         and r["state"] == "live")
    named["firewall"] = next(r["id"] for r in rows if r["directive_id"] == 3001
                             and r["state"] == "live")
    named["scan_finished"] = next(r["id"] for r in rows if r["directive_id"] == 2001
                                  and r["state"] == "finished")
    return named


def sql(db: Path, query: str, fmt: str = "json") -> str:
    return ok(cli("sql", "--db", db, "--format", fmt, query)).stdout


def count(db: Path, table: str) -> int:
    con = sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_it_listens_on_this_machine_only_by_default(served):
    assert served.url.startswith("http://127.0.0.1:")
    assert "read-only" in served.stdout.read_text()
    page = served.get("/dsiem/live_backlogs").decode()
    assert 'dsiemLive.start({"seconds": 5.0, "state": "/-/dsiem/state.json"' in page


def test_each_view_as_json_and_csv_is_what_dsiem_sql_sql_gives(served):
    for view in VIEWS:
        query = f"SELECT * FROM {view} ORDER BY 1, 2, 3"
        expected = json.loads(sql(served.db, query))
        got = served.json(f"/dsiem.json?sql={quote(query)}&_shape=array")
        assert got == expected, view
        table = served.json(f"/dsiem/{view}.json?_shape=array&_size=max")
        assert sorted(table, key=json.dumps) == sorted(expected, key=json.dumps), view
        rows = list(csv.reader(io.StringIO(served.get(f"/dsiem/{view}.csv?_size=max").decode())))
        want = list(csv.reader(io.StringIO(sql(served.db, f"SELECT * FROM {view}", "csv"))))
        assert rows[0] == want[0] and sorted(rows[1:]) == sorted(want[1:]), view
    assert len(served.json("/dsiem/live_backlogs.json?_shape=array")) == 4


def test_the_views_and_columns_are_described(served):
    page = served.get("/dsiem/live_backlogs").decode()
    assert "The backlogs in state <code>live</code>, with their current stage." in page
    assert 'data-column-description="the current stage&#39;s deadline (start + timeout)' in page
    tables = served.json("/dsiem.json")["tables"]
    hidden = {t["name"] for t in tables if t["hidden"]}
    assert hidden == {"outbox", "output_files", "input_progress", "engine_state",
                      "alembic_version"}


def test_every_canned_query_runs(served):
    named = ids(served.db)
    for name in CANNED:
        data = served.json(f"/dsiem/{name}.json?_shape=objects&id={named['ping']}&ip=10.0.0.1")
        assert data["ok"], (name, data)
    rows = served.json("/dsiem/live_by_risk.json?_shape=array")
    assert [r["alarm_id"] for r in rows][:2] == [named["ping"], named["firewall"]]  # risk 2, 1
    # a replay database: its times count from the engine clock of the last commit
    assert {r["alarm_id"]: r["expires_in_seconds"] for r in rows} == {
        named["ping"]: 3270, named["firewall"]: 25, named["scan"]: 110, named["ping2"]: 230}
    soon = served.json("/dsiem/expiring.json?_shape=array&minutes=2")
    assert [(r["alarm_id"], r["seconds_left"]) for r in soon] == [(named["firewall"], 25),
                                                                  (named["scan"], 110)]
    classes = [r["risk_class"] for r in served.json("/dsiem/alarms_24h.json?_shape=array")]
    assert classes == ["Medium", "Medium", "Low", "Low"]
    top = served.json("/dsiem/top_sources.json?_shape=array")[0]
    assert (top["src_ip"], top["alarms"]) == ("198.51.100.7", 2)
    story = served.json(f"/dsiem/story_events.json?_shape=array&id={named['ping']}")
    assert [(r["stage"], r["status"]) for r in story][:2] == [(1, "finished"), (2, "finished")]
    assert story[0]["event_id"] == "ping-01" and story[0]["src_ip"] == "10.0.0.1"


def test_a_story_is_what_explain_says(served):
    named = ids(served.db)
    for alarm_id in (named["ping"], named["scan_finished"]):
        want = json.loads(ok(cli("explain", "--db", served.db, "--format", "json", "--",
                                 alarm_id)).stdout)
        assert served.json(f"/-/story/{alarm_id}.json") == want
        text = ok(cli("explain", "--db", served.db, "--", alarm_id, env={"COLUMNS": "100"})).stdout
        assert served.get(f"/-/story/{alarm_id}.txt").decode() == text
    page = served.get(f"/-/story/{named['ping']}").decode()
    for part in ("Stage 3: ICMP Ping", "490 more events (10/500 taken)", "ping-17",
                 "2024-05-01 10:00:10"):
        assert part in page


def test_ids_link_to_their_story_and_addresses_to_their_backlogs(served):
    named = ids(served.db)
    link = f'<a class="dsiem-story" href="/-/story/{named["ping"]}"'
    assert link in served.get("/dsiem/live_backlogs").decode()
    page = served.get(f"/dsiem/stage_events?backlog_id={named['ping']}").decode()
    assert link in page
    assert '<a href="/dsiem/address?ip=10.0.0.1"' in page
    page = served.get("/dsiem/alarms_24h").decode()
    assert f'<a class="dsiem-story" href="/-/story/{named["scan_finished"]}"' in page


def test_a_story_of_an_unknown_id_says_so(served):
    status, body = served.request("/-/story/nope")
    assert status == 404
    assert b"no backlog or alarm nope in" in body
    assert "Traceback" not in served.log.read_text()


def test_nothing_can_be_written_through_the_console(served):
    before = count(served.db, "backlogs")
    status, body = served.request("/dsiem.json?sql=" + quote("DELETE FROM backlogs"))
    assert status == 400 and b"Statement must be a SELECT" in body
    # datasette lets a statement that starts with WITH through; the connection refuses it
    status, body = served.request(
        "/dsiem.json?sql=" + quote("WITH x AS (SELECT 1) DELETE FROM backlogs"))
    assert status == 400 and b"attempt to write a readonly database" in body
    for query in ("ATTACH 'x.db' AS x", "PRAGMA journal_mode = DELETE", "VACUUM"):
        status, body = served.request("/dsiem.json?sql=" + quote(query))
        assert status == 400, query
    # the write API of datasette 1.0 and of plugins: no route takes it
    for path in ("/dsiem/backlogs/-/insert", "/dsiem/-/create", "/dsiem/backlogs/-/drop",
                 "/dsiem/backlogs/x/-/delete", "/dsiem/-/query"):
        status, body = served.request(path, data=json.dumps({"row": {"id": "x"}}).encode(),
                                      method="POST",
                                      headers={"Content-Type": "application/json"})
        assert status in (403, 404, 405), (path, status, body[:300])
    assert count(served.db, "backlogs") == before
    assert "Traceback" not in served.log.read_text()


def test_a_query_is_stopped_after_the_time_limit(served):
    started = time.monotonic()
    status, body = served.request("/dsiem.json?sql=" + quote(SLOW))
    assert status == 400 and b"SQL query took too long" in body
    assert 0.9 < time.monotonic() - started < 5


def test_the_limits_are_options(tmp_path):
    db = replayed(tmp_path)
    console = Console(db, "--time-limit", "0.2", "--max-rows", "3", "--refresh", "0",
                      workdir=tmp_path / "run").start()
    try:
        started = time.monotonic()
        status, body = console.request("/dsiem.json?sql=" + quote(SLOW))
        assert status == 400 and b"SQL query took too long" in body
        assert time.monotonic() - started < 0.9
        data = console.json("/dsiem.json?sql=" + quote("SELECT * FROM stage_events"))
        assert len(data["rows"]) == 3 and data["truncated"] is True
        assert b"dsiemLive.start" not in console.get("/dsiem/live_backlogs")  # not live
        settings = console.json("/-/settings.json")
        assert (settings["sql_time_limit_ms"], settings["max_returned_rows"]) == (200, 3)
    finally:
        console.stop()


def test_the_dashboard_and_its_chart_library_are_served_by_the_console(served):
    page = served.get("/-/dashboards/dsiem").decode()
    loaded = re.findall(r'<script[^>]* src="([^"]*)"', page) + re.findall(
        r'<link[^>]* href="([^"]*)"', page)
    assert any(src.endswith("/vega-lite.min.js") for src in loaded)
    for src in loaded:
        assert src.startswith("/"), f"{src}: loaded from elsewhere than the console"
        assert served.get(src)
    assert served.get("/-/dsiem-static/console.js").startswith(b"/* The pages of the dsiem")


def test_a_path_with_uri_characters_is_served(tmp_path):
    directory = tmp_path / "a #?% b"
    directory.mkdir()
    db = replayed(directory, "st#ate?%20.db")
    console = Console(db, workdir=tmp_path / "run").start()
    try:
        got = console.json("/dsiem/live_backlogs.json?_shape=array")
        assert sorted(got, key=json.dumps) == sorted(
            json.loads(sql(db, "SELECT * FROM live_backlogs")), key=json.dumps)
        ping = ids(db)["ping"]
        assert console.json(f"/-/story/{ping}.json")["alarm_id"] == ping
    finally:
        console.stop()
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["st#ate?%20.db", "st#ate?%20.db-shm", "st#ate?%20.db-wal", "st#ate?%20.db.lock",
         "out"]), "it opened or created another file"


def test_without_the_console_extra_it_says_how_to_install_it(tmp_path):
    fake = tmp_path / "site" / "datasette"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not installed here')\n")
    run = cli("console", "--db", tmp_path / "x.db", env={"PYTHONPATH": str(tmp_path / "site")})
    assert run.returncode == 1
    assert run.stderr == ("error: the console needs the console extra: pip install "
                          "'dsiem-sql[console]' (datasette, datasette-dashboards not "
                          "installed)\n")


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "no such database"),
    (lambda p: p.write_bytes(b"hello"), "not an SQLite database"),
    (lambda p: sqlite3.connect(p).execute("CREATE TABLE t (x)").connection.commit(),
     "schema revision none, and the console needs 0"),
])
def test_a_database_it_cannot_show_is_refused(tmp_path, setup, message):
    db = tmp_path / "x.db"
    setup(db)
    run = cli("console", "--db", db, "--port", "0")
    assert run.returncode == 1
    assert run.stderr.startswith("error: ") and message in run.stderr, run.stderr


def test_a_port_in_use_is_refused(tmp_path):
    db = replayed(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = cli("console", "--db", db, "--port", str(port))
    assert run.returncode == 1
    assert run.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"

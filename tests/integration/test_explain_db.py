"""`dsiem-sql explain --db` on replay databases (issue 19): a finished and an expired backlog,
a pruned one, rows of a database older than revision 0004, and the errors. The CLI runs as a
process; the databases are real files made by `replay --db`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from dbcompare import migrate
from kit import T0, cli, directive, event, ok, replay, rule

from dsiem_sql.store.database import (
    HEAD_REVISION,
    current_revision,
)


def write_configs(configs: Path) -> Path:
    configs.mkdir(parents=True, exist_ok=True)
    (configs / "assets_home.json").write_text(json.dumps({"assets": [
        {"name": "lan", "cidr": "192.168.0.0/16", "value": 3},
        {"name": "db-server", "cidr": "192.168.1.10", "value": 5},
    ]}))
    finishing = directive(1, [
        rule(1, plugin_sid=[1], to="HOME_NET", reliability=2),
        rule(2, plugin_sid=[2], occurrence=2, timeout=60, reliability=7,
             **{"from": ":1", "to": ":1"}),
    ], priority=5, name="Brute force on DST_IP")
    expiring = directive(2, [
        rule(1, plugin_sid=[11], reliability=4),
        rule(2, plugin_sid=[12], occurrence=3, timeout=60, reliability=9),
    ], priority=2)
    (configs / "directives_n_t.json").write_text(
        json.dumps({"directives": [finishing, expiring]}))
    return configs


def write_events(path: Path) -> Path:
    events = [
        event("f1", T0, "10.1.1.1", "192.168.1.10", src_port=5555, dst_port=22),
        event("f2", T0 + 10, "10.1.1.1", "192.168.1.10", plugin_sid=2, dst_port=22),
        event("x1", T0 + 12, "10.9.9.9", "192.168.1.20", plugin_sid=11),
        event("f3", T0 + 20, "10.1.1.1", "192.168.1.10", plugin_sid=2, dst_port=2222),
        event("x2", T0 + 30, "10.9.9.9", "192.168.1.20", plugin_sid=12),
        # nothing matches it; it moves the clock past stage 2 of directive 2's deadline
        event("later", T0 + 200, "10.0.0.1", "10.0.0.2", plugin_sid=99),
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(the database, the configs, directive id -> its backlog id)."""
    work = tmp_path_factory.mktemp("explain")
    configs, db = write_configs(work / "configs"), work / "state.db"
    ok(replay(configs, work / "out", write_events(work / "events.jsonl"), "--db", db))
    con = sqlite3.connect(db)
    try:
        ids = dict(con.execute("SELECT directive_id, id FROM backlogs"))
    finally:
        con.close()
    return db, configs, {"finished": ids[1], "expired": ids[2]}


def explain(*args: str | Path) -> dict:
    return json.loads(ok(cli("explain", "--format", "json", *args)).stdout)


def test_a_finished_backlog(replayed):
    db, configs, ids = replayed
    r = explain("--db", db, ids["finished"], "--configs", configs)
    assert (r["state"], r["current_stage"], r["highest_stage"]) == ("finished", 2, 2)
    assert r["title"] == "Brute force on db-server"  # the host asset's name
    assert [s["status"] for s in r["stages"]] == ["finished", "finished"]
    assert [s["events"] for s in r["stages"]] == [["f1"], ["f2", "f3"]]
    assert [s["progress"] for s in r["stages"]] == ["1/1", "2/2"]
    assert [(e["time"], e["src_ip"], e["dst_ip"], e["src_port"], e["dst_port"])
            for e in r["stages"][1]["event_details"]] == [
        (T0 + 10, "10.1.1.1", "192.168.1.10", 0, 22),
        (T0 + 20, "10.1.1.1", "192.168.1.10", 0, 2222)]
    assert r["ended"] == {
        "state": "finished", "time": T0 + 20, "stage": 2,
        "text": "finished at 2024-05-01 10:00:20 UTC: its last stage, 2, took 2/2 events"}
    assert r["waiting"] is None
    risk = r["risk"]  # 5 x 7 x 5 // 25 = 7, High
    assert (risk["risk"], risk["class"], risk["reliability"], risk["stage"], risk["value"],
            risk["address"], risk["asset"]["name"]) == (7, "High", 7, 2, 5, "192.168.1.10",
                                                        "db-server")
    assert risk["text"].startswith(
        "7 (High) = priority 5 x reliability 7 (stage 2) x asset value 5 // 25; value 5: "
        '192.168.1.10, in asset "db-server" 192.168.1.10/32')

    text = ok(cli("explain", "--db", db, "--", ids["finished"])).stdout
    assert text.splitlines()[0] == (
        f"alarm {ids['finished']}: finished (stage 2 of 2), an alarm since "
        "2024-05-01 10:00:00 UTC")  # 5 x 2 x 5 // 25 = 2 at stage 1 already
    assert "  events     f2  2024-05-01 10:00:10 UTC  10.1.1.1 -> 192.168.1.10:22" in text
    assert "ended      finished at 2024-05-01 10:00:20 UTC" in text
    # without assets, the value is what the risk allows: 7 = 5 x 7 x v // 25 for v = 5
    assert "with an asset value of 5 (which asset is not known" in text


def test_an_expired_backlog(replayed):
    db, _, ids = replayed
    r = explain("--db", db, ids["expired"])
    assert (r["state"], r["current_stage"]) == ("expired", 2)
    assert [s["status"] for s in r["stages"]] == ["finished", "timeout"]
    assert [s["events"] for s in r["stages"]] == [["x1"], ["x2"]]
    assert r["stages"][1]["deadline"] == T0 + 12 + 60
    assert r["ended"]["time"] == T0 + 200  # the clock of the sweep that expired it
    assert r["ended"]["text"] == (
        "expired at 2024-05-01 10:03:20 UTC: stage 2 did not get its 3 events by its "
        "deadline 2024-05-01 10:01:12 UTC (1/3 taken)")
    assert (r["risk"]["risk"], r["risk"]["reliability"]) == (0, 4)  # 2 x 4 x 3 // 25
    assert r["alarm"] is False and r["created_time"] is None


def test_a_live_backlog_waits_by_the_engine_clock_of_a_replay_database(tmp_path):
    configs = write_configs(tmp_path / "configs")
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(event("f1", T0, "10.1.1.1", "192.168.1.10")) + "\n" +
                      json.dumps(event("tick", T0 + 25, "10.0.0.1", "10.0.0.2", plugin_sid=99))
                      + "\n")
    db = tmp_path / "state.db"
    ok(replay(configs, tmp_path / "out", events, "--db", db))
    [alarm_id] = [i for (i,) in _query(db, "SELECT id FROM backlogs")]
    r = explain("--db", db, "--min-alarm-lifetime", "2", "--", alarm_id)
    assert r["clock"]["source"] == "engine" and r["clock"]["now"] == T0 + 25
    w = r["waiting"]
    assert (w["stage"], w["needs"], w["deadline"], w["expires_after"], w["seconds_left"]) == (
        2, 2, T0 + 60, T0 + 60 + 120, 155)
    assert w["until"] == (
        "2024-05-01 10:01:00 UTC (start 2024-05-01 10:00:00 UTC + timeout 60 s) + "
        "--min-alarm-lifetime 2 min = 2024-05-01 10:03:00 UTC: 2 m 35 s left by the engine "
        "clock")
    assert w["what"] == (
        'stage 2 ("stage 2"): 2 more events (0/2 taken) that match: plugin 1337 SID 2; '
        "from 10.1.1.1 (:1) to 192.168.1.10 (:1); ports ANY -> ANY")


def test_a_pruned_backlog_is_named_by_the_output_files(tmp_path):
    configs = write_configs(tmp_path / "configs")
    db, out = tmp_path / "state.db", tmp_path / "out"
    ok(replay(configs, out, write_events(tmp_path / "events.jsonl"), "--db", db,
              "--retention-days", "0"))
    pruned = {json.loads(line)["alarm_id"]
              for line in (out / "siem_alarm_events.json").read_text().splitlines()}
    pruned -= {i for (i,) in _query(db, "SELECT id FROM backlogs")}
    [alarm_id] = pruned  # the finished one; the other ended at the clock: 0 days ago
    run = cli("explain", "--db", db, "--", alarm_id)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == (
        f"error: no backlog or alarm {alarm_id} in {db}: it was there and has been pruned "
        "(an ended backlog is deleted --retention-days days after it ended, 7 by default); "
        f"{out.resolve() / 'siem_alarm_events.json'} names it on 3 lines; "
        f"{out.resolve() / 'siem_alarms.json'} names it on 2 lines, the last at "
        "2024-05-01 10:00:20 UTC with risk 7 and stage statuses finished, finished\n")

    run = cli("explain", "--db", db, "NoSuchId1")
    assert run.returncode == 1
    assert run.stderr == (
        f"error: no backlog or alarm NoSuchId1 in {db}: either it was pruned (an ended backlog "
        "is deleted --retention-days days after it ended, 7 by default) or it never was in "
        f"this database ({out.resolve() / 'siem_alarm_events.json'}, "
        f"{out.resolve() / 'siem_alarms.json'} do not name it either)\n")


def test_links_of_a_database_older_than_revision_0004_are_not_recorded(replayed, tmp_path):
    """A 0003 database (made here by downgrading a copy) is read as it is, and after the
    upgrade its old rows have NULL details: "not recorded" either way."""
    source, configs, ids = replayed
    db = tmp_path / "old.db"
    con = sqlite3.connect(source)
    try:
        con.execute("VACUUM INTO ?", (str(db),))
    finally:
        con.close()
    migrate(db, "0003", downgrade=True)
    assert current_revision(db) == "0003"
    for step in ("as it is", "upgraded"):
        if step == "upgraded":
            ok(cli("db", "upgrade", "--db", db))
            assert current_revision(db) == HEAD_REVISION
        r = explain("--db", db, "--configs", configs, "--", ids["finished"])
        details = r["stages"][1]["event_details"]
        assert [e["event_id"] for e in details] == ["f2", "f3"], step
        assert {(e["time"], e["src_ip"], e["src_port"]) for e in details} == {
            (None, None, None)}, step
        text = ok(cli("explain", "--db", db, "--", ids["finished"])).stdout
        assert "  events     f2  not recorded" in text, step
        # the risk's addresses are then the backlog's addresses now
        assert "(the backlog's addresses now: the events' were not recorded; " in \
            r["risk"]["text"], step


@pytest.mark.parametrize(("make", "reason"), [
    pytest.param(lambda p: None, "no such database", id="missing"),
    pytest.param(lambda p: p.write_text("not a database at all"), "not an SQLite database",
                 id="not-sqlite"),
    pytest.param(lambda p: p.touch(), "no backlogs table: not a dsiem-sql database",
                 id="empty-file"),
    pytest.param(lambda p: p.mkdir(), "not a regular file", id="directory"),
])
def test_errors_name_the_database(tmp_path, make, reason):
    db = tmp_path / "x.db"
    make(db)
    run = cli("explain", "--db", db, "abc")
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith(f"error: {db}: {reason}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if reason == "no such database"
                                                          else ["x.db"])  # nothing created


def test_explain_writes_nothing(replayed):
    db, _, ids = replayed
    before = db.read_bytes(), db.stat().st_mtime_ns
    ok(cli("explain", "--db", db, "--", ids["finished"]))
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before


def _query(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_an_id_that_starts_with_a_dash_is_an_id(tmp_path):
    """Dsiem's alarm ids may start with `-`; explain takes one as the ID, not as an option."""
    db = tmp_path / "x.db"
    run = cli("explain", "--db", db, "-QLeCcOlw")
    assert run.returncode == 1
    assert run.stderr.startswith(f"error: {db}: no such database")

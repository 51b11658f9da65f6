"""`dsiem-sql import-backlogs`: legacy saved backlog files of dsiem-backend and dsiem-rs into
the database (docs/behaviour.md, "Saved backlogs"), checked through the real command line and
the real SQLite file."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import kit
import pytest
from kit import event, ok, rule

from dsiem_sql.config import load_config
from dsiem_sql.engine import Engine
from dsiem_sql.legacy import importer
from dsiem_sql.legacy.formats import SAVED_FILE, title_matches, to_backlog
from dsiem_sql.legacy.importer import backlog_files, import_files
from dsiem_sql.store import StoreError
from dsiem_sql.store.database import connect_read_only
from dsiem_sql.store.rows import import_rows
from dsiem_sql.store.store import Store

FIXTURES = kit.FIXTURES / "backlogs"
CONFIGS = FIXTURES / "configs"
M_FILE = FIXTURES / "m" / "2001.json"
R_FILE = FIXTURES / "r" / "2001.json"
ALARM_ID = "Qm7_tR2xZ"
NESD = (
    "Nesd",
    "192.168.10.5:80",
    "High - Apache HTTP Server 2.4.49 Path Traversal (CVE-2021-41773)",
)


# -- helpers ------------------------------------------------------------------------------


def cli(*args: str | Path, columns: int = 1000) -> subprocess.CompletedProcess:
    """`dsiem-sql ...` as a real process; a wide console keeps each table row on one line."""
    return kit.cli(*args, env={"COLUMNS": str(columns)})


def import_backlogs(db: Path, *paths: Path, flags: tuple[str, ...] = ()):
    return cli("import-backlogs", *paths, "--configs", CONFIGS, "--db", db, *flags)


def table_rows(output: str) -> list[list[str]]:
    """The summary table's rows; the lines of a wrapped cell are joined without separator."""
    rows: list[list[str]] = []
    body = output.partition("\n|-")[2]  # after the rule under the header
    for line in body.splitlines():
        if not line.startswith("| "):  # the rest of the rule, the bottom border
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[1] or not rows:  # the counts are on the first line of a row
            rows.append(cells)
        else:
            rows[-1] = [a + b for a, b in zip(rows[-1], cells, strict=True)]
    return rows


def summary(output: str) -> dict[str, dict[str, str | int]]:
    """Per file (and `total`): the counts and the result text of the summary table."""
    out: dict[str, dict[str, str | int]] = {}
    for file, backlogs, imported, present, skipped, result in table_rows(output):
        out[file] = {
            "backlogs": int(backlogs),
            "imported": int(imported),
            "present": int(present),
            "skipped": int(skipped),
            "result": result,
        }
    return out


def query(db: Path, sql: str, *params) -> list[tuple]:
    con = connect_read_only(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


# backlog columns outside this comparison: the version row id, and the socket addresses kept
# for vulnerability lookups (their own feature)
OTHER_COLUMNS = {"directive_version", "src_sockets", "dst_sockets"}


def dump(db: Path) -> dict[str, list]:
    """Everything an import writes, in a comparable form."""
    con = connect_read_only(db)
    con.row_factory = sqlite3.Row
    try:
        return {
            "backlogs": [
                {k: v for k, v in dict(r).items() if k not in OTHER_COLUMNS}
                for r in con.execute("SELECT * FROM backlogs ORDER BY id")
            ],
            "stages": [
                dict(r) for r in con.execute("SELECT * FROM stages ORDER BY backlog_id, stage")
            ],
            "stage_events": [
                tuple(r)
                for r in con.execute(
                    "SELECT backlog_id, stage, event_id, event_time, src_ip, dst_ip, src_port,"
                    " dst_port FROM stage_events ORDER BY backlog_id, stage, event_id"
                )
            ],
            "enrichments": [
                tuple(r) for r in con.execute("SELECT * FROM enrichments ORDER BY 1, 2, 3, 4, 5")
            ],
            "engine_state": [tuple(r) for r in con.execute("SELECT * FROM engine_state")],
            "directive_versions": [
                tuple(r) for r in con.execute("SELECT directive_id, sha256 FROM directive_versions")
            ],
            "outbox": [tuple(r) for r in con.execute("SELECT * FROM outbox")],
        }
    finally:
        con.close()


def backlog(db: Path, alarm_id: str) -> dict:
    (row,) = [b for b in dump(db)["backlogs"] if b["id"] == alarm_id]
    return row


def stages_of(db: Path, alarm_id: str) -> list[dict]:
    return [s for s in dump(db)["stages"] if s["backlog_id"] == alarm_id]


def saved(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def write_saved(path: Path, items: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items, indent=2) + "\n")
    return path


def scan_event(event_id: str, ts: int, dst_ip: str, dst_port: int) -> dict:
    return event(event_id, ts, "203.0.113.50", dst_ip, title="ET SCAN Potential SYN Scan",
                 sensor="suricata-01", plugin_id=1001, plugin_sid=2100498,
                 src_port=40000 + dst_port, dst_port=dst_port, protocol="TCP")


def write_events(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def replay(db: Path, out: Path, events: Path) -> subprocess.CompletedProcess:
    return kit.replay(CONFIGS, out, events, "--db", db)


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# -- both formats -------------------------------------------------------------------------

RULE_ADDRESSES = [("ANY", "HOME_NET"), ("203.0.113.50", "192.168.10.5"),
                  ("203.0.113.50", "192.168.10.5")]


def test_m_and_r_files_give_the_same_stored_backlog(tmp_path):
    m_db, r_db = tmp_path / "m.db", tmp_path / "r.db"
    for db, file in ((m_db, M_FILE), (r_db, R_FILE)):
        rows = summary(ok(import_backlogs(db, file)).stdout)
        assert rows[str(file)] == {"backlogs": 1, "imported": 1, "present": 0, "skipped": 0,
                                   "result": "ok"}

    m = dump(m_db)
    (b,) = m["backlogs"]
    assert b == {
        "id": ALARM_ID, "seq": 1, "directive_id": 2001, "state": "live",
        "title": "Port Scan from SRC_IP", "status": "Open", "tag": "Identified Threat",
        "current_stage": 3, "highest_stage": 3, "risk": 1, "risk_class": "Low",
        "src_ips": '["203.0.113.50"]', "dst_ips": '["192.168.10.5"]',
        "networks": '["192.168.10.0/24"]', "custom_data": "[]",
        "created_time": 1714557604, "update_time": 1714557606,
        "last_srcport": 51545, "last_dstport": 8080,
        "deadline": 1714557603 + 900, "ended_time": None,
    }
    assert [s["status"] for s in m["stages"]] == ["finished", "finished", ""]
    assert [(s["start_time"], s["end_time"]) for s in m["stages"]] == [
        (1714557600, 1714557600), (1714557600, 1714557603), (1714557603, 0)]
    assert [json.loads(s["sticky"]) for s in m["stages"]] == [[], [22, 23, 80], [443, 8080]]
    assert all(s["resolved"] == 1 and s["first_event"] is None for s in m["stages"])
    rules = [json.loads(s["rule"]) for s in m["stages"]]
    assert [(r["from"], r["to"]) for r in rules] == RULE_ADDRESSES
    assert [r["stage"] for r in rules] == [1, 2, 3]
    assert [(r["occurrence"], r["reliability"], r["timeout"]) for r in rules] == [
        (1, 1, 0), (3, 4, 300), (20, 8, 900)]
    # the saved files hold only the event ids: the events' details are not recorded
    assert m["stage_events"] == [(*link, None, None, None, None, None) for link in [
        (ALARM_ID, 1, "0b7e6c1a-2f4d-4e8b-9c3a-5d6e7f809a11"),
        (ALARM_ID, 2, "1c8f7d2b-3a5e-4f9c-8d4b-6e7f8091ab22"),
        (ALARM_ID, 2, "2d9a8e3c-4b6f-4a0d-9e5c-7f8091a2bc33"),
        (ALARM_ID, 2, "3eab9f4d-5c7a-4b1e-8f6d-8091a2b3cd44"),
        (ALARM_ID, 3, "4fbca05e-6d8b-4c2f-9a7e-91a2b3c4de55"),
        (ALARM_ID, 3, "50cdb16f-7e9c-4d3a-8b8f-a2b3c4d5ef66"),
    ]]
    assert m["enrichments"] == [(ALARM_ID, "vuln", *NESD)]
    assert ("next_seq", 2) in m["engine_state"]
    assert m["outbox"] == []  # an import writes no output line

    # dsiem-rs: the title was substituted and its stage 2 started a second later (dsiem-rs
    # moves a stage's start to its first event); `:1` resolved from the saved addresses, last
    # ports from the socket addresses. Everything else is the same.
    r = dump(r_db)
    assert r["backlogs"][0]["title"] == "Port Scan from 203.0.113.50"
    assert r["stages"][1]["start_time"] == 1714557601
    assert [json.loads(s["rule"])["from"] for s in r["stages"]] == ["ANY", *["203.0.113.50"] * 2]
    # dsiem-rs's socket addresses are kept (vulnerability search terms); dsiem-backend saves none
    r_saved = saved(R_FILE)[0]
    sockets = "SELECT src_sockets, dst_sockets FROM backlogs"
    assert [tuple(map(json.loads, row)) for row in query(r_db, sockets)] == [
        (r_saved["saved_src_socketaddr"], r_saved["saved_dst_socketaddr"])]
    assert query(m_db, sockets) == [("[]", "[]")]
    r["backlogs"][0]["title"] = "Port Scan from SRC_IP"
    r["stages"][1]["start_time"] = 1714557600
    assert r == m


def test_saved_status_and_tag_are_reset_to_the_defaults(tmp_path):
    items = saved(M_FILE)
    items[0].update(status="Closed", tag="False Positive")
    file = write_saved(tmp_path / "in" / "2001.json", items)
    ok(import_backlogs(tmp_path / "x.db", file))
    b = backlog(tmp_path / "x.db", ALARM_ID)
    assert (b["status"], b["tag"]) == ("Open", "Identified Threat")


def test_formats_are_detected_per_backlog(tmp_path):
    """A dsiem-backend and a dsiem-rs backlog in one file: each is read in its own format."""
    file = FIXTURES / "mixed" / "2001.json"
    db = tmp_path / "x.db"
    rows = summary(ok(import_backlogs(db, file)).stdout)
    assert rows[str(file)]["imported"] == 2
    m, r = backlog(db, "MixM00001"), backlog(db, "MixR00001")
    assert m["title"] == "Port Scan from SRC_IP"
    assert (m["last_srcport"], m["last_dstport"]) == (51545, 8080)
    assert r["title"] == "Port Scan from 198.51.100.7"
    # last ports from the last saved socket addresses
    assert (r["last_srcport"], r["last_dstport"]) == (40002, 110)
    r_rules = [json.loads(s["rule"]) for s in stages_of(db, "MixR00001")]
    assert [(x["from"], x["to"]) for x in r_rules] == [
        ("ANY", "HOME_NET"), ("198.51.100.7", "192.168.10.9"), ("198.51.100.7", "192.168.10.9")]
    m_rules = [json.loads(s["rule"]) for s in stages_of(db, "MixM00001")]
    assert [(x["from"], x["to"]) for x in m_rules] == RULE_ADDRESSES
    assert query(db, "SELECT backlog_id FROM enrichments") == [("MixM00001",)]


def test_a_backlog_keeps_its_own_rules_where_they_differ_from_the_directive():
    engine = Engine(load_config(CONFIGS))
    directive = engine.directive(2001)
    assert directive is not None
    (item,) = saved(M_FILE)
    stage2, stage3 = item["rules"][1], item["rules"][2]
    stage2.update(plugin_sid=[999], occurrence=7, port_to="22,23", protocol="UDP")
    stage3.update(type="TaxonomyRule", category="scan", product=["ids"], to="!HOME_NET")
    (converted,) = SAVED_FILE.validate_python([item])
    rules = [s.rule for s in to_backlog(converted, directive, engine.options).stages]

    assert rules[0] is directive.rules[0]  # nothing differs: the directive's rule is shared
    r2, r3 = rules[1], rules[2]
    assert (r2.sids, r2.occurrence, r2.from_, r2.references) == (
        frozenset({999}), 7, "203.0.113.50", ())
    assert [r2.port_to_cond(p) for p in ("22", "23", "80")] == [True, True, False]
    assert r2.protocol_cond("UDP") and not r2.protocol_cond("TCP")
    assert r2.from_cond("203.0.113.50", engine.assets)
    assert not r2.from_cond("203.0.113.51", engine.assets)
    assert (r3.is_plugin, r3.category, r3.product, r3.to) == (
        False, "scan", ("ids",), "!HOME_NET")
    assert r3.to_cond("8.8.8.8", engine.assets)
    assert not r3.to_cond("192.168.10.5", engine.assets)
    # the directive's own rules are untouched
    assert (directive.rules[1].sids, directive.rules[1].from_) == (frozenset({2100498}), ":1")


def test_a_saved_reference_where_the_directive_now_has_a_literal_is_resolved():
    engine = Engine(load_config(CONFIGS))
    directive = engine.directive(2001)
    assert directive is not None
    (item,) = saved(M_FILE)
    item["rules"][0]["from"] = "203.0.113.50"
    item["rules"][1]["port_to"] = "ANY"
    item["rules"][2]["port_from"] = ":2"  # a dsiem-rs-style reference the directive lacks
    item["saved_last_srcport"] = 51545
    (converted,) = SAVED_FILE.validate_python([item])
    rules = [s.rule for s in to_backlog(converted, directive, engine.options).stages]
    assert rules[0].from_cond("203.0.113.50", engine.assets)
    assert not rules[0].from_cond("203.0.113.51", engine.assets)
    assert (rules[2].port_from, rules[2].references) == ("51545", ())
    assert rules[2].port_from_cond("51545") and not rules[2].port_from_cond("51546")


def test_a_failed_insert_rolls_the_whole_file_back_and_the_store_stays_usable(tmp_path):
    engine = Engine(load_config(CONFIGS))
    directive = engine.directive(2001)
    assert directive is not None
    items = SAVED_FILE.validate_json((FIXTURES / "mixed" / "2001.json").read_bytes())
    first, second = (to_backlog(s, directive, engine.options) for s in items)
    status = second.stages[2].status
    second.stages[2].status = None  # a stage row the table refuses, after the backlogs went in
    db = tmp_path / "x.db"

    async def insert(store: Store) -> set[str]:
        found = import_rows([first, second])
        found.backlogs = [(r[0], n, *r[2:]) for n, r in enumerate(found.backlogs, 1)]
        return await store.insert_import(found, directive.config, 3)

    async def run() -> set[str]:
        store = Store(db, None)
        await store.open()
        try:
            resumed = await store.resume(engine.directive)
            engine.resume(resumed.backlogs, resumed.next_seq)
            with pytest.raises(StoreError, match=r"NOT NULL constraint failed: stages\.status"):
                await insert(store)
            second.stages[2].status = status
            return await insert(store)
        finally:
            await store.close()

    assert asyncio.run(run()) == set()  # nothing of the failed attempt was left behind
    assert query(db, "SELECT id, seq FROM backlogs ORDER BY seq") == [
        ("MixM00001", 1), ("MixR00001", 2)]
    assert query(db, "SELECT count(*) FROM stages") == [(6,)]


def test_files_read_by_worker_processes_import_as_read_in_process(tmp_path, monkeypatch):
    files = backlog_files([FIXTURES / d for d in ("m", "mixed", "title", "finished")])
    files += [FIXTURES / "unknown" / "9999.json", FIXTURES / "truncated" / "2001.json"]
    assert len(files) == 6

    def run(db: Path) -> list[tuple]:
        async def go():
            engine = Engine(load_config(CONFIGS))
            store = Store(db, None)
            await store.open()
            try:
                resumed = await store.resume(engine.directive)
                engine.resume(resumed.backlogs, resumed.next_seq)
                results = await import_files(files, engine, store, restore=True)
                return results, sorted(b.id for d in engine.directives for b in d.backlogs)
            finally:
                await store.close()

        results, live = asyncio.run(go())
        counts = [(r.path.name, r.backlogs, r.imported, r.present, dict(r.skipped), r.error)
                  for r in results]
        return [counts, live]

    pooled = run(tmp_path / "pooled.db")
    monkeypatch.setattr(importer, "MAX_WORKERS", 1)  # read in this process
    in_process = run(tmp_path / "in_process.db")
    assert pooled == in_process
    assert dump(tmp_path / "pooled.db") == dump(tmp_path / "in_process.db")
    counts, live = pooled
    assert [c[2] for c in counts] == [1, 2, 0, 0, 0, 0]  # imported per file, in file order
    assert counts[-1][5] is not None  # the truncated file
    assert live == ["MixM00001", "MixR00001", ALARM_ID]


# -- matching and skipping ----------------------------------------------------------------


def test_title_matching_is_placeholder_aware():
    assert title_matches("Port Scan from SRC_IP", "Port Scan from SRC_IP")
    assert title_matches("Port Scan from SRC_IP", "Port Scan from 10.0.0.1")
    assert title_matches("Port Scan from SRC_IP", "Port Scan from web-01")  # an asset name
    assert title_matches("Ping SRC_IP to DST_IP (x)", "Ping 10.0.0.1 to 10.0.0.2 (x)")
    assert not title_matches("Port Scan from SRC_IP", "Port Sweep from 1.2.3.4")
    assert not title_matches("Port Scan from SRC_IP", "Port Scan from ")
    assert not title_matches("Port Scan from SRC_IP", "Port scan from 1.2.3.4")
    assert not title_matches("Port Scan from SRC_IP", "A Port Scan from 1.2.3.4")
    assert not title_matches("Scan (a) SRC_IP", "Scan a 1.2.3.4")  # no regex leaks


def test_unmatched_backlogs_are_skipped_with_a_reason(tmp_path):
    db = tmp_path / "x.db"
    files = {
        "title": FIXTURES / "title" / "2001.json",
        "unknown": FIXTURES / "unknown" / "9999.json",
        "finished": FIXTURES / "finished" / "2001.json",
        "ambiguous": FIXTURES / "ambiguous" / "2001.json",
    }
    proc = ok(import_backlogs(db, *files.values()))  # skips are no failure
    rows = summary(proc.stdout)
    for file in files.values():
        assert {k: rows[str(file)][k] for k in ("backlogs", "imported", "skipped")} == {
            "backlogs": 1, "imported": 0, "skipped": 1}
    assert "title" in rows[str(files["title"])]["result"]
    assert "Port Sweep from 1.2.3.4" in rows[str(files["title"])]["result"]
    assert "directive 9999 is not loaded" in rows[str(files["unknown"])]["result"]
    assert "cannot determine the current stage" in rows[str(files["finished"])]["result"]
    reason = rows[str(files["ambiguous"])]["result"]
    assert "cannot resolve reference to source address" in reason
    assert rows["total"]["skipped"] == 4 and rows["total"]["imported"] == 0
    assert query(db, "SELECT count(*) FROM backlogs") == [(0,)]
    assert query(db, "SELECT count(*) FROM stages") == [(0,)]


def test_a_repeated_alarm_id_in_one_file_is_skipped_not_a_crash(tmp_path):
    db = tmp_path / "x.db"
    file = FIXTURES / "duplicate" / "2001.json"
    rows = summary(ok(import_backlogs(db, file)).stdout)
    assert rows[str(file)]["imported"] == 1 and rows[str(file)]["skipped"] == 1
    assert "repeated" in rows[str(file)]["result"]
    assert query(db, "SELECT id, risk FROM backlogs") == [("Twice0001", 1)]  # the first one


# -- after the import ---------------------------------------------------------------------


def test_a_passed_deadline_expires_at_the_first_check(tmp_path):
    db, out = tmp_path / "x.db", tmp_path / "out"
    ok(import_backlogs(db, M_FILE))
    assert backlog(db, ALARM_ID)["deadline"] == 1714558503
    now = int(time.time())
    unrelated = event("unrelated-1", now, "10.9.9.9", "10.9.9.8", plugin_id=4242)
    ok(replay(db, out, write_events(tmp_path / "events.json", [unrelated])))

    (alarm,) = lines(out / "siem_alarms.json")
    assert alarm["alarm_id"] == ALARM_ID
    assert [r.get("status") for r in alarm["rules"]] == ["finished", "finished", "timeout"]
    assert (alarm["risk"], alarm["risk_class"]) == (1, "Low")
    # restored with its enrichment and sets
    assert alarm["vulnerabilities"] == [dict(zip(("provider", "term", "result"), NESD,
                                                 strict=True))]
    assert (alarm["src_ips"], alarm["dst_ips"]) == (["203.0.113.50"], ["192.168.10.5"])
    assert lines(out / "siem_alarm_events.json") == []
    b = backlog(db, ALARM_ID)
    assert b["state"] == "expired" and b["ended_time"] == now
    assert [s["status"] for s in stages_of(db, ALARM_ID)] == ["finished", "finished", "timeout"]


def continuation_backlog(t: int) -> dict:
    """Directive 2001 waiting at stage 2 (dsiem-backend's format): stage 1 done, 1 of 3 ports
    seen."""
    scan = {"name": "Portscan SYN", "plugin_id": 1001, "plugin_sid": [2100498],
            "protocol": "TCP"}
    return {
        "alarm_id": "Cont00001", "title": "Port Scan from SRC_IP", "status": "Open",
        "tag": "Identified Threat", "kingdom": "Reconnaissance & Probing",
        "category": "Network Scan", "created_time": 0, "update_time": t + 1,
        "risk": 0, "risk_class": "",
        "rules": [
            rule(1, **scan, to="HOME_NET", start_time=t, end_time=t, status="finished",
                 saved_event_ids=["cont-1"]),
            rule(2, **scan, occurrence=3, reliability=4, timeout=300, start_time=t,
                 end_time=t + 1, sticky_different="DST_PORT",
                 saved_sticky_diffdata={"sdiff_string": [], "sdiff_int": [22]},
                 saved_event_ids=["cont-2"], **{"from": "203.0.113.50"}),
            rule(3, **scan, occurrence=20, to="192.168.10.5", reliability=8, timeout=900,
                 sticky_different="DST_PORT", **{"from": "203.0.113.50"}),
        ],
        "src_ips": ["203.0.113.50"], "dst_ips": ["192.168.10.5"], "networks": [],
        "saved_last_srcport": 40022, "saved_last_dstport": 22,
    }


def test_an_imported_backlog_continues_with_new_events(tmp_path):
    t = int(time.time()) - 120
    db, out = tmp_path / "x.db", tmp_path / "out"
    file = write_saved(tmp_path / "saved" / "2001.json", [continuation_backlog(t)])
    ok(import_backlogs(db, file))
    assert backlog(db, "Cont00001")["current_stage"] == 2

    events = [
        scan_event("new-22", t + 10, "192.168.10.6", 22),  # port seen before the save
        scan_event("new-23", t + 11, "192.168.10.6", 23),
        scan_event("new-80", t + 12, "192.168.10.5", 80),
    ]
    ok(replay(db, out, write_events(tmp_path / "events.json", events)))

    assert lines(out / "siem_alarm_events.json") == [
        {"alarm_id": "Cont00001", "stage": 2, "event_id": "new-23"},
        {"alarm_id": "Cont00001", "stage": 2, "event_id": "new-80"},
    ]
    (alarm,) = lines(out / "siem_alarms.json")
    assert alarm["alarm_id"] == "Cont00001"
    assert (alarm["risk"], alarm["risk_class"]) == (3 * 4 * 4 // 25, "Low")
    assert alarm["src_ips"] == ["203.0.113.50"]
    assert alarm["dst_ips"] == ["192.168.10.5", "192.168.10.6"]
    assert alarm["networks"] == ["192.168.10.0/24"]
    assert [r.get("status") for r in alarm["rules"]] == ["finished", "finished", None]
    assert alarm["rules"][1]["end_time"] == t + 12 == alarm["rules"][2]["start_time"]
    assert alarm["created_time"] == t + 12
    b = backlog(db, "Cont00001")
    assert (b["state"], b["current_stage"], b["risk"]) == ("live", 3, 1)
    assert (b["last_srcport"], b["last_dstport"]) == (40080, 80)
    assert query(db, "SELECT count(*) FROM backlogs") == [(1,)]  # no new backlog opened
    assert query(
        db, "SELECT event_id FROM stage_events WHERE stage = 2 ORDER BY id"
    ) == [("cont-2",), ("new-23",), ("new-80",)]


# -- re-running, failures, dry run, removal -----------------------------------------------


def test_a_second_import_changes_nothing(tmp_path):
    db = tmp_path / "x.db"
    ok(import_backlogs(db, M_FILE, FIXTURES / "mixed"))
    before = dump(db)
    assert len(before["backlogs"]) == 3
    proc = ok(import_backlogs(db, M_FILE, FIXTURES / "mixed"))
    rows = summary(proc.stdout)
    mixed = str(FIXTURES / "mixed" / "2001.json")
    assert rows[str(M_FILE)] == {"backlogs": 1, "imported": 0, "present": 1, "skipped": 0,
                                 "result": "ok"}
    assert (rows[mixed]["imported"], rows[mixed]["present"]) == (0, 2)
    assert "already present" in proc.stdout
    assert dump(db) == before


def test_a_bad_file_imports_nothing_and_the_others_still_import(tmp_path):
    db = tmp_path / "x.db"
    truncated = FIXTURES / "truncated" / "2001.json"
    bad_risk = FIXTURES / "badrisk" / "2001.json"
    bad_ids = FIXTURES / "badids" / "2001.json"
    proc = import_backlogs(db, truncated, bad_risk, bad_ids, M_FILE)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = summary(proc.stdout)

    text = truncated.read_text()
    line, column = text.count("\n") + 1, len(text.rsplit("\n", 1)[1])
    reason = rows[str(truncated)]["result"]
    assert reason.startswith("invalid JSON")
    assert f"line {line} column {column}" in reason
    assert rows[str(bad_risk)]["result"].startswith("backlog 1: risk:")
    assert "integer" in rows[str(bad_risk)]["result"]
    assert rows[str(bad_ids)]["result"].startswith("backlog 1: rules[1].saved_event_ids:")
    for file in (truncated, bad_risk, bad_ids):
        assert rows[str(file)]["imported"] == 0
    assert rows[str(M_FILE)]["imported"] == 1
    assert rows["total"]["result"] == "3 files failed"
    # the valid first backlogs of the bad files were not imported either
    assert query(db, "SELECT id FROM backlogs") == [(ALARM_ID,)]
    assert query(db, "SELECT DISTINCT backlog_id FROM stages") == [(ALARM_ID,)]


def test_a_narrow_terminal_still_shows_the_whole_file_name_and_reason(tmp_path):
    long_dir = tmp_path / "a-rather-long-directory-name-for-saved-backlogs" / "node-0"
    file = long_dir / "2001.json"
    long_dir.mkdir(parents=True)
    shutil.copy(FIXTURES / "badids" / "2001.json", file)
    proc = cli("import-backlogs", file, "--configs", CONFIGS, "--db", tmp_path / "x.db",
               columns=80)
    assert proc.returncode == 1
    assert max(len(x) for x in proc.stdout.splitlines()) <= 80
    (row,) = [r for r in table_rows(proc.stdout) if r[0] != "total"]
    assert row[0] == str(file)
    assert "backlog1:rules[1].saved_event_ids:" in row[5].replace(" ", "")


def test_dry_run_creates_no_database(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    db = work / "x.db"
    copy = tmp_path / "saved" / "2001.json"
    copy.parent.mkdir()
    shutil.copy(M_FILE, copy)
    proc = ok(import_backlogs(db, copy, FIXTURES / "mixed", FIXTURES / "title",
                              flags=("--dry-run", "--remove")))
    assert "dry run: nothing written" in proc.stdout
    rows = summary(proc.stdout)
    assert rows[str(copy)]["imported"] == 1
    assert rows[str(FIXTURES / "mixed" / "2001.json")]["imported"] == 2
    assert rows[str(FIXTURES / "title" / "2001.json")]["skipped"] == 1
    assert rows["total"]["imported"] == 3
    assert list(work.iterdir()) == []  # no database, journal or lock file
    assert copy.exists()  # --remove does nothing in a dry run


def test_dry_run_leaves_an_existing_database_unchanged(tmp_path):
    db = tmp_path / "x.db"
    ok(import_backlogs(db, M_FILE))
    before, files = dump(db), sorted(p.name for p in tmp_path.iterdir())
    proc = ok(import_backlogs(db, M_FILE, FIXTURES / "mixed", flags=("--dry-run",)))
    rows = summary(proc.stdout)
    assert (rows[str(M_FILE)]["imported"], rows[str(M_FILE)]["present"]) == (0, 1)
    assert rows[str(FIXTURES / "mixed" / "2001.json")]["imported"] == 2
    assert dump(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def test_remove_deletes_only_fully_imported_files(tmp_path):
    saved_dir = tmp_path / "saved"
    for name in ("m", "partial", "truncated"):
        target = saved_dir / name / "2001.json"
        target.parent.mkdir(parents=True)
        shutil.copy(FIXTURES / name / "2001.json", target)
    unknown = saved_dir / "unknown" / "9999.json"
    unknown.parent.mkdir()
    shutil.copy(FIXTURES / "unknown" / "9999.json", unknown)
    db = tmp_path / "x.db"

    proc = import_backlogs(db, *sorted(saved_dir.iterdir()), flags=("--remove",))
    assert proc.returncode == 1  # the truncated file
    assert not (saved_dir / "m" / "2001.json").exists()
    assert (saved_dir / "partial" / "2001.json").exists()  # one backlog skipped
    assert (saved_dir / "truncated" / "2001.json").exists()  # failed
    assert unknown.exists()  # skipped
    assert sorted(query(db, "SELECT id FROM backlogs")) == [("Partial01",), (ALARM_ID,)]

    # without --remove the files stay; a later --remove run deletes what is all present
    again = tmp_path / "again" / "2001.json"
    again.parent.mkdir()
    shutil.copy(M_FILE, again)
    ok(import_backlogs(tmp_path / "y.db", again))
    assert again.exists()
    rows = summary(ok(import_backlogs(tmp_path / "y.db", again, flags=("--remove",))).stdout)
    assert rows[str(again)]["present"] == 1
    assert not again.exists()


@pytest.mark.parametrize("name", ["1001-old.json", "backlogs.json"])
def test_a_file_name_that_is_no_directive_id_fails(tmp_path, name):
    file = tmp_path / name
    shutil.copy(M_FILE, file)
    proc = import_backlogs(tmp_path / "x.db", file)
    assert proc.returncode == 1
    assert "directive id" in summary(proc.stdout)[str(file)]["result"]
    assert query(tmp_path / "x.db", "SELECT count(*) FROM backlogs") == [(0,)]

"""`dsiem-sql serve` imports `<logs>/backlogs/*.json` (legacy saved backlogs) at start, before
it is ready, and removes the files it fully imported (docs/behaviour.md, "Saved backlogs")."""

from __future__ import annotations

import json
import time

import kit

FIXTURES = kit.FIXTURES / "backlogs"
CONFIGS = FIXTURES / "configs"
ALARM_ID = "Qm7_tR2xZ"


def shifted(items: list[dict], delta: int) -> list[dict]:
    """The saved backlogs with every non-zero time moved by `delta` seconds."""
    for b in items:
        for key in ("created_time", "update_time"):
            b[key] += delta
        for rule in b["rules"]:
            for key in ("start_time", "end_time"):
                if rule.get(key):
                    rule[key] += delta
    return items


def test_serve_imports_saved_backlogs_at_start(serve):
    items = json.loads((FIXTURES / "m" / "2001.json").read_text())
    stage3_start = int(time.time()) - 60
    shifted(items, stage3_start - 1714557603)  # deadline 14 minutes from now
    s = serve(configs=CONFIGS)
    saved = s.logs / "backlogs"
    saved.mkdir(parents=True)
    (saved / "2001.json").write_text(json.dumps(items, indent=2) + "\n")
    truncated = (FIXTURES / "truncated" / "2001.json").read_text()
    (saved / "3001.json").write_text(truncated)  # cannot be imported: kept

    s.start()  # ready: the import is done

    assert s.query("SELECT id, state, current_stage, risk, deadline FROM backlogs") == [
        (ALARM_ID, "live", 3, 1, stage3_start + 900)]
    assert s.query("SELECT stage, status, start_time FROM stages ORDER BY stage") == [
        (1, "finished", stage3_start - 3), (2, "finished", stage3_start - 3),
        (3, "", stage3_start)]
    assert s.query("SELECT count(*) FROM stage_events") == [(6,)]
    assert s.query("SELECT kind, provider FROM enrichments") == [("vuln", "Nesd")]
    assert not (saved / "2001.json").exists()
    assert (saved / "3001.json").read_text() == truncated
    log = s.log.read_text()
    assert "imported 1 saved backlogs from" in log
    assert "cannot import saved backlogs from" in log and "3001.json" in log
    assert s.stop() == 0
    # a stop keeps it live in the database, to be resumed by the next start
    assert s.query("SELECT state FROM backlogs") == [("live",)]


def test_an_imported_backlog_past_its_deadline_expires_at_start(serve):
    s = serve(configs=CONFIGS)
    saved = s.logs / "backlogs"
    saved.mkdir(parents=True)
    (saved / "2001.json").write_bytes((FIXTURES / "m" / "2001.json").read_bytes())
    (saved / "3001.json").write_bytes((FIXTURES / "truncated" / "2001.json").read_bytes())

    s.start()  # two files: read by worker processes, then made live in the engine
    s.wait_for("SELECT id, state FROM backlogs", [(ALARM_ID, "expired")])
    assert s.stop() == 0
    alarms = [json.loads(x) for x in (s.logs / "siem_alarms.json").read_text().splitlines()]
    assert [a["alarm_id"] for a in alarms] == [ALARM_ID]
    assert alarms[0]["rules"][2]["status"] == "timeout"
    assert not (saved / "2001.json").exists()

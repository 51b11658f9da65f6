"""`dsiem-sql replay` as a user runs it: a real process on the bundled examples."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import kit
import pytest
from kit import CONFIGS, EXAMPLES, directive, event, rule


def replay(out: Path, *extra: str, events: str = str(EXAMPLES / "events.jsonl"), **kw):
    return kit.replay(CONFIGS, out, events, *extra, **kw)


def summary(stdout: str) -> dict[str, str]:
    """The rows `| name | value |` of the summary table."""
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"^\| ([a-z/ ]+?) +\| +(\S+) \|$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def normalized(out: Path) -> tuple[list[dict], list[dict]]:
    """Output records with alarm ids replaced by their order of first appearance."""
    ids: dict[str, str] = {}

    def norm(record: dict) -> dict:
        record["alarm_id"] = ids.setdefault(record["alarm_id"], f"alarm-{len(ids)}")
        return record

    links = [norm(json.loads(x)) for x in (out / "siem_alarm_events.json").open()]
    alarms = [norm(json.loads(x)) for x in (out / "siem_alarms.json").open()]
    return alarms, links


def test_replay_examples_writes_both_files_and_a_summary(tmp_path):
    run = replay(tmp_path)
    assert run.returncode == 0, run.stderr
    s = summary(run.stdout)
    events = sum(1 for line in (EXAMPLES / "events.jsonl").open() if line.strip())
    assert s["events read"] == str(events)
    assert (s["invalid"], s["whitelisted"]) == ("1", "1")
    assert int(s["alarms"]) == 4 and int(s["backlogs opened"]) == 6
    # every backlog opened either finished, expired (at the latest in the final sweep) or lives
    assert (s["backlogs finished"], s["backlogs expired"], s["live backlogs"]) == ("2", "4", "0")
    assert {"seconds", "events/s", "matched"} <= s.keys()
    alarms, links = normalized(tmp_path)
    assert len(links) == int(s["matched"])  # every example event that matched was counted once
    assert len({a["alarm_id"] for a in alarms}) == 4
    ping = [a for a in alarms if a["title"] == "Ping Flood from 10.0.0.1"]
    assert [a["risk"] for a in ping] == [2, 2]  # stage 2 done, then the final expiry sweep
    assert ping[-1]["rules"][2]["status"] == "timeout"


def test_bad_line_is_reported_with_its_number_and_skipped(tmp_path):
    run = replay(tmp_path)
    lines = (EXAMPLES / "events.jsonl").read_text().splitlines()
    bad = next(i for i, line in enumerate(lines, 1) if "not a time" in line)
    assert f"line {bad}: cannot parse event: timestamp" in run.stderr
    assert "Traceback" not in run.stderr


def test_same_input_gives_the_same_output(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert replay(first).returncode == 0 and replay(second).returncode == 0
    assert normalized(first) == normalized(second)


def test_events_from_stdin(tmp_path):
    events = (EXAMPLES / "events.jsonl").read_text()
    run = replay(tmp_path / "stdin", events="-", input=events)
    assert run.returncode == 0, run.stderr
    replay(tmp_path / "file")
    assert normalized(tmp_path / "stdin") == normalized(tmp_path / "file")


def test_output_is_appended_not_overwritten(tmp_path):
    replay(tmp_path)
    before = (tmp_path / "siem_alarm_events.json").read_text()
    replay(tmp_path)
    after = (tmp_path / "siem_alarm_events.json").read_text()
    assert after.startswith(before) and len(after.splitlines()) == 2 * len(before.splitlines())


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--med_risk_max", "11"], {}, "error reading med_risk_min and med_risk_max"),
        ([], {"DSIEM_MEDRISKMIN": "1"}, "error reading med_risk_min and med_risk_max"),
        (["--reference-mode", "sideways"], {}, "reference_mode"),
    ],
)
def test_invalid_settings_exit_1_with_a_clear_message(tmp_path, args, env, message):
    run = replay(tmp_path, *args, env=env)
    assert run.returncode == 1
    assert message in run.stderr and "Traceback" not in run.stderr


def test_missing_event_file_and_bad_config_exit_1(tmp_path):
    run = replay(tmp_path, events=str(tmp_path / "nope.jsonl"))
    assert run.returncode == 1 and "nope.jsonl: cannot read events" in run.stderr
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "assets_x.json").write_text('{"assets": [}')
    run = kit.replay(tmp_path / "cfg", tmp_path, "-", input="")
    assert run.returncode == 1
    assert "assets_x.json: invalid JSON" in run.stderr and "Traceback" not in run.stderr


def test_reference_mode_from_the_environment_changes_the_result(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "assets_x.json").write_text(json.dumps(
        {"assets": [{"name": "net", "cidr": "192.168.0.0/16", "value": 5}]}))
    (cfg / "directives_x.json").write_text(json.dumps({"directives": [directive(
        1, [rule(1, **{"from": "192.168.0.0/16"}),
            rule(2, occurrence=2, reliability=10, timeout=60, **{"from": ":1"})],
        name="net sweep", priority=5)]}))
    events = "".join(json.dumps(event(f"e{i}", kit.T0 + i, f"192.168.0.{i + 10}", "8.8.8.8"))
                     + "\n" for i in range(3))
    by_value = kit.replay(cfg, tmp_path / "v", "-", "--no-final-sweep", input=events)
    by_rule = kit.replay(cfg, tmp_path / "r", "-", "--no-final-sweep", input=events,
                         env={"DSIEM_REFERENCE_MODE": "rule"})
    assert summary(by_value.stdout)["backlogs opened"] == "3"  # each source its own backlog
    assert summary(by_rule.stdout)["backlogs opened"] == "1"  # the CIDR text was copied
    assert summary(by_rule.stdout)["alarms"] == "1"


def test_copies_of_an_event_are_one_record_in_the_file_and_the_database(tmp_path):
    """Five copies of one ping count once: one line and one `alarm_events` row
    (docs/behaviour.md, "Repeated event ids")."""
    lines = (EXAMPLES / "events.jsonl").read_text().splitlines()
    first, second = lines[0], lines[1]  # ping-01 opens the backlog, ping-02 goes to stage 2
    events = tmp_path / "copies.jsonl"
    events.write_text("\n".join([first, *[second] * 5]) + "\n")
    db = tmp_path / "dsiem.db"
    run = replay(tmp_path / "out", "--db", str(db), events=str(events))
    assert run.returncode == 0, run.stderr
    links = [json.loads(x) for x in (tmp_path / "out" / "siem_alarm_events.json").open()]
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT alarm_id, stage, event_id FROM alarm_events").fetchall()
    finally:
        con.close()
    assert [(x["alarm_id"], x["stage"], x["event_id"]) for x in links] == rows
    assert [event_id for _, _, event_id in rows] == ["ping-01", "ping-02"]


def test_a_flood_of_bad_lines_logs_a_few_warnings_and_a_count(tmp_path):
    """Issue 10: at most 10 bad-line warnings a second, the rest counted in a summary line."""
    run = replay(tmp_path, events="-", input="not an event\n" * 500)
    assert run.returncode == 0, run.stderr
    assert summary(run.stdout)["invalid"] == "500"
    lines = run.stderr.splitlines()
    one_by_one = sum("cannot parse event" in line for line in lines)
    summed = sum(int(m.group(1)) for line in lines
                 if (m := re.search(r"… and (\d+) more invalid events in the last", line)))
    assert one_by_one < 100 and one_by_one + summed == 500

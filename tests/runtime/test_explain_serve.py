"""`dsiem-sql explain --db` on the database of a running serve (issue 19): serve runs
in-process (the real Service and worker on a real SQLite file), `explain` runs as a process
of its own, read-only, between and after the events."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from kit import cli, directive, event, ok, rule
from servicekit import InProcess

pytestmark = pytest.mark.asyncio


def write_configs(configs) -> object:
    configs.mkdir(parents=True, exist_ok=True)
    (configs / "assets_home.json").write_text(json.dumps({"assets": [
        {"name": "office", "cidr": "10.0.0.0/8", "value": 4},
        {"name": "server", "cidr": "10.0.0.5", "value": 5},
    ]}))
    d = directive(7, [
        rule(1, to="HOME_NET", reliability=3),
        rule(2, occurrence=3, timeout=600, reliability=6, sticky_different="DST_PORT",
             **{"from": ":1", "to": ":1"}),
        rule(3, occurrence=2, timeout=900, reliability=9, **{"from": ":1"}),
    ], priority=4, name="Scan of DST_IP")
    (configs / "directives_dsiem-backend-0_t.json").write_text(json.dumps({"directives": [d]}))
    return configs


async def explain(db, *args: str) -> dict:
    """`dsiem-sql explain --db DB ... --format json` as a process (off the event loop, which
    goes on running serve meanwhile)."""
    run = await asyncio.to_thread(cli, "explain", "--db", db, "--format", "json", "--", *args)
    return json.loads(ok(run).stdout)


async def test_explain_reads_the_database_of_a_running_serve(tmp_path):
    configs = write_configs(tmp_path / "configs")
    now = int(time.time())
    async with InProcess(tmp_path, configs=configs) as serve:
        db = serve.options.db
        serve.put(event("open", now - 30, "192.0.2.7", "10.0.0.5", src_port=40000,
                        dst_port=22),
                  event("port-80", now - 20, "192.0.2.7", "10.0.0.5", dst_port=80),
                  event("port-80-again", now - 15, "192.0.2.7", "10.0.0.5", dst_port=80),
                  event("elsewhere", now - 10, "192.0.2.7", "10.0.0.6", dst_port=443))
        await serve.settle()
        # `elsewhere` is to another address than stage 1's: a backlog of its own
        assert serve.query("SELECT count(*) FROM backlogs") == [(2,)]
        [(alarm_id,)] = serve.query("SELECT backlog_id FROM stage_events WHERE event_id = 'open'")

        r = await explain(db, alarm_id)
        assert serve.task is not None and not serve.task.done()  # serve ran all along
        assert (r["alarm_id"], r["state"], r["current_stage"], r["alarm"]) == (
            alarm_id, "live", 2, True)
        assert r["directive"]["id"] == 7 and r["directive"]["version"] == 1
        assert r["directive"]["definition"]["rules"][1]["from"] == ":1"
        assert [s["status"] for s in r["stages"]] == ["finished", "active", "pending"]
        assert [s["events"] for s in r["stages"]] == [["open"], ["port-80"], []]
        assert [s["progress"] for s in r["stages"]] == ["1/1", "1/3", "0/2"]
        assert r["stages"][0]["event_details"] == [{
            "event_id": "open", "time": now - 30, "src_ip": "192.0.2.7", "dst_ip": "10.0.0.5",
            "src_port": 40000, "dst_port": 22}]
        assert r["stages"][1]["start_time"] == now - 30
        assert r["stages"][1]["deadline"] == now - 30 + 600
        assert r["stages"][1]["sticky"] == [80]
        assert "from 192.0.2.7 (:1) to 10.0.0.5 (:1)" in r["stages"][1]["text"]
        # 4 x 3 x 5 // 25: the value of 10.0.0.5 is its host asset's, found through the
        # config directory serve loaded (`reloads`), without --configs
        risk = r["risk"]
        assert (risk["risk"], risk["class"], risk["priority"], risk["reliability"],
                risk["stage"], risk["value"], risk["address"]) == (2, "Low", 4, 3, 1, 5,
                                                                   "10.0.0.5")
        assert risk["asset"] == {"name": "server", "cidr": "10.0.0.5/32", "value": 5,
                                 "whitelisted": False}
        assert risk["assets_from"] == str(configs.resolve())
        waiting = r["waiting"]
        assert r["clock"]["source"] == "wall" and r["ended"] is None
        assert (waiting["stage"], waiting["needs"], waiting["deadline"]) == (2, 2, now + 570)
        assert 0 < waiting["seconds_left"] <= 570
        assert "2 more events (1/3 taken)" in waiting["what"]
        assert "each with a different DST_PORT, other than 80" in waiting["conditions"]
        assert "left by the wall clock" in waiting["until"]

        text = await asyncio.to_thread(cli, "explain", "--db", db, "--", alarm_id)
        lines = ok(text).stdout.splitlines()
        assert lines[0].startswith(f"alarm {alarm_id}: live at stage 2 of 3, an alarm since")
        assert any(line.startswith("waits for  stage 2") for line in lines)
        assert any(line.startswith("until") and "left by the wall clock" in line
                   for line in lines)
        assert "  events     port-80  " in "\n".join(lines)

        # serve goes on while explain reads: stage 2 finishes, the risk is computed again.
        # Whichever commit explain sees, it sees all of it.
        serve.put(event("port-443", now - 5, "192.0.2.7", "10.0.0.5", dst_port=443),
                  event("port-8080", now - 4, "192.0.2.7", "10.0.0.5", dst_port=8080))
        during, _ = await asyncio.gather(explain(db, alarm_id), serve.settle())
        statuses = [s["status"] for s in during["stages"]]
        assert statuses in (["finished", "active", "pending"],
                            ["finished", "finished", "active"])
        assert during["current_stage"] == statuses.index("active") + 1
        assert all(len(s["events"]) == s["taken"] == len(s["event_details"])
                   for s in during["stages"])
        r = await explain(db, alarm_id)
        assert [s["status"] for s in r["stages"]] == ["finished", "finished", "active"]
        assert r["stages"][1]["events"] == ["port-80", "port-443", "port-8080"]
        assert (r["risk"]["risk"], r["risk"]["reliability"], r["risk"]["stage"]) == (
            4 * 6 * 5 // 25, 6, 2)
        assert r["waiting"]["stage"] == 3 and r["waiting"]["deadline"] == now - 4 + 900

"""The directive extensions in `serve` over a real nats-server: an absence stage that waits
through a SIGKILL still completes at its deadline, and serve and replay give the same alarms
for the same events (docs/extensions.md)."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

from kit import EXAMPLES, event, ok, replay
from servekit import publish

ABSENCE_TIMEOUT = 8  # s: long enough to kill serve and start it again within it


def extension_configs(tmp_path: Path, absence_timeout: int) -> Path:
    """The example extended directives, the absence stage of 9001 shortened."""
    configs = tmp_path / "configs"
    shutil.copytree(EXAMPLES / "extensions" / "configs", configs)
    path = configs / "directives_dsiem-backend-0_extended.json"
    doc = json.loads(path.read_text())
    for d in doc["directives"]:
        if d["id"] == 9001:
            d["rules"][1]["timeout"] = absence_timeout
    path.write_text(json.dumps(doc))
    return configs


def login(event_id: str, ts: float, user: str) -> dict:
    return event(event_id, ts, "203.0.113.7", "10.0.0.1", plugin_id=3001, plugin_sid=1,
                 custom_label1="user", custom_data1=user)


def file_access(event_id: str, ts: float, user: str) -> dict:
    return event(event_id, ts, "10.8.0.5", "10.0.0.20", plugin_id=3002, plugin_sid=1,
                 dst_port=445, custom_label1="user", custom_data1=user)


def alarm_lines(logs: Path) -> list[dict]:
    path = logs / "siem_alarms.json"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_an_absence_stage_completes_at_its_deadline_after_a_sigkill(serve, tmp_path,
                                                                    nats_server):
    configs = extension_configs(tmp_path, ABSENCE_TIMEOUT)
    node = serve("node", configs=configs).start()
    now = time.time()
    publish(nats_server.url, [login("login-1", now, "alice")])
    # the backlog waits in its absence stage, saved with its deadline
    node.wait_for("SELECT state, current_stage FROM backlogs", [("live", 2)])
    [(deadline,)] = node.query("SELECT deadline FROM backlogs")
    assert deadline == int(now) + ABSENCE_TIMEOUT
    assert node.stop(signal.SIGKILL) == -signal.SIGKILL
    assert time.time() < deadline - 2, "too slow to test a restart before the deadline"

    node = serve("node", configs=configs).start()
    assert "resumed 1 live backlog" in node.log.read_text()
    assert alarm_lines(node.logs) == []  # nothing before the deadline
    node.wait_for("SELECT state FROM backlogs", [("finished",)], timeout=ABSENCE_TIMEOUT + 20)
    [alarm] = alarm_lines(node.logs)
    assert alarm["title"] == "VPN login by 203.0.113.7 with no file server access"
    assert [r["status"] for r in alarm["rules"]] == ["finished", "finished"]
    assert alarm["rules"][1]["absent"] is True
    assert alarm["rules"][1]["end_time"] == deadline
    # completed by the expiry sweep of the second after the deadline
    assert deadline < alarm["update_time"] <= deadline + 3
    # no event of the absence stage: the alarm-event lines name the login only
    links = (node.logs / "siem_alarm_events.json").read_text().splitlines()
    assert [json.loads(x)["event_id"] for x in links] == ["login-1"]
    assert node.stop() == 0


def normalized(alarm: dict) -> tuple:
    """An alarm line without what depends on the clock of the run: its id and times."""
    rules = tuple((r["stage"], r.get("status", ""), r.get("start_time"), r.get("end_time"))
                  for r in alarm["rules"])
    return (alarm["title"], alarm["risk"], alarm["risk_class"], rules,
            tuple(alarm["src_ips"]), tuple(alarm["dst_ips"]))


def test_serve_and_replay_give_the_same_alarms(serve, tmp_path, nats_server):
    configs = extension_configs(tmp_path, 3)
    base = time.time()
    events = [
        login("alice-login", base, "alice"),  # no file access: an alarm at the deadline
        login("bob-login", base + 0.2, "bob"),
        file_access("bob-smb", base + 0.4, "bob"),  # bob's absence stage ends the backlog
        # 9002: one host, 61 (source, port) pairs: an alarm at stage 2, finished at stage 3
        *(event(f"deny-{i}", base + 0.5 + i / 1000, f"198.51.100.{i % 10 + 1}",
                "192.168.0.3", plugin_id=3003, plugin_sid=1, dst_port=1000 + i // 10)
          for i in range(61)),
        # 9003: the attacked host connects out to three hosts
        event("exploit", base + 0.7, "203.0.113.66", "192.168.10.5", plugin_id=3004,
              plugin_sid=2),
        *(event(f"out-{i}", base + 0.8 + i / 100, "192.168.10.5", f"198.51.100.{i}",
                plugin_id=3005, plugin_sid=1) for i in range(1, 4)),
    ]
    node = serve("node", configs=configs).start()
    publish(nats_server.url, events)
    node.wait_for("SELECT state, count(*) FROM backlogs GROUP BY state ORDER BY state",
                  [("expired", 1), ("finished", 3)], timeout=30)  # alice's at the deadline
    assert node.stop() == 0
    served = alarm_lines(node.logs)

    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(json.dumps(e) + "\n" for e in events))
    out = tmp_path / "replay"
    ok(replay(configs, out, events_file))
    replayed = alarm_lines(out)

    assert sorted(map(normalized, served)) == sorted(map(normalized, replayed))
    titles = {a["title"] for a in served}
    assert titles == {"VPN login by 203.0.113.7 with no file server access",
                      "Distributed scan of 192.168.0.3",
                      "192.168.10.5 attacked, then connecting out"}
    vpn = [a for a in served if a["title"].startswith("VPN")]
    assert len(vpn) == 1  # bob's backlog ended without an alarm

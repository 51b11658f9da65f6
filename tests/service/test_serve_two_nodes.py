"""Two backends on one NATS, each with its own node's directives: both receive every event,
each correlates only with its own directives."""

from __future__ import annotations

import json
import shutil
import time

from kit import CONFIGS
from scenario import directives_file, ping_events, port_scan_events, read_jsonl
from servekit import publish


def test_each_node_uses_only_its_own_directives(serve, nats_server, tmp_path):
    nodes = {}
    for node, directive in (("alpha", 1), ("beta", 2001)):
        configs = tmp_path / f"configs-{node}"
        configs.mkdir()
        shutil.copy(CONFIGS / "assets_example.json", configs)
        directives_file(configs / f"directives_{node}_x.json", directive)
        nodes[node] = serve(node, configs=configs, node=node).start()
    alpha, beta = nodes["alpha"], nodes["beta"]

    base = int(time.time()) - 300
    events = ping_events(base) + port_scan_events(base)
    publish(nats_server.url, events)
    alpha.wait_for("SELECT count(*) FROM alarm_events", [(17,)])
    beta.wait_for("SELECT count(*) FROM alarm_events", [(12,)])
    assert alpha.stop() == 0
    assert beta.stop() == 0

    assert alpha.query("SELECT DISTINCT directive_id FROM backlogs") == [(1,)]
    assert beta.query("SELECT DISTINCT directive_id FROM backlogs") == [(2001,)]
    assert {x["event_id"] for x in read_jsonl(alpha.logs / "siem_alarm_events.json")} == {
        e["event_id"] for e in events if e["event_id"].startswith("ping-")}
    assert {x["event_id"] for x in read_jsonl(beta.logs / "siem_alarm_events.json")} == {
        e["event_id"] for e in events if e["event_id"].startswith("scan-")}
    assert {a["title"] for a in read_jsonl(alpha.logs / "siem_alarms.json")} == {
        "Ping Flood from 10.0.0.1"}
    beta_alarms = read_jsonl(beta.logs / "siem_alarms.json")
    assert [(a["title"], a["risk"]) for a in beta_alarms] == [
        ("Port Scan from 203.0.113.50", 2), ("Port Scan from 203.0.113.50", 4)]
    assert all(a["networks"] == ["192.168.0.0/16"] for a in beta_alarms), json.dumps(beta_alarms)
    for node in (alpha, beta):  # both saw every event: plain subscriptions, no queue group
        assert f"stopped: {len(events)} events processed" in node.log.read_text()

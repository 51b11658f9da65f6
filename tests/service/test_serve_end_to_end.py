"""The Ping Flood example over a real NATS, end to end (issue 4)."""

from __future__ import annotations

import json
import time

from scenario import ping_events
from servekit import publish


def test_ping_flood_over_nats_gives_the_alarm_and_the_rows(serve, nats_server):
    node = serve().start()
    publish(nats_server.url, ping_events(int(time.time()) - 300))
    node.wait_for("SELECT count(*) FROM alarm_events", [(17,)])
    assert node.stop() == 0

    alarms = [json.loads(x) for x in (node.logs / "siem_alarms.json").read_text().splitlines()]
    assert len(alarms) == 1
    alarm = alarms[0]
    assert (alarm["title"], alarm["risk"], alarm["risk_class"]) == (
        "Ping Flood from 10.0.0.1", 2, "Low")
    assert alarm["networks"] == ["10.0.0.0/8"]
    links = [json.loads(x) for x in (node.logs / "siem_alarm_events.json").read_text().splitlines()]
    assert [(x["stage"], x["event_id"]) for x in links if x["alarm_id"] == alarm["alarm_id"]] == (
        [(1, "ping-01")] + [(2, f"ping-{n:02d}") for n in (2, 4, 5, 6, 7)]
        + [(3, f"ping-{n:02d}") for n in range(8, 18)]
    )
    assert node.query("SELECT alarm_id, current_stage, stage_events FROM live_backlogs "
                      "ORDER BY created_time DESC") == [
        (alarm["alarm_id"], 3, 10), (links[2]["alarm_id"], 2, 0)]
    assert node.query("SELECT risk, risk_class, state FROM alarms") == [(2, "Low", "live")]

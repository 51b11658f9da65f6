"""Malformed, wrong-typed, invalid and oversized messages are counted, logged and skipped;
the events after them are correlated as usual."""

from __future__ import annotations

import json
import time

from scenario import ping_events, wait_metric
from servekit import publish


def test_bad_messages_are_skipped_and_the_rest_is_correlated(serve, nats_server):
    node = serve().start()
    base = int(time.time()) - 300
    good = ping_events(base)
    template = {k: v for k, v in good[0].items() if k != "event_id"}
    wrong_type = {**template, "event_id": "wrong-type", "src_port": "80"}
    invalid = {**template, "event_id": "no-title", "plugin_id": 0, "plugin_sid": 0}
    del invalid["title"]
    big = json.dumps({**template, "event_id": "big", "custom_data2": "x" * 999_000}).encode()
    assert 999_000 < len(big) < 1024 * 1024
    malformed = b'{"event_id": "broken", "title":'
    publish(nats_server.url, [malformed, wrong_type, invalid, big, *good])

    node.wait_for("SELECT count(*) FROM alarm_events", [(17,)])
    wait_metric(node, "dsiem_events_invalid_total", 4)
    wait_metric(node, "dsiem_events_received_total", 21)
    wait_metric(node, "dsiem_events_processed_total", 17)
    assert node.proc is not None and node.proc.poll() is None
    assert node.query("SELECT title, current_stage, stage_events FROM live_backlogs "
                      "ORDER BY title") == [
        ("Ping Flood from 10.0.0.1", 3, 10), ("Ping Flood from 10.0.0.2", 2, 0)]
    assert node.query("SELECT DISTINCT event_id FROM alarm_events WHERE event_id NOT LIKE "
                      "'ping-%'") == []
    warnings = [line for line in node.log.read_text().splitlines() if "WARNING" in line]
    assert sum("cannot parse event" in w for w in warnings) == 2
    assert any("cannot parse event" in w and "src_port" in w for w in warnings)
    assert any("event no-title is not valid" in w for w in warnings)
    assert any("bytes is larger than the limit" in w for w in warnings)
    assert node.stop() == 0

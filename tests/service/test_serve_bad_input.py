"""Malformed, wrong-typed, invalid and oversized messages are counted, logged and skipped;
the events after them are correlated as usual."""

from __future__ import annotations

import json
import re
import time

from kit import wait_until
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


def invalid_events(base: int, ids: list[str]) -> list[dict]:
    """Pings without plugin ids: decoded, then rejected with their event id in the reason."""
    template = {k: v for k, v in ping_events(base)[0].items() if k != "event_id"}
    return [{**template, "event_id": i, "plugin_id": 0, "plugin_sid": 0} for i in ids]


def test_event_values_cannot_forge_or_flood_log_lines(serve, nats_server):
    """Issue 10: a newline in an event id stays escaped on its line; a 100 KB id is cut."""
    node = serve().start()
    forged = "a\n2026-01-01 ERROR x: FORGED"
    publish(nats_server.url, invalid_events(int(time.time()), [forged, "b" * 100_000]))
    wait_metric(node, "dsiem_events_invalid_total", 2)
    assert node.stop() == 0
    lines = node.log.read_text().splitlines()
    assert not [line for line in lines if line.startswith("2026-01-01 ERROR x: FORGED")]
    assert any("event a\\n2026-01-01 ERROR x: FORGED is not valid" in line for line in lines)
    assert any("b" * 200 + "…(+99800 chars) is not valid" in line for line in lines)
    assert max(len(line) for line in lines) < 1000


def test_a_flood_of_invalid_events_logs_a_few_warnings_and_a_count(serve, nats_server):
    """Issue 10: at most 10 invalid-event warnings a second; the rest are counted in a summary
    line, which comes without any further event."""
    node = serve().start()
    publish(nats_server.url, invalid_events(int(time.time()), [f"bad-{i}" for i in range(500)]))
    wait_metric(node, "dsiem_events_invalid_total", 500)

    def logged() -> tuple[int, int]:
        lines = node.log.read_text().splitlines()
        one_by_one = sum("is not valid" in line for line in lines)
        summed = sum(int(m.group(1)) for line in lines
                     if (m := re.search(r"… and (\d+) more invalid events in the last", line)))
        return one_by_one, summed

    wait_until(lambda: f"500 invalid events in the log, got {logged()}",
               lambda: sum(logged()) == 500, timeout=30)
    one_by_one, summed = logged()
    assert one_by_one < 100 and summed > 400
    assert node.stop() == 0

"""A serve stopped (SIGTERM) or killed (SIGKILL) half-way and restarted on the same database
gives the same alarms, alarm-event lines and rows as a serve that ran uninterrupted."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
from scenario import by_time, links, ping_events, port_scan_events, snapshot
from servekit import publish


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_restart_half_way_changes_nothing(serve, nats_server, sig):
    # one set of events (and times) for both runs, recent enough that nothing expires
    base = int(time.time()) - 200
    events = by_time(ping_events(base), port_scan_events(base))
    half = len(events) // 2

    # run A: uninterrupted
    a = serve("uninterrupted").start()
    publish(nats_server.url, events)
    a.wait_for("SELECT count(*) FROM alarm_events", [(len(events),)])
    assert a.stop() == 0
    expected = snapshot(a)
    ids = [x["event_id"] for x in expected["link_lines"]]
    assert Counter(ids) == Counter(e["event_id"] for e in events)  # each event linked once
    assert {x["title"] for x in expected["alarm_lines"]} == {
        "Ping Flood from 10.0.0.1", "Port Scan from 203.0.113.50"}
    assert ("A2", "finished", "Port Scan from 203.0.113.50", 3, 4, "Medium",
            '["203.0.113.50"]', '["192.168.10.5"]') in expected["backlogs"]
    first_half = {e["event_id"] for e in events[:half]}
    first_links = sum(1 for i in ids if i in first_half)

    # run B: the first half, a stop by `sig`, a restart on the same database, the rest
    b = serve("restarted").start()
    publish(nats_server.url, events[:half])
    b.wait_for("SELECT count(*) FROM alarm_events", [(first_links,)])
    code = b.stop(sig)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    b = serve("restarted").start()
    assert "resumed 3 live backlogs" in b.log.read_text()
    publish(nats_server.url, events[half:])
    b.wait_for("SELECT count(*) FROM alarm_events", [(len(events),)])
    assert b.stop() == 0
    got = snapshot(b)

    for part in ("alarm_lines", "link_lines", "backlogs", "stage_events", "stages"):
        assert got[part] == expected[part], part
    assert links(b) == len(got["link_lines"])

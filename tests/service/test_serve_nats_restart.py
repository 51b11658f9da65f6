"""NATS going away and coming back, or starting after serve: serve waits, reconnects, and
loses none of the events published while it is subscribed."""

from __future__ import annotations

import time

from scenario import links, ping_events, resubscribed, wait_log
from servekit import http_status, publish


def ping_links(node) -> list[tuple[str, int, str]]:
    return node.query("SELECT b.title, e.stage, e.event_id FROM stage_events e "
                      "JOIN backlogs b ON b.id = e.backlog_id WHERE e.event_id LIKE 'ping-%' "
                      "ORDER BY e.id")


PING_LINKS = "SELECT count(*) FROM alarm_events WHERE event_id LIKE 'ping-%'"
EXPECTED = (
    [("Ping Flood from 10.0.0.1", 1, "ping-01"), ("Ping Flood from 10.0.0.1", 2, "ping-02"),
     ("Ping Flood from 10.0.0.2", 1, "ping-03")]
    + [("Ping Flood from 10.0.0.1", 2, f"ping-{n:02d}") for n in (4, 5, 6, 7)]
    + [("Ping Flood from 10.0.0.1", 3, f"ping-{n:02d}") for n in range(8, 18)]
)


def test_serve_rides_out_a_nats_restart(serve, nats_server):
    node = serve().start()
    base = int(time.time()) - 300
    events = ping_events(base)
    publish(nats_server.url, events[:8])
    node.wait_for("SELECT count(*) FROM alarm_events", [(8,)])

    nats_server.stop()
    wait_log(node, "disconnected from NATS")
    time.sleep(1)
    assert node.proc is not None and node.proc.poll() is None
    nats_server.start()
    resubscribed(node, nats_server.url, base)
    assert "reconnected to NATS" in node.log.read_text()

    publish(nats_server.url, events[8:])
    node.wait_for(PING_LINKS, [(17,)])
    assert ping_links(node) == EXPECTED
    assert node.stop() == 0


def test_serve_waits_for_nats_that_starts_late(serve, nats_server):
    nats_server.stop()
    node = serve().start(ready=False)
    wait_log(node, "cannot connect to")
    wait_log(node, "retrying in")
    assert node.proc is not None and node.proc.poll() is None
    assert http_status(node.url("/healthz")) == 503

    nats_server.start()
    node.wait_ready()
    assert "subscribed to dsiem_events" in node.log.read_text()
    publish(nats_server.url, ping_events(int(time.time()) - 300))
    node.wait_for(PING_LINKS, [(17,)])
    assert ping_links(node) == EXPECTED
    assert node.stop() == 0


def test_sigterm_stops_serve_waiting_for_nats(serve, nats_server):
    nats_server.stop()
    node = serve().start(ready=False)
    wait_log(node, "cannot connect to")
    assert node.stop(timeout=10) == 0  # the timeout is a hang guard, not a speed test
    assert links(node) == 0


def test_sigterm_stops_serve_while_nats_is_away(serve, nats_server):
    node = serve().start()
    publish(nats_server.url, ping_events(int(time.time()) - 300, range(1, 9)))
    node.wait_for("SELECT count(*) FROM alarm_events", [(8,)])
    nats_server.stop()
    wait_log(node, "disconnected from NATS")
    assert node.stop(timeout=10) == 0
    assert "stopped: 8 events processed" in node.log.read_text()
    assert len((node.logs / "siem_alarm_events.json").read_text().splitlines()) == 8

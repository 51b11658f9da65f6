"""`true` on dsiem_overload_signals when a backlog accepts an event older than --max_delay,
`false` --hold_duration seconds after the last such event; --max_delay 0 never
(docs/behaviour.md, "Overload signal")."""

from __future__ import annotations

import time

from kit import wait_until
from scenario import Subscriber, links, ping_events, with_args
from servekit import publish

SECOND = 1_000_000_000


def test_a_delayed_event_in_a_backlog_gives_true_then_false(serve, nats_server):
    node = with_args(serve(), "--max_delay", "1", "--hold_duration", "1").start()
    base = int(time.time()) - 300
    future = time.time_ns() + 3600 * SECOND
    unmatched = [  # as late as can be, but no directive wants them
        {**e, "event_id": f"other-{i}", "plugin_sid": 999, "rcvd_time": 0}
        for i, e in enumerate(ping_events(base, range(1, 6)))
    ]
    with Subscriber(nats_server.url) as overload:
        publish(nats_server.url, unmatched + ping_events(base, range(1, 8), rcvd_time=future))
        node.wait_for("SELECT count(*) FROM alarm_events", [(7,)])
        time.sleep(1.5)  # longer than the hold: a wrong `true` and its `false` would show
        assert overload.messages == []

        publish(nats_server.url, ping_events(base, range(8, 12), rcvd_time=0)
                + ping_events(base, range(12, 15), rcvd_time=time.time_ns() - 3600 * SECOND))
        assert overload.wait_for(2) == [b"true", b"false"]
        wait_until("14 event links", lambda: links(node) == 14)
        assert overload.messages == [b"true", b"false"]
    log = node.log.read_text()
    assert "overload = true signal sent to frontend" in log
    assert "overload = false signal sent to frontend" in log
    assert node.stop() == 0


def test_max_delay_0_sends_no_overload_signal(serve, nats_server):
    node = with_args(serve(), "--max_delay", "0", "--hold_duration", "1").start()
    with Subscriber(nats_server.url) as overload:
        publish(nats_server.url, ping_events(int(time.time()) - 300, rcvd_time=0))
        node.wait_for("SELECT count(*) FROM alarm_events", [(17,)])
        time.sleep(1.5)  # longer than the hold, as above
        assert overload.messages == []
    assert "overload" not in node.log.read_text()
    assert node.stop() == 0

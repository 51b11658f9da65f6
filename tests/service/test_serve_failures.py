"""serve never stalls silently: an undecodable event is skipped, a broken database stops the
service at once with an ERROR and a non-zero exit, /healthz tells whether it can make
progress now, and the time of the last commit is a metric."""

from __future__ import annotations

import sqlite3
import time

from scenario import http_status, links, ping_events, wait_log, wait_metric, wait_until
from servekit import publish

DEEP = b"[" * 2000 + b"null" + b"]" * 2000  # json.loads raises RecursionError on it


def test_an_event_that_breaks_the_decoder_is_skipped(serve, nats_server):
    node = serve().start()
    events = ping_events(int(time.time()) - 300)
    publish(nats_server.url, [DEEP, *events[:8], {"event_id": {"a": [None] * 3}}, *events[8:]])

    node.wait_for("SELECT count(*) FROM alarm_events", [(17,)])
    wait_metric(node, "dsiem_events_invalid_total", 2)
    assert http_status(node.url("/healthz")) == 200
    assert node.proc is not None and node.proc.poll() is None
    assert node.stop() == 0


def test_a_broken_database_stops_serve_at_once_with_an_error(serve, nats_server):
    node = serve().start()
    events = ping_events(int(time.time()) - 300)
    publish(nats_server.url, events[:4])
    node.wait_for("SELECT count(*) FROM alarm_events", [(4,)])
    con = sqlite3.connect(node.db, timeout=5)
    con.execute("DROP VIEW alarm_events")
    con.execute("DROP TABLE stage_events")
    con.close()

    publish(nats_server.url, events[4:])
    assert node.proc is not None
    code = node.proc.wait(10)
    node.proc = None
    assert code != 0
    errors = [line for line in node.log.read_text().splitlines() if " ERROR " in line]
    assert any("no such table: stage_events" in line for line in errors), errors


def test_healthz_follows_the_nats_connection(serve, nats_server):
    node = serve().start()
    assert http_status(node.url("/healthz")) == 200
    nats_server.stop()
    wait_log(node, "disconnected from NATS")
    wait_until("/healthz 503", lambda: http_status(node.url("/healthz")) == 503)
    nats_server.start()
    wait_until("/healthz 200", lambda: http_status(node.url("/healthz")) == 200)
    assert node.stop() == 0


def test_the_time_of_the_last_commit_is_a_metric(serve, nats_server):
    started = time.time()
    node = serve().start()
    publish(nats_server.url, ping_events(int(started) - 300, range(1, 4)))
    node.wait_for("SELECT count(*) FROM alarm_events", [(3,)])
    wait_until("a commit time", lambda: node.metric("dsiem_last_commit_timestamp_seconds")
               >= started)
    assert node.metric("dsiem_last_commit_timestamp_seconds") <= time.time()
    assert links(node) == 3
    assert node.stop() == 0

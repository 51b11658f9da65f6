"""serve never stalls silently: an undecodable event is skipped, a broken database stops the
service at once with an ERROR and a non-zero exit, /healthz tells whether it can make
progress now, and the time of the last commit is a metric."""

from __future__ import annotations

import sqlite3
import time

from kit import wait_until
from scenario import links, ping_events, probe_event, wait_log, wait_metric
from servekit import http_status, publish

from dsiem_sql.store.database import connect_read_only
from dsiem_sql.store.store import WAL_LIMIT as STORE_WAL_LIMIT

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
    assert node.exit_code() != 0
    errors = node.errors()
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


def test_the_wal_shrinks_once_a_long_reader_is_gone(serve, nats_server):
    node = serve().start()
    wal = node.db.with_name(node.db.name + "-wal")
    reader = connect_read_only(node.db)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM backlogs").fetchall()  # holds its snapshot
    base = int(time.time()) - 300
    sent = 0
    while wal.stat().st_size <= 3 * STORE_WAL_LIMIT:
        publish(nats_server.url, [probe_event(sent + n, base) | {"event_id": f"p{sent + n}"}
                                  for n in range(2000)])
        sent += 2000
        wait_metric(node, "dsiem_events_processed_total", sent)
        assert sent < 400_000, f"the WAL stays at {wal.stat().st_size} bytes"
    reader.rollback()
    reader.close()

    wait_until(lambda: f"a WAL under {STORE_WAL_LIMIT} bytes (now {wal.stat().st_size})",
               lambda: wal.stat().st_size <= STORE_WAL_LIMIT)
    wait_log(node, "the WAL, grown while a reader held it, is truncated")
    assert node.stop() == 0

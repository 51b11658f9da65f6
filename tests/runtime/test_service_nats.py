"""serve in-process over a real nats-server: the core subscription, the JetStream stream and
consumer (created, reused, deleted, limited), the overload signal on NATS, and a connection
that does not come back. The service runs in the test's process, so that what it does is
seen line by line; tests/service runs it as a process."""

from __future__ import annotations

import asyncio
import json
import time

import nats
import pytest
from kit import ping_events
from nats.js.api import StreamConfig
from natskit import NatsServer, free_port
from servicekit import InProcess, until

from dsiem_sql.adapters.nats.options import NatsConfigError, NatsOptions, StreamOptions
from dsiem_sql.runtime.service import ServiceFailed

pytestmark = pytest.mark.asyncio
STREAM = "DSIEM_EVENTS"


@pytest.fixture
def core_server():
    server = NatsServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def js_server(tmp_path):
    server = NatsServer(free_port(), "-js", "-sd", str(tmp_path / "js"))
    server.start()
    yield server
    server.stop()


def over_nats(tmp_path, url: str, intake: str = "core", window: float = 120,
              **options) -> InProcess:
    """A service with the intake and connection that `serve` builds from its options."""
    return InProcess(tmp_path, connect=True, intake=intake,
                     nats=NatsOptions(url=url, reconnect_window=window), **options)


async def publish(url: str, events: list[dict], subject: str = "dsiem_events") -> None:
    nc = await nats.connect(url)
    try:
        for e in events:
            await nc.publish(subject, json.dumps(e).encode())
        await nc.flush()
    finally:
        await nc.close()


async def consumer_info(url: str, name: str = "dsiem-sql-dsiem-backend-0"):
    nc = await nats.connect(url)
    try:
        return await nc.jetstream().consumer_info(STREAM, name)
    finally:
        await nc.close()


async def processed(serve: InProcess, n: int) -> None:
    await until(f"{n} events processed", lambda: serve.service.counters.processed >= n)
    await serve.settle()


async def test_core_intake_takes_the_subscription_and_sends_the_overload_signal(
        tmp_path, core_server):
    nc = await nats.connect(core_server.url)
    signals: list[bytes] = []

    async def on_signal(msg) -> None:
        signals.append(msg.data)

    await nc.subscribe("dsiem_overload_signals", cb=on_signal)
    try:
        serve = over_nats(tmp_path, core_server.url, max_delay=1, hold_duration=100)
        async with serve:
            assert serve.service.healthy()
            await publish(core_server.url, ping_events(int(time.time()) - 300, rcvd_time=0))
            await processed(serve, 17)
            assert serve.query("SELECT count(*) FROM alarm_events") == [(17,)]
            await until("overload = true on NATS", lambda: signals[:1] == [b"true"])
        assert serve.live()["received"] == 17
    finally:
        await nc.close()


async def test_jetstream_creates_the_stream_and_acknowledges_what_it_committed(
        tmp_path, js_server):
    async with over_nats(tmp_path, js_server.url, "jetstream") as serve:
        await publish(js_server.url, ping_events(int(time.time()) - 300))
        await processed(serve, 17)
        await serve.turn()
        await until("the acknowledgement", lambda: serve.intake.values()["stream_sequence"] == 17)
        assert serve.query("SELECT line FROM input_progress") == [(17,)]
    info = await consumer_info(js_server.url)
    assert info.ack_floor.stream_seq == 17 and info.num_pending == 0

    # a restart goes on after sequence 17: nothing is correlated twice
    async with over_nats(tmp_path, js_server.url, "jetstream") as again:
        await publish(js_server.url, ping_events(int(time.time()) - 300, range(18, 20)))
        await processed(again, 2)
        assert again.query("SELECT count(*) FROM alarm_events") == [(19,)]
        assert again.service.counters.processed == 2


async def test_jetstream_creates_a_deleted_consumer_anew(tmp_path, js_server):
    async with over_nats(tmp_path, js_server.url, "jetstream") as serve:
        await publish(js_server.url, ping_events(int(time.time()) - 300, range(1, 4)))
        await processed(serve, 3)
        nc = await nats.connect(js_server.url)
        try:
            await nc.jetstream().delete_consumer(STREAM, "dsiem-sql-dsiem-backend-0")
        finally:
            await nc.close()
        await publish(js_server.url, ping_events(int(time.time()) - 300, range(4, 8)))
        for _ in range(200):
            await serve.turn(1.0)
            if serve.service.counters.processed == 7:
                break
        await processed(serve, 7)
        assert serve.query("SELECT count(*) FROM alarm_events") == [(7,)]


async def test_jetstream_reports_what_the_stream_deleted_before_it_was_processed(
        tmp_path, js_server, caplog):
    nc = await nats.connect(js_server.url)
    try:
        await nc.jetstream().add_stream(StreamConfig(name=STREAM, subjects=["dsiem_events"],
                                                     max_msgs=5))
    finally:
        await nc.close()
    async with over_nats(tmp_path, js_server.url, "jetstream") as serve:
        await publish(js_server.url, ping_events(int(time.time()) - 300, range(1, 3)))
        await processed(serve, 2)
    # while serve is down, 10 more arrive; the stream keeps the last 5 (8..12)
    await publish(js_server.url, ping_events(int(time.time()) - 300, range(3, 13)))
    async with over_nats(tmp_path, js_server.url, "jetstream") as again:
        await processed(again, 5)
        assert again.live()["stream_lost"] == 5
    assert "5 events lost: stream DSIEM_EVENTS deleted sequences 3..7" in caplog.text


async def test_jetstream_refuses_a_stream_that_does_not_capture_the_events(
        tmp_path, js_server):
    nc = await nats.connect(js_server.url)
    try:
        await nc.jetstream().add_stream(StreamConfig(name=STREAM, subjects=["other"]))
    finally:
        await nc.close()
    with pytest.raises(NatsConfigError, match="does not capture dsiem_events"):
        await over_nats(tmp_path, js_server.url, "jetstream").start()


async def test_jetstream_needs_a_server_with_jetstream(tmp_path, core_server):
    with pytest.raises(NatsConfigError, match="does not have JetStream enabled"):
        await over_nats(tmp_path, core_server.url, "jetstream").start()


async def test_a_connection_that_does_not_come_back_stops_the_service(tmp_path, caplog):
    server = NatsServer(free_port())
    server.start()
    serve = await over_nats(tmp_path, server.url, window=1).start()
    server.stop()
    assert serve.task is not None
    with pytest.raises(ServiceFailed, match="not reachable again within 1 s"):
        await asyncio.wait_for(serve.task, 20)
    assert "--nats-reconnect-window" in caplog.text


async def test_stream_options_name_the_stream_created(tmp_path, js_server):
    options = StreamOptions(stream="EVENTS_2", max_age=3600, max_bytes=2**20)
    async with over_nats(tmp_path, js_server.url, "jetstream", jetstream=options):
        pass
    nc = await nats.connect(js_server.url)
    try:
        info = await nc.jetstream().stream_info("EVENTS_2")
    finally:
        await nc.close()
    assert (info.config.max_age, info.config.max_bytes) == (3600, 2**20)

"""serve in-process with the JetStream intake on a fake consumer: ordering, de-duplication,
gaps, lost messages, acknowledgement after the commit, and the stream-time clock, each
asserted on what the worker committed and what was acknowledged, in milliseconds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque

import pytest
from kit import directive, event, rule
from servicekit import InProcess, until
from test_service_core import write_configs

from dsiem_sql.adapters.nats.jetstream import JetStreamIntake
from dsiem_sql.adapters.nats.options import NatsOptions, StreamOptions
from dsiem_sql.internals import Delivery

pytestmark = pytest.mark.asyncio
NS = 1_000_000_000
STREAM = "DSIEM_EVENTS"


class FakeNats:
    """What the intake uses of the NATS client: publish (acknowledgements) and flush."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.has_jetstream = True

    async def publish(self, subject: str, payload: bytes = b"", reply: str = "") -> None:
        self.published.append((subject, payload))

    async def flush(self, timeout: float = 2) -> None:
        pass

    def server(self) -> str:
        return "nats://fake:4222"

    @property
    def acks(self) -> list[str]:
        return [subject for subject, payload in self.published if payload == b"+ACK"]


class FakeConnection:
    def __init__(self) -> None:
        self.nats = FakeNats()
        self.options = NatsOptions()


class FakeConsumer:
    """The node's consumer as the intake sees it; the test delivers messages by hand and
    reads what the intake asked of it."""

    def __init__(self, client, options: StreamOptions, node: str, undelivered: int = 0) -> None:
        self.name = f"dsiem-sql-{node}"
        self.buffer: deque[Delivery] = deque()
        self.received = 0
        self.credit = 0
        self.next_cseq = 1
        self.undelivered = undelivered  # in the stream, not delivered yet
        self.gone = False
        self.silent = False
        self.closed = False
        self.starts: list[int | None] = []  # what `open` was asked for
        self.resets: list[tuple[int, str]] = []
        self.deleted_before = 0  # what `lost_before` answers
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self.buffer)

    @property
    def pending(self) -> int:
        return len(self.buffer) + self.undelivered

    async def open(self, start: int | None) -> tuple[int, int]:
        self.starts.append(start)
        return (1 if start is None else start), 0

    def deliver(self, seq: int, payload: dict, *, cseq: int | None = None,
                stamp: float | None = None, pending: int = 0) -> None:
        cseq = self.received + 1 if cseq is None else cseq
        stamp_ns = int((time.time() if stamp is None else stamp) * NS)
        reply = f"$JS.ACK.{STREAM}.{self.name}.1.{seq}.{cseq}.{stamp_ns}.{pending}"
        self.buffer.append(Delivery(json.dumps(payload).encode(), reply))
        self.received += 1
        self._ready.set()

    async def request(self) -> None:
        pass

    async def wait(self, timeout: float) -> None:
        if self.buffer or self.closed:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    def wake(self) -> None:
        self._ready.set()

    def take(self, limit: int) -> list[Delivery]:
        n = min(limit, len(self.buffer))
        taken = [self.buffer.popleft() for _ in range(n)]
        if not self.buffer:
            self._ready.clear()
        return taken

    async def reset(self, start: int, why: str) -> None:
        self.resets.append((start, why))
        self.buffer.clear()
        self.next_cseq = 1
        self.gone = False

    async def lost_before(self, seq: int, expected: int) -> int:
        return self.deleted_before

    async def exists(self) -> bool | None:
        return not self.gone

    async def close(self) -> None:
        self.closed = True
        self._ready.set()


class JetStream(InProcess):
    def __init__(self, tmp_path, undelivered: int = 0, **options) -> None:
        """`undelivered`: messages in the stream when serve starts."""
        self.connection = FakeConnection()

        def consumer(client, stream_options: StreamOptions, node: str) -> FakeConsumer:
            return FakeConsumer(client, stream_options, node, undelivered)

        intake = JetStreamIntake(self.connection, StreamOptions(), "node",  # type: ignore[arg-type]
                                 make_consumer=consumer)
        super().__init__(tmp_path, intake, **options)

    @property
    def consumer(self) -> FakeConsumer:
        assert isinstance(self.intake, JetStreamIntake)
        return self.intake.consumer  # type: ignore[return-value]

    def position(self) -> list[tuple]:
        return self.query("SELECT line FROM input_progress WHERE source = ?",
                          f"jetstream:{STREAM}")


def ack_seq(subject: str) -> int:
    return int(subject.split(".")[5])


def pings(n: int, base: float) -> list[dict]:
    return [event(f"e{i}", base + i, "10.0.0.1") for i in range(1, n + 1)]


@pytest.fixture
def configs(tmp_path):
    return write_configs(tmp_path / "configs", directive(1, [
        rule(1), rule(2, occurrence=3, timeout=60, **{"from": ":1"})]))


async def test_messages_are_acknowledged_once_their_commit_is_written(tmp_path, configs):
    async with JetStream(tmp_path, configs=configs) as serve:
        base = time.time() - 10
        for seq, e in enumerate(pings(3, base), start=1):
            serve.consumer.deliver(seq, e)
        await serve.turn(0.0)
        await until("three events taken", lambda: serve.service.counters.processed == 3)
        assert serve.connection.nats.acks == []  # taken, not committed yet
        assert serve.position() == []
        await serve.settle()
        assert serve.position() == [(3,)]
        await serve.turn()
        acks = serve.connection.nats.acks
        assert [ack_seq(a) for a in acks] == [3]  # one ack (policy "all") for the commit
        assert serve.live()["stream_sequence"] == 3
        assert serve.query("SELECT count(*) FROM stage_events") == [(3,)]


async def test_a_message_delivered_again_is_skipped(tmp_path, configs):
    async with JetStream(tmp_path, configs=configs) as serve:
        base = time.time() - 10
        first, second, third = pings(3, base)
        serve.consumer.deliver(1, first)
        serve.consumer.deliver(2, second)
        serve.consumer.deliver(2, second)  # the same stream sequence, delivered again
        serve.consumer.deliver(3, third)
        await serve.settle()
        assert serve.service.counters.processed == 3
        assert serve.live()["stream_redelivered"] == 1
        assert serve.query("SELECT count(*) FROM stage_events") == [(3,)]
        assert serve.position() == [(3,)]


async def test_a_delivery_that_did_not_arrive_recreates_the_consumer_after_the_last_taken(
        tmp_path, configs):
    async with JetStream(tmp_path, configs=configs) as serve:
        base = time.time() - 10
        e1, e2, e3, e4 = pings(4, base)
        serve.consumer.deliver(1, e1, cseq=1)
        serve.consumer.deliver(2, e2, cseq=2)
        serve.consumer.deliver(4, e4, cseq=4)  # delivery 3 (sequence 3) never came
        await serve.settle()
        assert serve.consumer.resets == [(3, "delivery 3 did not arrive (got 4)")]
        assert serve.service.counters.processed == 2
        serve.consumer.deliver(3, e3, cseq=1)  # the new consumer, from sequence 3 on
        serve.consumer.deliver(4, e4, cseq=2)
        await serve.settle()
        assert serve.service.counters.processed == 4
        assert serve.position() == [(4,)]


async def test_messages_the_stream_deleted_are_reported_lost(tmp_path, configs, caplog):
    async with JetStream(tmp_path, configs=configs) as serve:
        base = time.time() - 10
        e1, e5 = pings(2, base)
        serve.consumer.deliver(1, e1)
        serve.consumer.deliver(5, e5)  # 2..4 are gone: the stream's limits deleted them
        serve.consumer.deleted_before = 3
        await serve.settle()
        assert serve.live()["stream_lost"] == 3
        assert serve.service.counters.processed == 2
        assert serve.position() == [(5,)]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"3 events lost: stream {STREAM} deleted sequences 2..4 (its limits: "
                      f"--js-max-age, --js-max-bytes) before they were processed"]


async def test_the_engine_clock_is_the_time_nats_stored_each_message(tmp_path, configs):
    async with JetStream(tmp_path, undelivered=2, configs=configs) as serve:
        stored = time.time() - 3600  # an hour ago: caught up after an outage
        first, second = event("e1", stored, "10.0.0.1"), event("e2", stored + 100, "10.0.0.1")
        serve.consumer.deliver(1, first, stamp=stored, pending=1)
        await serve.settle()
        assert serve.service.engine is not None
        assert serve.service.engine.clock() == int(stored)
        # stored past stage 2's deadline (60 s after the first event's time): the backlog
        # expires before it is correlated, and the event opens a new backlog
        serve.consumer.deliver(2, second, stamp=stored + 100, pending=1)
        await serve.settle()
        assert serve.query("SELECT state FROM backlogs ORDER BY created_time") == [
            ("expired",), ("live",)]


async def test_with_nothing_pending_the_clock_follows_the_wall_clock(tmp_path, configs):
    async with JetStream(tmp_path, undelivered=1, configs=configs, expiry_interval=10) as serve:
        stored = time.time() - 3600
        serve.consumer.deliver(1, pings(1, stored)[0], stamp=stored)
        await serve.settle()
        assert serve.query("SELECT state FROM backlogs") == [("live",)]
        serve.consumer.undelivered = 1  # more in the stream: the stream time holds
        await serve.turn(10.0)
        await serve.settle()
        assert serve.query("SELECT state FROM backlogs") == [("live",)]
        serve.consumer.undelivered = 0
        await serve.turn(10.0)
        await serve.settle()
        assert serve.query("SELECT state FROM backlogs") == [("expired",)]
        assert serve.service.engine is not None
        assert serve.service.engine.clock() >= int(time.time()) - 1


async def test_a_restart_resumes_after_the_last_committed_sequence(tmp_path, configs):
    async with JetStream(tmp_path, configs=configs) as serve:
        for seq, e in enumerate(pings(3, time.time() - 10), start=1):
            serve.consumer.deliver(seq, e)
        await serve.settle()
    assert [ack_seq(a) for a in serve.connection.nats.acks] == [3]
    async with JetStream(tmp_path, configs=configs) as again:
        assert again.consumer.starts == [4]
        assert again.query("SELECT state FROM backlogs") == [("live",)]
        again.consumer.deliver(4, event("e4", time.time(), "10.0.0.1"), cseq=1)
        await again.settle()
        assert again.query("SELECT state FROM backlogs") == [("finished",)]


async def test_a_deleted_consumer_is_created_anew_after_the_last_taken(tmp_path, configs):
    async with JetStream(tmp_path, configs=configs) as serve:
        serve.consumer.deliver(1, pings(1, time.time())[0])
        await serve.settle()
        serve.consumer.gone = True
        await serve.turn()
        assert serve.consumer.resets == [(2, "it was deleted")]


async def test_stopping_acknowledges_the_last_commit(tmp_path, configs):
    serve = await JetStream(tmp_path, configs=configs).start()
    for seq, e in enumerate(pings(2, time.time() - 10), start=1):
        serve.consumer.deliver(seq, e)
    await serve.finish()
    assert serve.service.counters.processed == 2
    assert [ack_seq(a) for a in serve.connection.nats.acks] == [2]
    assert serve.position() == [(2,)]

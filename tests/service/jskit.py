"""Helpers for the JetStream intake tests: nats-server with JetStream (alone or as a
three-server cluster), a steady publisher, the stream read back in order, and comparisons
with one `replay` of the same events."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import nats
from integration.dbcompare import database_dump, normalised_outputs
from kit import ok, replay
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from servekit import NatsServer, free_port

STREAM = "DSIEM_EVENTS"
JETSTREAM = ("--intake", "jetstream")
# set by the engine clock (the stream time or wall time serve handled an event), not by the
# events: they differ between serve and replay, which runs on event time
CLOCK_KEYS = ("created_time", "update_time")
CLOCK_COLUMNS = ("created_time", "update_time", "ended_time")


def jetstream_server(store: Path) -> NatsServer:
    return NatsServer(free_port(), "-js", "-sd", str(store))


class Cluster:
    """Three nats-servers with JetStream, routed to each other on loopback ports."""

    def __init__(self, root: Path):
        self.names = ["n1", "n2", "n3"]
        routes = {name: free_port() for name in self.names}
        route_urls = ",".join(f"nats://127.0.0.1:{p}" for p in routes.values())
        self.servers = {
            name: NatsServer(
                free_port(), "-js", "-sd", str(root / name), "-n", name,
                "--cluster_name", "dsiem", "--cluster", f"nats://127.0.0.1:{routes[name]}",
                "--routes", route_urls,
            )
            for name in self.names
        }

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers.values()]

    def start(self) -> None:
        for server in self.servers.values():
            server.start()

    def kill(self, name: str) -> None:
        server = self.servers[name]
        assert server.proc is not None
        server.proc.kill()
        server.proc.wait(10)
        server.proc = None

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def run(coro):
    return asyncio.run(coro)


async def _stream_leader(urls: Sequence[str]) -> str:
    nc = await nats.connect(servers=list(urls))
    try:
        info = await nc.jetstream().stream_info(STREAM)
        assert info.cluster is not None and info.cluster.leader
        return info.cluster.leader
    finally:
        await nc.close()


def stream_leader(urls: Sequence[str]) -> str:
    return run(_stream_leader(urls))


async def _stream_messages(urls: Sequence[str]) -> list[tuple[int, bytes]]:
    """(sequence, payload) of every message of the stream, in order."""
    nc = await nats.connect(servers=list(urls))
    try:
        js = nc.jetstream()
        last = (await js.stream_info(STREAM)).state.last_seq
        sub = await js.pull_subscribe(
            "dsiem_events", stream=STREAM,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
                                  inactive_threshold=60))
        got: list[tuple[int, bytes]] = []
        while not got or got[-1][0] < last:
            for msg in await sub.fetch(1000, timeout=5):
                got.append((msg.metadata.sequence.stream, msg.data))
        await sub.unsubscribe()
        return got
    finally:
        await nc.close()


def stream_messages(urls: Sequence[str]) -> list[tuple[int, bytes]]:
    return run(_stream_messages(urls))


class Publisher(threading.Thread):
    """Publishes `lines` on dsiem_events at `rate` a second, from a thread of the test.

    `durable`: with JetStream publish, each event again until the stream has stored it (its
    event id as the message id, so that a retry is not stored twice), as a publisher that
    must ride out a NATS restart or failover does. Otherwise plain core-NATS publish, as the
    Dsiem frontend does."""

    def __init__(self, urls: Sequence[str], lines: list[str], rate: float,
                 durable: bool = False, offsets: list[float] | None = None):
        """`offsets`: the second after the start when each line is sent, instead of
        `rate`."""
        super().__init__(daemon=True)
        self.urls, self.lines, self.durable = list(urls), lines, durable
        self.offsets = offsets or [i / rate for i in range(len(lines))]
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._publish())
        except BaseException as exc:  # reported by finish()
            self.error = exc

    async def _publish(self) -> None:
        nc = await nats.connect(servers=self.urls, max_reconnect_attempts=-1,
                                reconnect_time_wait=0.2)
        js = nc.jetstream(timeout=2)
        started = time.monotonic()
        for i, line in enumerate(self.lines):
            ahead = started + self.offsets[i] - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            data = line.encode()
            if self.durable:
                msg_id = json.loads(line)["event_id"]
                while True:
                    try:
                        await js.publish("dsiem_events", data, headers={"Nats-Msg-Id": msg_id})
                        break
                    except (nats.errors.Error, TimeoutError):
                        await asyncio.sleep(0.2)
            else:
                await nc.publish("dsiem_events", data)
            self.sent = i + 1
        await nc.flush()
        await nc.close()

    def finish(self, timeout: float = 300) -> None:
        self.join(timeout)
        assert not self.is_alive(), "the publisher did not finish"
        if self.error is not None:
            raise self.error


def replay_stream(tmp: Path, configs: Path, urls: Sequence[str]) -> tuple[Path, Path, int]:
    """One uninterrupted `replay --db` of the stream's events in stream order: (database,
    output directory, number of events)."""
    messages = stream_messages(urls)
    assert [seq for seq, _ in messages] == list(range(1, len(messages) + 1))
    events = tmp / "stream.jsonl"
    events.write_bytes(b"".join(data + b"\n" for _, data in messages))
    db, out = tmp / "whole.db", tmp / "whole"
    ok(replay(configs, out, events, "--db", db, timeout=300))
    return db, out, len(messages)


def without_clock(outputs: tuple[list[dict], list[dict], dict[str, str]]
                  ) -> tuple[list[dict], list[dict], dict[str, str]]:
    alarms, links, ids = outputs
    return [{k: v for k, v in a.items() if k not in CLOCK_KEYS} for a in alarms], links, ids


def compare_with_replay(out: Path, db: Path, whole_out: Path, whole_db: Path) -> int:
    """Assert that serve's output files and database equal those of the replay, but for the
    clock stamps; returns the number of alarm-event lines."""
    whole_alarms, whole_links, whole_ids = without_clock(normalised_outputs(whole_out))
    alarms, links, ids = without_clock(normalised_outputs(out))
    assert len(links) == len(whole_links)  # none lost, none twice
    assert links == whole_links
    assert alarms == whole_alarms
    assert database_dump(db, ids, drop=CLOCK_COLUMNS) == database_dump(
        whole_db, whole_ids, drop=CLOCK_COLUMNS)
    return len(links)

"""`serve --intake jetstream` against a real nats-server with JetStream (issue 13): nothing
lost and nothing twice across SIGKILLs, a long outage, a NATS restart and a cluster failover;
a deleted consumer, messages dropped by the stream's limits, a stream that does not capture
the events."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time

import nats
import pytest
from integration.dbcompare import integrity
from integration.workload import events, write_configs
from jskit import (
    JETSTREAM,
    STREAM,
    Cluster,
    Publisher,
    compare_with_replay,
    jetstream_server,
    replay_stream,
    run,
    stream_leader,
)
from kit import cli, directive, event, rule, wait_until
from scenario import wait_metric
from servekit import Serve, publish
from test_serve_reload import DIRECTIVES as RELOAD_DIRECTIVES
from test_serve_reload import directives_file, flood, group, stage2_counts
from test_serve_reload import write_configs as reload_configs


def committed_sequence(node: Serve) -> int:
    try:
        found = node.query("SELECT line FROM input_progress WHERE source = 'jetstream:"
                           f"{STREAM}'")
    except sqlite3.Error:  # not created yet
        return 0
    return found[0][0] if found else 0


def wait_committed(node: Serve, sequence: int, timeout: float = 120) -> None:
    wait_until(lambda: f"sequence {sequence} committed (at {committed_sequence(node)}):\n"
                       f"{node.log.read_text()[-3000:]}",
               lambda: committed_sequence(node) >= sequence, timeout)


@pytest.fixture
def js_nats(tmp_path):
    server = jetstream_server(tmp_path / "jetstream")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def node_on(tmp_path):
    started: list[Serve] = []

    def make(url: str, *extra: str, configs=None, name: str = "node") -> Serve:
        node = Serve(tmp_path / name, url, configs or write_configs(tmp_path / "configs"),
                     "dsiem-backend-0", *JETSTREAM, *extra)
        started.append(node)
        return node

    yield make
    for node in started:
        if node.proc is not None:
            node.proc.kill()
            node.proc.wait()


@pytest.mark.parametrize(("n_events", "kills", "rate"), [
    pytest.param(6_000, 2, 1_500, id="2-kills"),
    pytest.param(50_000, 5, 2_000, id="5-kills", marks=pytest.mark.slow),
])
def test_sigkills_equal_one_uninterrupted_replay(tmp_path, js_nats, node_on, n_events, kills,
                                                 rate):
    node = node_on(js_nats.url).start()
    lines = events(n_events, t0=int(time.time()), per_second=rate)
    publisher = Publisher([js_nats.url], lines, rate)
    publisher.start()
    rnd = random.Random(os.environ.get("CRASH_SEED", "1"))
    seconds = n_events / rate
    moments = sorted(rnd.uniform(0.1, 0.9) * seconds for _ in range(kills))
    started = time.monotonic()
    for moment in moments:
        time.sleep(max(0.0, started + moment - time.monotonic()))
        node.stop(signal.SIGKILL)
        node.start()
    publisher.finish()
    wait_committed(node, n_events)
    assert node.stop() == 0
    assert node.errors() == []
    assert node.log.read_text().count("resuming JetStream stream") == kills

    whole_db, whole_out, count = replay_stream(tmp_path, node.workdir.parent / "configs",
                                               [js_nats.url])
    assert count == n_events  # the stream has every event once
    links = compare_with_replay(node.logs, node.db, whole_out, whole_db)
    assert links > n_events // 10  # the workload does correlate
    assert integrity(node.db) == "ok"


def chain_configs(root, stages: int, timeout: int):
    """Directive 1: `stages` stages of one event each from the same source, each stage
    timing out `timeout` s after it started."""
    configs = root / "configs"
    configs.mkdir()
    (configs / "assets_t.json").write_text(json.dumps(
        {"assets": [{"name": "home", "cidr": "10.0.0.0/8", "value": 5}]}))
    rules = [rule(1, **{"to": "HOME_NET"})] + [
        rule(n, timeout=timeout, **{"from": ":1", "to": ":1"}) for n in range(2, stages + 1)]
    (configs / "directives_dsiem-backend-0_t.json").write_text(json.dumps(
        {"directives": [directive(1, rules, name="chain from SRC_IP")]}))
    return configs


@pytest.mark.parametrize("outage", [
    # in the default run: the in-process tests of the stream clock and of lost messages
    # (tests/runtime/test_service_jetstream.py)
    pytest.param(12, id="12s", marks=pytest.mark.slow),
    pytest.param(30, id="30s", marks=pytest.mark.slow),
])
def test_outage_loses_nothing_and_expires_by_stream_time(tmp_path, js_nats, node_on, outage):
    """Source A sends an event every 2 s, each moving its backlog to a stage that times out
    6 s later, through the outage; source B sends two events before it. After the restart
    every event is processed, A's backlog never timed out (its events reached NATS in time),
    and B's expired at the stream time of the first event after its deadline, not at the
    restart."""
    period, timeout = 2, 6
    n = 2 + (outage + 10) // period
    node = node_on(js_nats.url, configs=chain_configs(tmp_path, n + 5, timeout)).start()
    start = int(time.time()) + 1
    a = [(k * period, event(f"a{k}", start + k * period, "192.0.2.1", "10.0.0.1"))
         for k in range(n)]
    b = [(k * period, event(f"b{k}", start + k * period, "192.0.2.2", "10.0.0.2"))
         for k in range(2)]
    sent = sorted(a + b, key=lambda x: x[0])
    time.sleep(max(0.0, start - time.time()))
    publisher = Publisher([js_nats.url], [json.dumps(e) for _, e in sent], 1,
                          offsets=[float(at) for at, _ in sent])
    publisher.start()
    wait_committed(node, 4, timeout=30)  # a0 b0 a1 b1
    assert node.stop() == 0
    stopped = time.time()
    time.sleep(outage)
    restarted = time.time()
    node.start()
    publisher.finish()
    wait_committed(node, len(sent))
    assert node.stop() == 0

    found = {title: (state, stage, ended) for title, state, stage, ended in node.query(
        "SELECT title, state, current_stage, ended_time FROM backlogs")}
    assert node.query("SELECT count(*) FROM stage_events") == [(len(sent),)]
    assert found["chain from 192.0.2.1"][:2] == ("live", n + 1)  # no stage timed out
    state, stage, ended = found["chain from 192.0.2.2"]
    assert (state, stage) == ("expired", 3)
    assert stopped <= ended < restarted  # by the stored events' time, not at the restart
    assert node.errors() == []


@pytest.mark.slow  # in the default run: a restart resuming in-process (tests/runtime)
def test_nats_restart_with_the_file_store_kept(tmp_path, js_nats, node_on):
    n = 3_000
    node = node_on(js_nats.url).start()
    lines = events(n, t0=int(time.time()), per_second=500)
    publisher = Publisher([js_nats.url], lines, 500, durable=True)
    publisher.start()
    wait_committed(node, n // 3)
    js_nats.stop()
    time.sleep(1)
    js_nats.start()
    publisher.finish()
    wait_committed(node, n)
    assert node.stop() == 0
    whole_db, whole_out, count = replay_stream(tmp_path, node.workdir.parent / "configs",
                                               [js_nats.url])
    assert count == n
    compare_with_replay(node.logs, node.db, whole_out, whole_db)
    assert node.errors() == []


@pytest.mark.slow  # a three-server cluster: 15 s
def test_failover_to_another_server_of_the_cluster(tmp_path, node_on):
    cluster = Cluster(tmp_path / "cluster")
    cluster.start()
    try:
        n = 3_000
        node = node_on(cluster.urls[0], "--js-replicas", "3").start(ready=False)
        node.wait_ready(60)  # the cluster elects its meta leader first
        lines = events(n, t0=int(time.time()), per_second=300)
        publisher = Publisher(cluster.urls, lines, 300, durable=True)
        publisher.start()
        wait_committed(node, n // 3)
        leader = stream_leader(cluster.urls)
        cluster.kill(leader)
        publisher.finish()
        alive = [s.url for name, s in cluster.servers.items() if name != leader]
        wait_committed(node, n, timeout=120)
        assert node.stop() == 0
        whole_db, whole_out, count = replay_stream(tmp_path, node.workdir.parent / "configs",
                                                   alive)
        assert count == n
        compare_with_replay(node.logs, node.db, whole_out, whole_db)
        assert stream_leader(alive) != leader
    finally:
        cluster.stop()


def probes(first: int, count: int, base: int) -> list[str]:
    return [json.dumps(event(f"p{n}", base + n, "192.0.2.1", "10.0.0.1"))
            for n in range(first, first + count)]


def one_stage_configs(root):
    configs = root / "configs"
    configs.mkdir()
    (configs / "assets_t.json").write_text(json.dumps(
        {"assets": [{"name": "home", "cidr": "10.0.0.0/8", "value": 5}]}))
    rules = [rule(1, **{"to": "HOME_NET"}), rule(2, occurrence=10_000, timeout=3600,
                                                 **{"from": ":1", "to": ":1"})]
    (configs / "directives_dsiem-backend-0_t.json").write_text(json.dumps(
        {"directives": [directive(1, rules, name="probes")]}))
    return configs


def publish_now(url: str, lines: list[str]) -> None:
    publisher = Publisher([url], lines, 10_000)
    publisher.start()
    publisher.finish()


def test_a_deleted_consumer_is_created_anew(tmp_path, js_nats, node_on):
    node = node_on(js_nats.url, configs=one_stage_configs(tmp_path)).start()
    base = int(time.time())
    publish_now(js_nats.url, probes(0, 50, base))
    wait_committed(node, 50)

    async def delete() -> None:
        nc = await nats.connect(js_nats.url)
        await nc.jetstream().delete_consumer(STREAM, "dsiem-sql-dsiem-backend-0")
        await nc.close()

    run(delete())
    wait_until("the consumer created anew", lambda: "was deleted; creating it anew at "
               "sequence 51" in node.log.read_text())
    publish_now(js_nats.url, probes(50, 50, base))
    wait_committed(node, 100)
    assert node.query("SELECT count(*), count(DISTINCT event_id) FROM stage_events") == [
        (100, 100)]
    assert node.metric("dsiem_stream_lost_total") == 0
    assert node.stop() == 0
    assert len(node.logs.joinpath("siem_alarm_events.json").read_text().splitlines()) == 100


def test_messages_dropped_by_the_stream_limits_are_counted(tmp_path, js_nats, node_on):
    """The stream keeps 20 messages. serve stops after 10; 30 more come, so 10 are dropped
    before it is back, and one more is deleted in the middle: 11 lost, the rest processed."""

    async def create_stream() -> None:
        nc = await nats.connect(js_nats.url)
        await nc.jetstream().add_stream(name=STREAM, subjects=["dsiem_events"], max_msgs=20)
        await nc.close()

    run(create_stream())
    node = node_on(js_nats.url, configs=one_stage_configs(tmp_path)).start()
    base = int(time.time())
    publish_now(js_nats.url, probes(0, 10, base))
    wait_committed(node, 10)
    assert node.stop() == 0
    publish_now(js_nats.url, probes(10, 30, base))

    async def delete_one() -> None:
        nc = await nats.connect(js_nats.url)
        await nc.jetstream().delete_msg(STREAM, 30)
        await nc.close()

    run(delete_one())
    node.start()
    wait_committed(node, 40)
    assert node.metric("dsiem_stream_lost_total") == 11
    errors = node.errors()
    assert len(errors) == 2
    assert "10 events lost: stream DSIEM_EVENTS deleted sequences 11..20" in errors[0]
    assert "1 events lost: stream DSIEM_EVENTS deleted sequences 30..30" in errors[1]
    linked = {e for (e,) in node.query("SELECT event_id FROM stage_events")}
    assert linked == {f"p{n}" for n in range(40)} - {f"p{n}" for n in range(10, 20)} - {"p29"}
    assert node.stop() == 0


@pytest.mark.slow  # in the default run: in-process (tests/runtime/test_service_nats.py)
def test_a_stream_that_does_not_capture_the_events_is_an_error(tmp_path, js_nats):
    async def create_stream() -> None:
        nc = await nats.connect(js_nats.url)
        await nc.jetstream().add_stream(name="OTHER", subjects=["other.>"])
        await nc.close()

    run(create_stream())
    proc = cli("serve", "--node", "n", "--configs", write_configs(tmp_path / "configs"),
               "--db", tmp_path / "db", "--logs", tmp_path / "logs", "--msq", js_nats.url,
               "--intake", "jetstream", "--js-stream", "OTHER", timeout=60)
    assert proc.returncode == 1
    assert ("error: JetStream stream OTHER (subjects: other.>) does not capture dsiem_events"
            in proc.stderr)


@pytest.mark.slow  # in the default run: in-process (tests/runtime/test_service_nats.py)
def test_a_server_without_jetstream_is_an_error(tmp_path, nats_server):
    proc = cli("serve", "--node", "n", "--configs", write_configs(tmp_path / "configs"),
               "--db", tmp_path / "db", "--logs", tmp_path / "logs", "--msq", nats_server.url,
               "--intake", "jetstream", timeout=60)
    assert proc.returncode == 1
    assert "does not have JetStream enabled" in proc.stderr


def test_sighup_reloads_the_config_with_the_jetstream_intake(tmp_path, js_nats, node_on):
    """The JetStream worker takes a reload between two messages, as the core one does."""
    configs = reload_configs(tmp_path / "reload-configs", flood(3))
    node = node_on(js_nats.url, configs=configs).start()
    publish(js_nats.url, group(1)[:2])
    node.wait_for("SELECT count(*) FROM stage_events", [(2,)])
    (configs / RELOAD_DIRECTIVES).write_bytes(directives_file(flood(5)))

    assert node.proc is not None
    node.proc.send_signal(signal.SIGHUP)
    wait_metric(node, 'dsiem_config_reloads_total{result="success"}', 1)
    publish(js_nats.url, group(2)[:1] + group(1)[2:] + group(2)[1:])
    node.wait_for("SELECT count(*) FROM backlogs WHERE state = 'finished'", [(2,)])
    assert stage2_counts(node) == [("finished", 3, 3), ("finished", 5, 5)]
    assert node.stop() == 0
    assert node.errors() == []

"""Issue 14: serve reloads its config live, on SIGHUP, `POST /-/reload` or `dsiem-sql reload
--db PATH`, without a restart and without losing a backlog or an event."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from itertools import pairwise
from pathlib import Path

import kit
import nats
import pytest
from kit import cli, rule
from scenario import Frontend, read_jsonl, wait_log, wait_metric, with_args
from servekit import Serve, http_status, publish

from dsiem_sql.store.database import WriterLock

NODE = "dsiem-backend-0"
DIRECTIVES = f"directives_{NODE}_reload.json"
HOME = "10.0.0.0/8"
SUCCESS = 'dsiem_config_reloads_total{result="success"}'
FAILURE = 'dsiem_config_reloads_total{result="failure"}'


@pytest.fixture(autouse=True)
def lifecycle(monkeypatch):
    """The serves of these tests accept POST /-/reload (off by default)."""
    monkeypatch.setenv("DSIEM_ENABLE_LIFECYCLE", "1")


def flood(occurrence: int, id: int = 1) -> dict:
    """Stage 1: one event 1337/1; stage 2: `occurrence` events 1337/2 from the same source.
    Risk 3 from stage 1 on (priority 3, reliability 5, asset value 5): every backlog alarms."""
    return kit.directive(id, [
        rule(1, reliability=5),
        rule(2, plugin_sid=[2], occurrence=occurrence, reliability=5, timeout=3600,
             **{"from": ":1"}),
    ])


def assets_file(value: int = 5) -> bytes:
    return json.dumps({"assets": [{"name": "home", "cidr": HOME, "value": value}]}).encode()


def directives_file(*directives: dict) -> bytes:
    return json.dumps({"directives": list(directives)}).encode()


def write_configs(configs: Path, *directives: dict, value: int = 5) -> Path:
    configs.mkdir(parents=True, exist_ok=True)
    (configs / "assets_reload.json").write_bytes(assets_file(value))
    (configs / DIRECTIVES).write_bytes(directives_file(*directives))
    return configs


def group(n: int, stage2: int = 5, ts: float | None = None) -> list[dict]:
    """One source's events: 1337/1 (opens a backlog) then `stage2` events 1337/2."""
    ts = time.time() if ts is None else ts
    src = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    return [kit.event(f"g{n}-0", ts, src, "10.255.0.1")] + [
        kit.event(f"g{n}-{k}", ts, src, "10.255.0.1", plugin_sid=2)
        for k in range(1, stage2 + 1)
    ]


def post_reload(node: Serve) -> tuple[int, str]:
    request = urllib.request.Request(node.url("/-/reload"), method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def reloads(node: Serve) -> list[tuple]:
    return node.query("SELECT trigger, result, message, files FROM config_reloads")


def stage2_counts(node: Serve) -> list[tuple]:
    """Per backlog in creation order: its state, the stage-2 occurrence of its definition, and
    the events its stage 2 counted."""
    return node.query(
        "SELECT b.state, json_extract(v.definition, '$.rules[1].occurrence'), "
        "(SELECT count(*) FROM stage_events e WHERE e.backlog_id = b.id AND e.stage = 2) "
        "FROM backlogs b JOIN directive_versions v ON v.id = b.directive_version ORDER BY b.seq")


def test_sighup_reloads_the_config_and_sigterm_still_stops(serve, nats_server, tmp_path):
    configs = write_configs(tmp_path / "configs", flood(3))
    node = serve(configs=configs).start()
    publish(nats_server.url, group(1)[:2])  # backlog 1: stage 2 with 1 of 3 events
    node.wait_for("SELECT count(*) FROM stage_events", [(2,)])
    (configs / DIRECTIVES).write_bytes(directives_file(flood(5)))

    node.proc.send_signal(signal.SIGHUP)
    wait_metric(node, SUCCESS, 1)
    publish(nats_server.url, group(2)[:1] + group(1)[2:] + group(2)[1:])
    node.wait_for("SELECT count(*) FROM backlogs WHERE state = 'finished'", [(2,)])
    assert stage2_counts(node) == [("finished", 3, 3), ("finished", 5, 5)]
    assert http_status(node.url("/healthz")) == 200

    rows = reloads(node)
    assert [r[:2] for r in rows] == [("start", "success"), ("SIGHUP", "success")]
    assert json.loads(rows[1][3]) == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in configs.iterdir()}
    assert json.loads(rows[0][3])[DIRECTIVES] != json.loads(rows[1][3])[DIRECTIVES]
    assert "1 directives (0 added, 1 changed, 0 removed)" in rows[1][2]
    assert "1 live backlogs go on with an earlier definition" in rows[1][2]
    assert "config reloaded (SIGHUP)" in node.log.read_text()
    assert node.metric(FAILURE) == 0
    assert node.metric("dsiem_config_last_reload_successful") == 1
    assert node.stop(signal.SIGTERM) == 0


def test_an_invalid_config_is_refused_and_the_old_one_stays_in_force(serve, nats_server,
                                                                     tmp_path):
    configs = write_configs(tmp_path / "configs", flood(3))
    node = serve(configs=configs).start()
    broken = configs / f"directives_{NODE}_broken.json"
    # both times directive 1 changes too: nothing of it may be taken
    (configs / DIRECTIVES).write_bytes(directives_file(flood(5)))
    broken.write_text('{"directives": [')
    status, body = post_reload(node)
    assert status == 400
    assert f"{broken}: " in body and "the config in force is unchanged" in body

    bad_rule = flood(4, id=2)
    bad_rule["rules"][1]["from"] = ":2"  # a reference to its own stage
    broken.write_bytes(directives_file(bad_rule))
    status, body = post_reload(node)
    assert status == 400
    assert f"{broken}: " in body and "must point to an earlier stage" in body

    assert node.metric(FAILURE) == 2
    assert node.metric(SUCCESS) == 0
    assert node.metric("dsiem_config_last_reload_successful") == 0
    errors = node.errors()
    assert len(errors) == 2 and all("config reload (POST /-/reload) refused" in e
                                    for e in errors)
    assert [r[:2] for r in reloads(node)] == [
        ("start", "success"), ("POST /-/reload", "failure"), ("POST /-/reload", "failure")]
    assert [r[3] for r in reloads(node)][1:] == ["{}", "{}"]

    publish(nats_server.url, group(1))  # under the old definition: 3 events in stage 2
    node.wait_for("SELECT count(*) FROM backlogs WHERE state = 'finished'", [(1,)])
    assert stage2_counts(node) == [("finished", 3, 3)]
    assert http_status(node.url("/healthz")) == 200
    assert node.stop() == 0


def test_a_removed_directive_finishes_its_live_backlog_and_opens_no_new_one(serve, nats_server,
                                                                          tmp_path):
    other = kit.directive(2, [rule(1, plugin_sid=[8]), rule(2, plugin_sid=[9])])
    configs = write_configs(tmp_path / "configs", flood(3), other)
    node = serve(configs=configs).start()
    publish(nats_server.url, group(1)[:2])
    node.wait_for("SELECT count(*) FROM stage_events", [(2,)])
    (configs / DIRECTIVES).write_bytes(directives_file(other))
    status, body = post_reload(node)
    assert status == 200, body
    assert "1 directives (0 added, 0 changed, 1 removed)" in body
    assert "1 removed directives run their live backlogs to the end" in body
    publish(nats_server.url, group(2)[:1] + group(1)[2:])
    node.wait_for("SELECT state FROM backlogs", [("finished",)])
    assert stage2_counts(node) == [("finished", 3, 3)]
    assert node.metric("dsiem_events_processed_total") == 7
    assert node.stop() == 0
    assert node.query("SELECT count(*) FROM backlogs") == [(1,)]


def test_get_is_not_a_reload(serve, tmp_path):
    node = serve(configs=write_configs(tmp_path / "configs", flood(3))).start()
    assert http_status(node.url("/-/reload")) == 405
    assert node.metric(SUCCESS) == 0
    assert node.stop() == 0


def test_the_reload_endpoint_is_off_by_default(serve, monkeypatch, tmp_path):
    """Anyone who reaches the metrics port could reload: like Prometheus's lifecycle API,
    POST /-/reload is refused (403) without --enable-lifecycle; SIGHUP still reloads."""
    monkeypatch.delenv("DSIEM_ENABLE_LIFECYCLE")
    configs = write_configs(tmp_path / "configs", flood(3))
    node = serve(configs=configs).start()
    (configs / DIRECTIVES).write_bytes(directives_file(flood(3), flood(3, id=2)))
    status, body = post_reload(node)
    assert status == 403 and "--enable-lifecycle" in body
    assert node.metric(SUCCESS) == 0
    assert [r[:2] for r in reloads(node)] == [("start", "success")]
    assert node.proc is not None
    node.proc.send_signal(signal.SIGHUP)
    wait_metric(node, SUCCESS, 1)
    assert [r[:2] for r in reloads(node)] == [("start", "success"), ("SIGHUP", "success")]
    assert node.stop() == 0


def test_dsiem_sql_reload_signals_the_serve_of_the_database(serve, nats_server, tmp_path):
    configs = write_configs(tmp_path / "configs", flood(3))
    node = serve(configs=configs).start()
    (configs / DIRECTIVES).write_bytes(directives_file(flood(5), flood(2, id=2)))
    done = cli("reload", "--db", node.db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("reloaded: ")
    assert "2 directives (1 added, 1 changed, 0 removed)" in done.stdout

    (configs / "assets_reload.json").write_text('{"assets": [{"name": "x", "cidr": "10.0.0.0/33"')
    refused = cli("reload", "--db", node.db)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: reload refused: ")
    assert "assets_reload.json" in refused.stderr
    assert "the config in force is unchanged" in refused.stderr
    assert [r[:2] for r in reloads(node)][1:] == [("SIGHUP", "success"), ("SIGHUP", "failure")]
    assert node.stop() == 0

    gone = cli("reload", "--db", node.db)
    assert gone.returncode == 1
    assert "no dsiem-sql serve is running with this database" in gone.stderr


def test_dsiem_sql_reload_with_uri_characters_in_the_database_path(serve, tmp_path):
    """`reload` reads the outcome through a read-only `file:` URI, where `#`, `?` and `%` of
    the path are escaped (unescaped, it read another file, and created it)."""
    configs = write_configs(tmp_path / "configs", flood(3))
    directory = tmp_path / "dir #1 ?x=%41 é"
    directory.mkdir()
    name = "a#b ?c%20é.db"
    node = serve(configs=configs, db=directory / name).start()
    (configs / DIRECTIVES).write_bytes(directives_file(flood(5), flood(2, id=2)))
    done = cli("reload", "--db", node.db)
    assert done.returncode == 0, done.stderr
    assert "2 directives (1 added, 1 changed, 0 removed)" in done.stdout
    assert [r[:2] for r in reloads(node)] == [("start", "success"), ("SIGHUP", "success")]
    assert node.stop() == 0
    assert set(os.listdir(directory)) <= {name + s for s in ("", "-wal", "-shm", ".lock")}


def test_dsiem_sql_reload_signals_only_a_serve(tmp_path):
    db = tmp_path / "state.db"
    lock = WriterLock(db, "import-backlogs")
    lock.acquire(db)
    try:
        held = cli("reload", "--db", db)
    finally:
        lock.release()
    assert held.returncode == 1
    assert "held by a dsiem-sql import-backlogs" in held.stderr
    assert "only serve reloads" in held.stderr
    free = cli("reload", "--db", db)
    assert free.returncode == 1
    assert "no dsiem-sql serve is running" in free.stderr


def test_an_asset_value_change_applies_to_the_risk_of_later_events(serve, nats_server,
                                                                   tmp_path):
    configs = write_configs(tmp_path / "configs", flood(1), value=1)
    node = serve(configs=configs).start()
    publish(nats_server.url, group(1, stage2=1))  # risk 3 * 5 * 1 // 25 = 0: no alarm
    node.wait_for("SELECT count(*) FROM stage_events", [(2,)])
    (configs / "assets_reload.json").write_bytes(assets_file(5))
    assert post_reload(node)[0] == 200
    publish(nats_server.url, group(2, stage2=1))  # 3 * 5 * 5 // 25 = 3
    node.wait_for("SELECT count(*) FROM stage_events", [(4,)])
    assert node.stop() == 0
    assert node.query("SELECT src_ips, risk FROM backlogs ORDER BY seq") == [
        ('["10.0.0.1"]', 0), ('["10.0.0.2"]', 3)]
    assert {a["src_ips"][0] for a in read_jsonl(node.logs / "siem_alarms.json")} == {"10.0.0.2"}


# -- SIGHUP under load ----------------------------------------------------------------------


async def publish_while_reloading(node: Serve, url: str, configs: Path, rate: int,
                                  switches: list[int], every: int, after: float) -> int:
    """Publish groups at `rate` events/s, overlapping: each step sends the first event of a
    new group and the k-th stage-2 event of the group started k steps before, so that some
    backlogs are always half-way when a reload comes. Each time `every` more events are out,
    give the directive the next stage-2 occurrence of `switches` and send SIGHUP; once serve
    recorded the last reload, go on for `after` seconds, then finish the groups under way.
    Returns how many groups went out."""
    nc = await nats.connect(url)
    pending = list(switches)
    under_way: dict[int, list[dict]] = {}
    sent = groups = 0
    next_reload, waiting, done_at = every, False, None
    started = time.monotonic()
    try:
        while under_way or done_at is None or time.monotonic() - done_at < after:
            if done_at is None or time.monotonic() - done_at < after:
                under_way[groups] = group(groups)
                groups += 1
            for n in sorted(under_way):
                data = under_way[n].pop(0)
                await nc.publish("dsiem_events", json.dumps(data).encode())
                sent += 1
                if not under_way[n]:
                    del under_way[n]
            if pending and not waiting and sent >= next_reload:
                (configs / DIRECTIVES).write_bytes(directives_file(flood(pending[0])))
                node.proc.send_signal(signal.SIGHUP)
                waiting = True
            if waiting and groups % 20 == 0 and \
                    len(reloads(node)) == 2 + len(switches) - len(pending):
                pending.pop(0)
                waiting, next_reload = False, sent + every
                if not pending:
                    done_at = time.monotonic()
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                await nc.flush()
                await asyncio.sleep(ahead)
        await nc.flush()
    finally:
        await nc.close()
    return groups


def check_semantics(node: Serve, groups: int, definitions: list[int]) -> None:
    """One backlog per group, in group order, each finished under the definition it started
    with: the backlogs opened between two reloads counted the stage-2 occurrence in force
    then (`definitions`, in order), and every definition opened some."""
    counts = stage2_counts(node)
    assert len(counts) == groups
    occurrences = [occurrence for _, occurrence, _ in counts]
    runs = [occurrences[0]] + [b for a, b in pairwise(occurrences) if a != b]
    assert runs == definitions, occurrences
    assert counts == [("finished", n, n) for n in occurrences]
    sources = [json.loads(s)[0] for (s,) in node.query("SELECT src_ips FROM backlogs ORDER BY seq")]
    assert sources == [group(n)[0]["src_ip"] for n in range(groups)]
    last_line: dict[str, dict] = {}
    for line in read_jsonl(node.logs / "siem_alarms.json"):
        last_line[line["alarm_id"]] = line
    finished = [(a["rules"][1]["occurrence"], a["rules"][1].get("status"))
                for a in sorted(last_line.values(), key=lambda a: sources.index(a["src_ips"][0]))]
    assert finished == [(n, "finished") for n in occurrences]


def run_under_load(serve, nats_server, tmp_path, switches: list[int], every: int,
                   after: float) -> None:
    configs = write_configs(tmp_path / "configs", flood(3))
    node = with_args(serve(configs=configs), "--max_delay", "0").start()
    groups = asyncio.run(publish_while_reloading(node, nats_server.url, configs, 5000,
                                                 switches, every, after))
    events = 6 * groups
    wait_metric(node, "dsiem_events_processed_total", events, timeout=60)
    assert node.metric("dsiem_events_received_total") == events
    assert node.metric("dsiem_events_dropped_total") == 0
    assert node.metric("dsiem_events_invalid_total") == 0
    assert node.metric(SUCCESS) == len(switches)
    assert node.stop() == 0
    check_semantics(node, groups, [3, *switches])
    assert f"stopped: {events} events processed" in node.log.read_text()


def test_sighup_under_5000_events_a_second_drops_nothing(serve, nats_server, tmp_path):
    run_under_load(serve, nats_server, tmp_path, switches=[5], every=6000, after=1.0)


@pytest.mark.slow
def test_five_sighups_in_half_a_minute_at_5000_events_a_second(serve, nats_server, tmp_path):
    run_under_load(serve, nats_server, tmp_path, switches=[5, 3, 5, 3, 5], every=25000,
                   after=5.0)


# -- --frontend -----------------------------------------------------------------------------


def test_a_reload_with_frontend_downloads_the_files_again(serve, nats_server, tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    files = {"assets_reload.json": assets_file(), DIRECTIVES: directives_file(flood(3))}
    with Frontend(files) as frontend:
        node = with_args(serve(configs=configs), "--frontend", frontend.url).start()
        publish(nats_server.url, group(1)[:2])
        node.wait_for("SELECT count(*) FROM stage_events", [(2,)])
        frontend.files[DIRECTIVES] = directives_file(flood(5))
        status, body = post_reload(node)
        assert status == 200, body
        assert body.startswith(f"downloaded 2 files from {frontend.url}; ")
        assert (configs / DIRECTIVES).read_bytes() == directives_file(flood(5))
        assert frontend.requests.count(f"/config/{DIRECTIVES}") == 2

        before = (configs / DIRECTIVES).read_bytes()
        frontend.files[DIRECTIVES] = directives_file(flood(7))
        frontend.fail[DIRECTIVES] = "drop"  # half the file, then the connection closes
        status, body = post_reload(node)
        assert status == 400
        assert f"cannot download {DIRECTIVES} from frontend {frontend.url}" in body
        assert (configs / DIRECTIVES).read_bytes() == before
        assert sorted(p.name for p in configs.iterdir()) == sorted(files)

    publish(nats_server.url, group(2)[:1] + group(1)[2:] + group(2)[1:])
    node.wait_for("SELECT count(*) FROM backlogs WHERE state = 'finished'", [(2,)])
    assert stage2_counts(node) == [("finished", 3, 3), ("finished", 5, 5)]
    assert node.metric(SUCCESS) == 1 and node.metric(FAILURE) == 1
    wait_log(node, "config reload (POST /-/reload) refused")
    assert node.stop() == 0

"""serve in-process with a memory intake: the worker loop, commits, expiry, reload pickup,
overload, the watchdog and health, on a fake clock, in milliseconds."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from kit import directive, event, ping_events, rule
from natskit import free_port
from servicekit import InProcess, until

from dsiem_sql.adapters.http.server import HttpEndpoints
from dsiem_sql.runtime.intake import Item, MemoryIntake
from dsiem_sql.runtime.service import STALLED, ServiceFailed
from dsiem_sql.runtime.worker import MAX_EVENT_BYTES

pytestmark = pytest.mark.asyncio


def write_configs(configs, *directives: dict) -> object:
    configs.mkdir(parents=True, exist_ok=True)
    (configs / "assets_home.json").write_text(json.dumps(
        {"assets": [{"name": "home", "cidr": "10.0.0.0/8", "value": 5}]}))
    (configs / "directives_dsiem-backend-0_test.json").write_text(
        json.dumps({"directives": list(directives)}))
    return configs


async def test_events_become_backlogs_and_alarms_once_committed(tmp_path):
    async with InProcess(tmp_path) as serve:
        serve.put(*ping_events(int(time.time()) - 300))
        await serve.settle()
        assert serve.query("SELECT count(*) FROM backlogs") == [(2,)]
        assert serve.query("SELECT count(*) FROM alarm_events") == [(17,)]
        live = serve.live()
        alarms = (tmp_path / "logs" / "siem_alarms.json").read_text().splitlines()
        assert (live["received"], live["processed"], live["alarms"]) == (17, 17, len(alarms))
        assert live["queue_length"] == 0 and live["last_commit"] > 0
        assert json.loads(alarms[-1])["risk"] == 2


async def test_nothing_is_committed_before_the_commit_interval(tmp_path):
    async with InProcess(tmp_path) as serve:
        serve.put(*ping_events(int(time.time()) - 300, range(1, 3)))
        await serve.turn(0.0)
        await until("both events taken", lambda: serve.service.counters.processed == 2)
        assert serve.query("SELECT count(*) FROM backlogs") == [(0,)]
        await serve.turn(0.2)  # past --commit-interval (100 ms)
        await serve.worker.correlator.written()
        assert serve.query("SELECT count(*) FROM backlogs") == [(1,)]


async def test_stopping_takes_what_is_queued_and_commits_it(tmp_path):
    serve = await InProcess(tmp_path).start()
    serve.put(*ping_events(int(time.time()) - 300))
    await serve.finish()
    assert serve.service.counters.processed == 17
    assert serve.query("SELECT count(*) FROM alarm_events") == [(17,)]
    assert serve.query("SELECT count(*) FROM outbox") == [(0,)]


async def test_invalid_and_oversized_events_are_counted_and_skipped(tmp_path, caplog):
    huge = json.dumps({**event("big", time.time()), "title": "x" * MAX_EVENT_BYTES})
    async with InProcess(tmp_path) as serve:
        serve.put(b"{not json", huge.encode(), *ping_events(int(time.time()) - 300, [1]))
        await serve.settle()
        assert serve.service.counters.invalid == 2
        assert serve.service.counters.processed == 1
    assert "cannot parse event" in caplog.text
    assert f"larger than the limit of {MAX_EVENT_BYTES}" in caplog.text


async def test_a_full_queue_drops_the_oldest_and_counts_it(tmp_path):
    async with InProcess(tmp_path, MemoryIntake(max_queue=3)) as serve:
        serve.put(*ping_events(int(time.time()) - 300, range(1, 6)))  # no turn in between
        assert serve.live()["dropped"] == 2
        await serve.settle()
        assert serve.service.counters.processed == 3


async def test_backlogs_expire_on_the_wall_clock_tick(tmp_path):
    engine_time = [int(time.time())]
    configs = write_configs(tmp_path / "configs", two_stages())
    intake = MemoryIntake(clock=lambda: engine_time[0])
    async with InProcess(tmp_path, intake, configs=configs, expiry_interval=10) as serve:
        serve.put(event("e1", engine_time[0]))
        await serve.settle()
        assert serve.query("SELECT state FROM backlogs") == [("live",)]
        engine_time[0] += 61  # past the stage deadline; the tick is not due yet
        await serve.settle()
        assert serve.query("SELECT state FROM backlogs") == [("live",)]
        await serve.turn(10.0)  # the expiry tick
        await serve.settle()
        assert serve.query("SELECT state FROM backlogs") == [("expired",)]


def two_stages(id: int = 1, sid: int = 1) -> dict:
    return directive(id, [rule(1, plugin_sid=[sid]), rule(2, plugin_sid=[2], timeout=60)])


async def test_ended_backlogs_are_pruned_once_an_hour(tmp_path):
    configs = write_configs(tmp_path / "configs", two_stages())
    engine_time = [int(time.time())]
    intake = MemoryIntake(clock=lambda: engine_time[0])
    async with InProcess(tmp_path, intake, configs=configs, retention_days=0) as serve:
        now = engine_time[0]
        serve.put(event("a1", now, "10.0.0.1"), event("a2", now, "10.0.0.1", plugin_sid=2),
                  event("b1", now, "10.0.0.2"))
        await serve.settle()
        assert serve.query("SELECT state FROM backlogs ORDER BY state") == [
            ("finished",), ("live",)]
        engine_time[0] += 1  # it ended before now
        await serve.turn(3600.0)
        await serve.settle()
        assert serve.query("SELECT state FROM backlogs") == [("live",)]


async def test_a_reloaded_config_is_taken_between_two_events(tmp_path):
    configs = write_configs(tmp_path / "configs", two_stages())
    async with InProcess(tmp_path, configs=configs, enable_lifecycle=True) as serve:
        serve.put(event("before", time.time(), "10.0.0.1", plugin_sid=7))
        await serve.settle()
        assert serve.query("SELECT count(*) FROM backlogs") == [(0,)]
        write_configs(configs, two_stages(sid=7))
        code, message = await serve.service.reloader.reload("test")
        assert code == 200 and "1 changed" in message, message
        serve.put(event("after", time.time(), "10.0.0.1", plugin_sid=7))
        await serve.settle()
        assert serve.query("SELECT count(*) FROM backlogs") == [(1,)]
        assert [r[0] for r in serve.query("SELECT trigger FROM reloads ORDER BY id")] == [
            "start", "test"]
        assert serve.live()["reloads_success"] == 1


async def test_a_refused_reload_keeps_the_config_in_force(tmp_path):
    configs = write_configs(tmp_path / "configs", two_stages())
    async with InProcess(tmp_path, configs=configs) as serve:
        (configs / "directives_dsiem-backend-0_broken.json").write_text('{"directives": [')
        code, message = await serve.service.reloader.reload("test")
        assert code == 400 and "the config in force is unchanged" in message
        serve.put(event("e1", time.time(), "10.0.0.1"))
        await serve.settle()
        assert serve.query("SELECT count(*) FROM backlogs") == [(1,)]
        assert (serve.live()["reloads_failure"], serve.live()["last_reload_successful"]) == (1, 0)


async def test_a_late_event_in_a_backlog_raises_the_overload_signal_then_lowers_it(tmp_path):
    async with InProcess(tmp_path, max_delay=1, hold_duration=2) as serve:
        base = int(time.time()) - 300
        serve.put(*ping_events(base, range(1, 3), rcvd_time=time.time_ns()))
        await serve.settle()
        await serve.turn(5.0)
        assert serve.signals == []
        serve.put(*ping_events(base, range(3, 5), rcvd_time=0))  # received long ago
        await serve.turn()
        await until("four events taken", lambda: serve.service.counters.processed == 4)
        await until("overload = true", lambda: serve.signals == [True])
        serve.monotonic.now += 2.0  # the hold
        await until("overload = false", lambda: serve.signals == [True, False])


async def test_the_watchdog_reports_what_the_worker_did(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dsiem_sql.runtime.watchdog")
    async with InProcess(tmp_path, watchdog_interval=0.01) as serve:
        serve.put(*ping_events(int(time.time()) - 300))
        await serve.settle()
        await until("a report with the events", lambda: any(
            getattr(r, "fields", {}).get("events_rcvd") == 17 for r in caplog.records))
    report = next(r.fields for r in caplog.records if getattr(r, "fields", {}).get(
        "events_rcvd") == 17)
    assert report["backlogs"] == 2 and report["events_matched"] == 17


async def test_health_follows_the_worker_and_the_store(tmp_path):
    async with InProcess(tmp_path) as serve:
        assert serve.service.healthy()
        serve.monotonic.now += STALLED + 1  # the worker has not gone round for that long
        assert not serve.service.healthy()
        await serve.turn()
        assert serve.service.healthy()
    assert not serve.service.healthy()


class Failing(MemoryIntake):
    async def take(self, limit: int) -> list[Item]:
        items = await super().take(limit)
        if items:
            raise RuntimeError("the intake broke")
        return items


async def test_a_fault_in_the_worker_stops_the_service_with_an_error(tmp_path, caplog):
    serve = await InProcess(tmp_path, Failing()).start()
    serve.put(event("e1", time.time()))
    serve.intake.wake()
    with pytest.raises(ServiceFailed, match="RuntimeError: the intake broke"):
        await serve.finish()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "stopping on a fault: RuntimeError: the intake broke"]


async def test_a_broken_http_endpoint_stops_the_service_with_an_error(tmp_path, monkeypatch,
                                                                    caplog):
    async def broken(self) -> None:
        raise RuntimeError("the accept loop broke")

    monkeypatch.setattr(HttpEndpoints, "_room", broken)
    serve = InProcess(tmp_path, metrics_port=free_port(), metrics_host="127.0.0.1")
    with pytest.raises(ServiceFailed, match="RuntimeError: the accept loop broke"):
        await serve.start()
        await asyncio.wait_for(serve.task, 10)  # type: ignore[arg-type]
    assert "stopping on a fault: RuntimeError: the accept loop broke" in caplog.text

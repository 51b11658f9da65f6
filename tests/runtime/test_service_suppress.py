"""Suppressions in serve, in-process: asked of the running service as `dsiem-sql suppress`
asks it (a request file and a wake-up), kept in the database, applied between two events,
counted, removed, expired by the engine clock, and resumed after a restart."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import pytest
from kit import directive, event, rule
from servicekit import InProcess, until
from test_service_core import write_configs

from dsiem_sql.runtime.intake import MemoryIntake
from dsiem_sql.runtime.requests import requests_dir
from dsiem_sql.store.suppressions import NewSuppression

pytestmark = pytest.mark.asyncio
SCANNER, OTHER, HOME = "192.0.2.9", "198.51.100.1", "10.0.0.5"


@pytest.fixture
def configs(tmp_path):
    return write_configs(tmp_path / "configs", *(directive(d, [
        rule(1, reliability=5), rule(2, occurrence=3, timeout=600, reliability=5,
                                     **{"from": ":1"})]) for d in (1, 2)))


def new(**scope) -> NewSuppression:
    fields = {"directive_id": None, "src": None, "dst": None, "custom_data": None,
              "reason": "pen test", "added_by": "test", "expires": None, **scope}
    return NewSuppression(**fields)


async def ask(serve: InProcess, request: dict) -> dict:
    """As `dsiem-sql suppress` asks: a request file, then the signal's wake-up."""
    directory = requests_dir(serve.options.db)
    directory.mkdir(exist_ok=True)
    (directory / "r.json").write_text(json.dumps(request))
    serve.service.requests.on_signal()
    reply = directory / "r.reply"
    await until("the answer", reply.exists)
    answer = json.loads(reply.read_text())
    reply.unlink()
    return answer


def opened(serve: InProcess) -> list[tuple[int, str]]:
    return serve.query("SELECT b.directive_id, json_extract(b.src_ips, '$[0]') FROM backlogs b "
                       "ORDER BY b.seq")


async def test_a_suppression_asked_of_serve_keeps_that_source_from_that_directive(
        tmp_path, configs):
    async with InProcess(tmp_path, configs=configs) as serve:
        answer = await ask(serve, {"op": "add", "suppression": asdict(new(
            directive_id=1, src="192.0.2.0/24"))})
        assert answer == {"ok": True, "id": 1}
        now = time.time()
        serve.put(event("a", now, SCANNER, HOME), event("b", now, OTHER, HOME))
        await serve.settle()
        assert opened(serve) == [(2, SCANNER), (1, OTHER), (2, OTHER)]
        assert serve.query("SELECT id, state, hits FROM suppressions") == [(1, "active", 1)]
        assert b'dsiem_events_suppressed_total{directive="1"} 1.0' in serve.service.metrics \
            .render()

        assert await ask(serve, {"op": "remove", "id": 1}) == {"ok": True}
        serve.put(event("c", now + 1, "192.0.2.10", HOME))
        await serve.settle()
        assert (1, "192.0.2.10") in opened(serve)
        assert serve.query("SELECT state FROM suppressions") == [("removed",)]


async def test_an_expired_suppression_lets_correlation_come_back(tmp_path, configs):
    engine_time = [int(time.time())]
    intake = MemoryIntake(clock=lambda: engine_time[0])
    async with InProcess(tmp_path, intake, configs=configs) as serve:
        await ask(serve, {"op": "add", "suppression": asdict(new(
            src=f"{SCANNER}/32", expires=engine_time[0] + 60))})
        serve.put(event("a", engine_time[0], SCANNER, HOME))
        await serve.settle()
        assert opened(serve) == []
        engine_time[0] += 60
        await serve.turn(10.0)  # the expiry tick
        serve.put(event("b", engine_time[0], SCANNER, HOME))
        await serve.settle()
        assert opened(serve) == [(1, SCANNER), (2, SCANNER)]
        assert serve.query("SELECT hits FROM suppressions") == [(2,)]  # "a", for 1 and 2
        assert serve.service.engine is not None and not serve.service.engine.suppressions


async def test_a_suppression_survives_a_restart(tmp_path, configs):
    async with InProcess(tmp_path, configs=configs) as serve:
        await ask(serve, {"op": "add", "suppression": asdict(new(directive_id=2,
                                                                 dst=f"{HOME}/32"))})
    async with InProcess(tmp_path, configs=configs) as again:
        again.put(event("a", time.time(), OTHER, HOME))
        await again.settle()
        assert opened(again) == [(1, OTHER)]


@pytest.mark.parametrize(("request_", "error"), [
    ({"op": "add", "suppression": asdict(new(directive_id=99))},
     "--directive 99: no such directive in the config serve runs"),
    ({"op": "remove", "id": 5}, "no suppression 5 in force"),
    ({"op": "add", "suppression": {"src": "x"}}, "a malformed request: "),
    ({"op": "shout"}, "unknown request 'shout'"),
])
async def test_a_request_serve_cannot_do_is_answered_with_the_reason(tmp_path, configs,
                                                                      request_, error):
    async with InProcess(tmp_path, configs=configs) as serve:
        answer = await ask(serve, request_)
        assert answer["ok"] is False and answer["error"].startswith(error)
        assert serve.query("SELECT count(*) FROM suppressions") == [(0,)]


async def test_an_unreadable_request_is_answered(tmp_path, configs):
    async with InProcess(tmp_path, configs=configs) as serve:
        directory = requests_dir(serve.options.db)
        directory.mkdir()
        (directory / "r.json").write_text("[1, 2")
        await until("the answer", (directory / "r.reply").exists)
        answer = json.loads((directory / "r.reply").read_text())
        assert answer["ok"] is False and answer["error"].startswith("unreadable request")
        assert not (directory / "r.json").exists()

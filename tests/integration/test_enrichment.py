"""Intel (Wise) and vulnerability (Nesd) enrichment against real local HTTP servers
(docs/behaviour.md, "Enrichment")."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from fakeintel import FakeIntel, attack, intel_configs
from kit import T0, event, ok, replay

from dsiem_sql.config import load_config
from dsiem_sql.engine import Engine
from dsiem_sql.enrichment.enricher import Enricher, checkers
from dsiem_sql.enrichment.lookups import Lookups
from dsiem_sql.runtime.correlator import Batching, Correlator, EventClock, FileSink
from dsiem_sql.runtime.replay import replay as replay_lines
from dsiem_sql.store.outbox import Appender


def noise(n: int) -> list[dict]:
    return [event(f"noise-{i}", T0 + 10, "1.1.1.1", "2.2.2.2", plugin_id=9, plugin_sid=9)
            for i in range(n)]


def run_cli(configs: Path, out: Path, events: list[dict], *extra: str):
    """`dsiem-sql replay` of `events` into `out`, with a database."""
    events_file = out.parent / f"{out.name}.jsonl"
    events_file.write_text("".join(json.dumps(e) + "\n" for e in events))
    return ok(replay(configs, out, events_file, "--db", out / "state.db", *extra))


def alarms(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "siem_alarms.json").read_text().splitlines()]


def test_hits_and_vulnerabilities_reach_the_alarm_line_and_the_database(tmp_path):
    with FakeIntel() as fake:
        configs = intel_configs(tmp_path / "cfg", [fake.wise()], [fake.nesd()])
        out = tmp_path / "out"
        out.mkdir()
        run_cli(configs, out, attack("8.8.8.8", 3))
        last = alarms(out)[-1]
        assert last["intel_hits"] == [{"provider": "Wise", "term": "8.8.8.8",
                                       "result": "description: blacklisted 8.8.8.8"}]
        # terms: every observed (address, port) pair, as dsiem-rs takes them; Low is left out
        assert sorted(v["term"] for v in last["vulnerabilities"]) == [
            "192.168.0.5:80", "8.8.8.8:40000"]
        assert {v["result"] for v in last["vulnerabilities"]} == {
            "High - Shellshock (CVE-2014-6271)"}
        assert fake.requests["wise/ok/192.168.0.5"] == 0  # private: not looked up
        con = sqlite3.connect(out / "state.db")
        assert con.execute("SELECT provider, term FROM alarm_intel").fetchall() == [
            ("Wise", "8.8.8.8")]
        assert con.execute("SELECT term FROM alarm_vulns ORDER BY term").fetchall() == [
            ("192.168.0.5:80",), ("8.8.8.8:40000",)]


def test_private_addresses_with_intel_private_ip(tmp_path):
    with FakeIntel() as fake:
        configs = intel_configs(tmp_path / "cfg", [fake.wise()], [])
        out = tmp_path / "out"
        out.mkdir()
        run_cli(configs, out, attack("8.8.8.8", 3), "--intel_private_ip")
        terms = {h["term"] for h in alarms(out)[-1]["intel_hits"]}
        assert terms == {"8.8.8.8", "192.168.0.5"}


def test_cache_is_keyed_by_checker_and_term(tmp_path):
    with FakeIntel() as fake:
        configs = intel_configs(tmp_path / "cfg", [fake.wise(), fake.wise()], [fake.nesd()])
        out = tmp_path / "out"
        out.mkdir()
        # three lookups (stage 1 and 2 of one backlog, stage 1 of a second one) for one source
        events = attack("8.8.8.8", 3) + attack("8.8.8.8", 1, start=100, dport=80)
        run_cli(configs, out, events, "--cache", "10")
        assert len([a for a in alarms(out) if "intel_hits" in a]) >= 2
        assert fake.requests["wise/ok/8.8.8.8"] == 2  # once per checker: the two sources
        assert fake.requests["nesd/ok/192.168.0.5:80"] == 1
        out2 = tmp_path / "nocache"
        out2.mkdir()
        run_cli(configs, out2, events, "--cache", "0")
        assert fake.requests["wise/ok/8.8.8.8"] > 2 + 2


def test_a_hanging_server_never_stalls_correlation(tmp_path):
    """The events processed while the lookup is in flight (from its request to its
    timeout) are counted on the engine's side, so the server thread's speed does not
    matter."""
    with FakeIntel() as fake:
        configs = intel_configs(tmp_path / "cfg", [fake.wise("hang")], [fake.nesd()])
        config = load_config(configs)
        clock = EventClock()
        engine = Engine(config, clock=clock)
        in_flight: dict[str, int] = {}

        class Watched(Enricher):
            async def _request(self, checker, term):
                if checker.kind != "intel":
                    return await super()._request(checker, term)
                in_flight["start"] = engine.stats.events
                try:
                    return await super()._request(checker, term)
                finally:
                    in_flight["end"] = engine.stats.events

        async def run():
            lines = [json.dumps(e) for e in attack("8.8.8.8", 1) + noise(10_000)]
            out = Appender(tmp_path / "out")
            out.open()
            async with (Watched(checkers(config.intel, config.vuln), timeout=1.5) as enricher,
                        asyncio.TaskGroup() as tasks):
                correlator = Correlator(
                    engine, FileSink(out), batching=Batching(interval_ms=1, changes=10_000),
                    clock=clock, lookups=Lookups(enricher, tasks), tasks=tasks,
                )
                return await replay_lines(lines, correlator, final_sweep=False)

        summary = asyncio.run(run())
        assert summary.read == 10_001
        assert fake.requests["wise/hang/8.8.8.8"] == 1
        assert in_flight["end"] - in_flight["start"] >= 1000
        last = alarms(tmp_path / "out")[-1]
        assert "intel_hits" not in last  # the hanging source timed out...
        assert last["vulnerabilities"]  # ...and the other checker's results still count


@pytest.mark.parametrize("mode", ["500", "bad", "refused"])
def test_failing_source_is_logged_and_changes_nothing_else(tmp_path, mode):
    with FakeIntel() as fake:
        broken = (fake.wise(mode) if mode != "refused"
                  else "http://127.0.0.1:9/wise/${ip}")  # nothing listens on port 9
        nesd = fake.nesd(mode if mode != "refused" else "ok")
        configs = intel_configs(tmp_path / "cfg", [broken, fake.wise()], [nesd])
        out = tmp_path / "out"
        out.mkdir()
        result = run_cli(configs, out, attack("8.8.8.8", 3))
        expected = {"500": "HTTP 500", "bad": "error parsing wise result",
                    "refused": "get request error"}[mode]
        assert expected in result.stderr
        last = alarms(out)[-1]
        assert last["intel_hits"] == [{"provider": "Wise", "term": "8.8.8.8",
                                       "result": "description: blacklisted 8.8.8.8"}]
        assert last["risk"] == 10 and len(alarms(out)) >= 3  # 2 stage lines + enriched ones

"""Restart semantics: the state reloaded from the database equals the engine's (issue 3)."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from itertools import count
from pathlib import Path

import kit
import pytest
from dbcompare import database_dump, normalised_outputs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import T0, iso, ok
from workload import PLUGIN, events, write_configs

from dsiem_sql.config import load_config
from dsiem_sql.config.loader import Config
from dsiem_sql.engine import Engine, decode_event
from dsiem_sql.runtime.correlator import Correlator, EventClock
from dsiem_sql.store.database import connect_read_only, upgrade
from dsiem_sql.store.rows import rule_json
from dsiem_sql.store.store import Store


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> tuple[Path, Config, Path]:
    """(a directory for the databases, the config of 5 workload directives, an empty
    database at the newest schema to copy)."""
    work = tmp_path_factory.mktemp("state")
    config = load_config(write_configs(work / "configs", n_directives=5))
    template = work / "template.db"
    upgrade(template)
    return work, config, template


def engine_state(engine: Engine) -> tuple:
    backlogs = tuple(
        (
            b.id, b.seq, b.definition, b.title, b.status, b.tag, b.current_stage, b.risk,
            b.risk_class, list(b.src_ips), list(b.dst_ips), list(b.networks),
            list(b.custom_data), b.created_time, b.update_time, b.last_srcport,
            b.last_dstport, b.state, sorted(b.event_ids), b.deadline,
            [
                (rule_json(s.rule), s.resolved, list(s.event_ids), list(s.sticky),
                 s.start_time, s.end_time, s.status, s.first_event)
                for s in b.stages
            ],
        )
        for b in sorted(engine.backlogs.values(), key=lambda b: b.seq)
    )
    per_directive = tuple(tuple(b.id for b in d.backlogs) for d in engine.directives)
    return backlogs, per_directive, engine.next_seq


def new_ids(prefix: str):
    counter = count(1)
    return lambda: f"{prefix}{next(counter)}"


event_strategy = st.tuples(
    st.integers(1, 6),  # plugin_sid: 1..5 reach a directive, 6 reaches none
    st.integers(0, 3),  # source
    st.integers(0, 2),  # destination
    st.sampled_from([22, 80, 443]),
    # custom data, also text that JSON must escape on its way through SQLite's JSON functions
    st.sampled_from(["", "x", "X", '"\\\x00\u2028', "[1]", "é\U0001F600"]),
    st.integers(0, 400),  # seconds after the previous event (may expire backlogs)
    st.booleans(),  # reuse the previous event id
)


def to_event(i: int, spec: tuple, ts: int, previous_id: str):
    sid, src, dst, port, data, _, reuse = spec
    return decode_event(json.dumps(kit.event(
        previous_id if reuse and previous_id else f"ev{i}", ts, f"198.51.100.{src}",
        f"10.0.0.{dst}", plugin_id=PLUGIN, plugin_sid=sid, dst_port=port, custom_label1="l",
        custom_data1=data,
    )))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_strategy, min_size=1, max_size=25))
def test_reloaded_state_equals_engine_state_after_every_prefix(workdir, specs):
    work, config, template = workdir
    db = Path(tempfile.mkdtemp(dir=work)) / "state.db"
    shutil.copy(template, db)

    async def scenario():
        clock = EventClock(T0)
        engine = Engine(config, clock=clock, new_id=new_ids("a"))
        store = Store(db, db.parent / "out")
        await store.open()
        correlator = Correlator(engine, store, clock=clock)
        try:
            ts, previous = T0, ""
            for i, spec in enumerate(specs):
                ts += spec[5]
                event = to_event(i, spec, ts, previous)
                previous = event.event_id
                correlator.feed(event)
                await correlator.commit(("input", i + 1, 0))
                reloaded = Engine(config, clock=EventClock(clock.now), new_id=new_ids("b"))
                resumed = await store.resume(reloaded.directive, "input")
                reloaded.resume(resumed.backlogs, resumed.next_seq)
                assert (resumed.clock, resumed.line) == (clock.now, i + 1)
                assert engine_state(reloaded) == engine_state(engine)
            # the reloaded engine goes on exactly like the original
            later = to_event(999, (1, 0, 0, 80, "x", 0, False), ts + 1, "")
            engine.new_id, reloaded.new_id = new_ids("c"), new_ids("c")
            a, b = engine.process(later), reloaded.process(later)
            assert (a.links, a.alarms) == (b.links, b.alarms)
        finally:
            await store.close()

    asyncio.run(scenario())


def replay(configs: Path, out: Path, db: Path, events_file: Path, *extra: str):
    return ok(kit.replay(configs, out, events_file, "--db", db, *extra))


def test_two_files_into_one_database_equal_their_concatenation(tmp_path):
    lines = events(6000, n_directives=20, seed=11)
    part1, part2, whole = tmp_path / "1.jsonl", tmp_path / "2.jsonl", tmp_path / "all.jsonl"
    part1.write_text("\n".join(lines[:2500]) + "\n")
    part2.write_text("\n".join(lines[2500:]) + "\n")
    whole.write_text("\n".join(lines) + "\n")
    configs = write_configs(tmp_path / "configs")
    replay(configs, tmp_path / "split", tmp_path / "split.db", part1)
    replay(configs, tmp_path / "split", tmp_path / "split.db", part2)
    replay(configs, tmp_path / "whole", tmp_path / "whole.db", whole)
    split_alarms, split_links, split_ids = normalised_outputs(tmp_path / "split")
    whole_alarms, whole_links, whole_ids = normalised_outputs(tmp_path / "whole")
    assert split_links == whole_links and split_alarms == whole_alarms
    assert len(whole_alarms) > 10
    assert database_dump(tmp_path / "split.db", split_ids) == database_dump(
        tmp_path / "whole.db", whole_ids
    )


def test_backlog_whose_deadline_passed_while_down_expires_at_the_first_check(tmp_path):
    configs = write_configs(tmp_path / "configs")
    first = [json.loads(x) for x in events(400, seed=5)]
    (tmp_path / "1.jsonl").write_text("\n".join(json.dumps(e) for e in first) + "\n")
    out, db = tmp_path / "out", tmp_path / "state.db"
    replay(configs, out, db, tmp_path / "1.jsonl")
    live_before = _query(db, "SELECT alarm_id FROM live_backlogs")
    assert live_before
    # one unrelated event two hours later: the first check after the restart expires them
    later = dict(first[0], event_id="later", plugin_sid=9999, timestamp=iso(T0 + 7200))
    (tmp_path / "2.jsonl").write_text(json.dumps(later) + "\n")
    replay(configs, out, db, tmp_path / "2.jsonl")
    assert _query(db, "SELECT alarm_id FROM live_backlogs") == []
    states = dict(_query(db, "SELECT id, state FROM backlogs"))
    assert {states[a] for (a,) in live_before} == {"expired"}
    timeouts = [json.loads(x) for x in (out / "siem_alarms.json").read_text().splitlines()]
    expired_alarms = {a["alarm_id"] for a in timeouts
                      if any(r.get("status") == "timeout" for r in a["rules"])}
    alarmed = {a for (a,) in _query(db, "SELECT alarm_id FROM alarms WHERE state='expired'")}
    assert expired_alarms == alarmed and alarmed


def test_retention_prunes_ended_backlogs_but_never_live_ones(tmp_path):
    configs = write_configs(tmp_path / "configs")
    lines = events(8000, seed=9)
    (tmp_path / "1.jsonl").write_text("\n".join(lines) + "\n")
    out, db = tmp_path / "out", tmp_path / "state.db"
    replay(configs, out, db, tmp_path / "1.jsonl")
    ended = _query(db, "SELECT count(*) FROM backlogs WHERE state != 'live'")[0][0]
    live = _query(db, "SELECT id FROM backlogs WHERE state = 'live'")
    assert ended > 0 and live
    # eight days later (event time) one more event arrives: ended ones are past retention
    late = json.loads(lines[0])
    late.update(event_id="late", plugin_sid=9999, timestamp=iso(T0 + 8 * 86400))
    (tmp_path / "2.jsonl").write_text(json.dumps(late) + "\n")
    replay(configs, out, db, tmp_path / "2.jsonl", "--retention-days", "7")
    rows = _query(db, "SELECT state, count(*) FROM backlogs GROUP BY state")
    assert "finished" not in dict(rows)  # all pruned, with their stages and event links
    remaining = {r[0] for r in _query(db, "SELECT DISTINCT backlog_id FROM stage_events")}
    assert remaining == {r[0] for r in _query(db, "SELECT id FROM backlogs")}
    assert dict(rows).get("expired", 0) == len(live)  # expired just now: within retention


def _query(db: Path, sql: str) -> list[tuple]:
    con = connect_read_only(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()

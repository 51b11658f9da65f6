"""A backlog of an extended directive resumes from the database as it was: an absence stage
with its deadline, sticky-different combinations, references to another field
(docs/extensions.md)."""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import EXAMPLES, T0, iso
from test_store_state import engine_state, new_ids

from dsiem_sql.config import load_config
from dsiem_sql.engine import Changes, Engine, decode_event
from dsiem_sql.runtime.correlator import Correlator, EventClock
from dsiem_sql.store.database import upgrade
from dsiem_sql.store.store import Store

CONFIGS = EXAMPLES / "extensions" / "configs"


def event(event_id: str, ts: int, src: str, dst: str, plugin_id: int, **kw):
    return decode_event(json.dumps({
        "event_id": event_id, "timestamp": iso(ts), "title": "t", "sensor": "s",
        "plugin_id": plugin_id, "plugin_sid": kw.pop("plugin_sid", 1), "src_ip": src,
        "dst_ip": dst, **kw}))


EVENTS = [
    event("login", T0, "203.0.113.7", "10.0.0.1", 3001, custom_label1="user",
          custom_data1="alice"),
    event("deny-0", T0 + 1, "198.51.100.1", "192.168.0.3", 3003, dst_port=22),
    *(event(f"deny-{i}", T0 + 1 + i, f"198.51.100.{i % 3 + 1}", "192.168.0.3", 3003,
            dst_port=22 + i // 3) for i in range(1, 8)),
    event("exploit", T0 + 20, "203.0.113.66", "192.168.10.5", 3004, plugin_sid=2),
    event("out-1", T0 + 30, "192.168.10.5", "198.51.100.1", 3005),
]


async def feed_and_resume(config, db, out, events) -> tuple[Engine, Engine]:
    """Each event through an engine that commits to `db`, and after each commit the state
    resumed into a new engine, which must equal the first; (the engine, the last resumed)."""
    clock = EventClock(T0)
    engine = Engine(config, clock=clock, new_id=new_ids("a"))
    store = Store(db, out)
    await store.open()
    correlator = Correlator(engine, store, clock=clock)
    reloaded = engine
    try:
        for i, e in enumerate(events):
            correlator.feed(e)
            await correlator.commit(("input", i + 1, 0))
            reloaded = Engine(config, clock=EventClock(clock.now), new_id=new_ids("b"))
            resumed = await store.resume(reloaded.directive, "input")
            reloaded.resume(resumed.backlogs, resumed.next_seq)
            assert engine_state(reloaded) == engine_state(engine)
            assert reloaded.next_absence() == engine.next_absence()
    finally:
        await store.close()
    return engine, reloaded


def test_resumed_extended_backlogs_equal_the_engine_and_go_on_alike(tmp_path):
    config = load_config(CONFIGS)
    db = tmp_path / "state.db"
    upgrade(db)

    async def scenario():
        engine, reloaded = await feed_and_resume(config, db, tmp_path / "out", EVENTS)
        clock = engine.clock
        states = {b.definition.id: (b.current_stage, b.current.rule.absent, list(b.current.sticky))
                  for b in reloaded.backlogs.values()}
        assert states[9001] == (2, True, [])
        assert states[9002][0] == 2 and states[9002][2][:2] == [("198.51.100.2", 22),
                                                                  ("198.51.100.3", 22)]
        assert reloaded.directive(9003) is not None
        assert reloaded.next_absence() == engine.next_absence() == T0 + 600
        # both go on alike: the absence completes at the same sweep, the victim goes on
        more = event("out-2", T0 + 700, "192.168.10.5", "198.51.100.2", 3005)
        outputs = []
        for e, c in ((engine, clock), (reloaded, reloaded.clock)):
            e.new_id = new_ids("c")
            changes = Changes()
            c.advance(T0 + 700)  # type: ignore[attr-defined]
            e.expire(into=changes)
            e.process(more, into=changes)
            outputs.append((changes.links, changes.alarms))
        assert outputs[0] == outputs[1]
        assert any('"absent":true' in line for line in outputs[0][1])

    asyncio.run(scenario())


extended_event = st.tuples(
    st.sampled_from([3001, 3002, 3003, 3004, 3005]),
    st.sampled_from(["203.0.113.7", "198.51.100.1", "198.51.100.2", "192.168.10.5",
                     "10.8.0.5"]),
    st.sampled_from(["10.0.0.1", "10.0.0.20", "192.168.0.3", "192.168.10.5",
                     "198.51.100.9"]),
    st.sampled_from([22, 445, 1000]),
    st.sampled_from(["alice", "bob"]),
    st.integers(0, 400),  # seconds after the previous event: absence windows pass
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(extended_event, min_size=1, max_size=30))
def test_random_extended_backlogs_resume_as_they_were(tmp_path_factory, specs):
    config = load_config(CONFIGS)
    work = tmp_path_factory.mktemp("ext")
    db = work / "state.db"
    upgrade(db)

    events, ts = [], T0
    for i, (plugin, src, dst, port, user, gap) in enumerate(specs):
        ts += gap
        events.append(event(f"e{i}", ts, src, dst, plugin, plugin_sid=1, dst_port=port,
                            custom_data1=user))
    asyncio.run(feed_and_resume(config, db, work / "out", events))

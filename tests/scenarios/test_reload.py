"""A live reload (issue 14), in the engine: it happens between two events; live backlogs keep
the definition they started with until they end; new backlogs use the new one; a removed
directive opens no backlog while its live ones run to their end; the new assets apply to
every event after the reload."""

from __future__ import annotations

import json

import kit
from harness import T0, Harness, decoded, directive, event, rule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import CONFIGS

from dsiem_sql.config import load_config

SRC_A, SRC_B, SRC_C = "10.0.0.1", "10.0.0.2", "10.0.0.3"


def two_stages(occurrence: int, sid2: int = 2, id: int = 1, **first):
    """Stage 1: plugin 1337/1 from anywhere; stage 2: `occurrence` events 1337/`sid2` from
    the same source."""
    return directive(id, [
        rule(1, **first),
        rule(2, plugin_sid=[sid2], occurrence=occurrence, timeout=3600, **{"from": ":1"}),
    ])


def start(n: int, src: str, ts: int = T0):
    return event(f"start-{src}-{n}", ts, src, "192.168.0.10")


def follow(n: int, src: str, ts: int = T0, sid: int = 2):
    return event(f"follow-{src}-{n}", ts, src, "192.168.0.10", plugin_sid=sid)


def stage_events(h: Harness, backlog_id: str) -> list[int]:
    return [len(ids) for ids in h.stage_events(backlog_id)]


def state(h: Harness, backlog_id: str) -> str:
    return h.changes.backlogs[backlog_id].state


def test_a_changed_occurrence_applies_to_backlogs_opened_after_the_reload():
    h = Harness([two_stages(occurrence=3)])
    h.feed(start(1, SRC_A), follow(1, SRC_A))  # b1: stage 2 with 1 of 3 events
    summary = h.reload([two_stages(occurrence=5)])
    assert (summary.changed, summary.added, summary.removed, summary.older) == (1, 0, 0, 1)
    h.feed(start(1, SRC_B))  # b2, under the new definition
    h.feed(*(follow(n, SRC_A) for n in range(2, 4)))
    assert state(h, "b1") == "finished"  # the old occurrence: 3
    assert stage_events(h, "b1") == [1, 3]
    h.feed(*(follow(n, SRC_B) for n in range(1, 4)))
    assert state(h, "b2") == "live"  # 3 of 5
    h.feed(*(follow(n, SRC_B) for n in range(4, 6)))
    assert state(h, "b2") == "finished"
    assert stage_events(h, "b2") == [1, 5]
    assert h.changes.backlogs["b1"].definition.rules[1].occurrence == 3
    assert h.changes.backlogs["b2"].definition.rules[1].occurrence == 5


def test_a_live_backlog_keeps_receiving_the_events_of_its_own_definition():
    """The new definition waits for another plugin SID in stage 2; the backlog opened before
    the reload still gets the old SID's events (the index routes them to it)."""
    h = Harness([two_stages(occurrence=2, sid2=2)])
    h.feed(start(1, SRC_A))
    h.reload([two_stages(occurrence=2, sid2=3)])
    h.feed(start(1, SRC_B))
    h.feed(follow(1, SRC_A, sid=2), follow(2, SRC_A, sid=2))
    assert state(h, "b1") == "finished"
    h.feed(follow(1, SRC_B, sid=2))  # the old SID means nothing to the new backlog
    assert stage_events(h, "b2") == [1, 0]
    h.feed(follow(2, SRC_B, sid=3), follow(3, SRC_B, sid=3))
    assert state(h, "b2") == "finished"


def test_an_event_taken_by_a_backlog_of_the_old_definition_opens_no_new_one():
    """Consumed events and used event ids hold across the definitions of a directive:
    the directive is the same, only its new backlogs change."""
    flood = [rule(1), rule(2, occurrence=3, timeout=3600, **{"from": ":1"})]
    h = Harness([directive(1, flood)])
    h.feed(start(1, SRC_A))
    h.reload([directive(1, [rule(1), rule(2, occurrence=4, timeout=3600, **{"from": ":1"})])])
    h.feed(start(2, SRC_A), start(3, SRC_A))  # taken by b1 in stage 2: no new backlog
    assert list(h.changes.backlogs) == ["b1"]
    assert stage_events(h, "b1") == [1, 2]


def test_a_removed_directive_opens_no_backlog_and_its_live_one_runs_to_its_end():
    other = directive(2, [rule(1, plugin_sid=[9]), rule(2, plugin_sid=[10])])
    h = Harness([two_stages(occurrence=3), other])
    h.feed(start(1, SRC_A), follow(1, SRC_A))
    summary = h.reload([other])
    assert (summary.directives, summary.removed, summary.retired) == (1, 1, 1)
    assert h.engine.directive(1) is None
    h.feed(start(1, SRC_B))
    assert list(h.changes.backlogs) == ["b1"]  # no new backlog of directive 1
    h.feed(follow(2, SRC_A), follow(3, SRC_A))
    assert state(h, "b1") == "finished"
    assert stage_events(h, "b1") == [1, 3]
    assert (1337, 1) in h.engine.index.by_sid  # until the next expiry sweep
    h.sweep(T0 + 1)
    assert (1337, 1) not in h.engine.index.by_sid
    assert (1337, 9) in h.engine.index.by_sid
    h.feed(start(2, SRC_B, T0 + 2))
    assert list(h.changes.backlogs) == ["b1"]


def test_a_removed_directive_that_comes_back_keeps_its_live_backlogs():
    other = directive(2, [rule(1, plugin_sid=[9]), rule(2, plugin_sid=[10])])
    h = Harness([two_stages(occurrence=3), other])
    h.feed(start(1, SRC_A), follow(1, SRC_A))
    h.reload([other])
    summary = h.reload([two_stages(occurrence=2), other])
    assert (summary.added, summary.retired, summary.older) == (1, 0, 1)
    h.feed(start(1, SRC_B))  # opens again, under the definition of the second reload
    h.feed(follow(1, SRC_B), follow(2, SRC_B))
    assert state(h, "b2") == "finished"
    h.feed(follow(2, SRC_A), follow(3, SRC_A))
    assert stage_events(h, "b1") == [1, 3]
    assert state(h, "b1") == "finished"


def one_stage(reliability: int = 5):
    """Stage 1 (reliability 5) is all that the tests reach."""
    return directive(1, [rule(1, reliability=reliability),
                         rule(2, plugin_sid=[99], timeout=3600)])


def test_an_asset_value_change_changes_the_risk_of_events_after_the_reload():
    low = [("net", "10.0.0.0/8", 1, False)]
    high = [("net", "10.0.0.0/8", 5, False)]
    stage2 = directive(2, [rule(1, plugin_sid=[5]),
                           rule(2, plugin_sid=[6], reliability=5, timeout=3600,
                                **{"from": ":1"})])
    h = Harness([one_stage(), stage2], low)
    h.feed(start(1, SRC_A))  # 3 * 5 * 1 // 25 = 0: no alarm
    h.feed(event("s2-1", T0, SRC_C, "192.168.0.10", plugin_sid=5))  # b2, live in stage 2
    assert h.alarms == []
    h.reload([one_stage(), stage2], high)
    h.feed(start(1, SRC_B))  # 3 * 5 * 5 // 25 = 3
    h.feed(event("s2-2", T0, SRC_C, "192.168.0.10", plugin_sid=6))  # b2's stage 2, after it
    assert [(a["alarm_id"], a["risk"]) for a in h.alarms] == [("b3", 3), ("b2", 3)]
    assert h.changes.backlogs["b1"].risk == 0  # computed before the reload


def test_home_net_and_whitelist_changes_apply_to_every_event_after_the_reload():
    to_home = directive(1, [rule(1, to="HOME_NET"), rule(2, plugin_sid=[99], timeout=3600)])
    h = Harness([to_home], [("net", "10.0.0.0/8", 5, False)])
    h.feed(event("e1", T0, SRC_A, "192.168.0.10"))  # 192.168.0.10 is not in HOME_NET
    assert h.changes.backlogs == {}
    h.reload([to_home], [("net", "10.0.0.0/8", 5, False), ("lan", "192.168.0.0/16", 2, False),
                         ("scanner", "10.0.0.2/32", 5, True)])
    h.feed(event("e2", T0, SRC_A, "192.168.0.10"), event("e3", T0, SRC_B, "192.168.0.10"))
    assert list(h.changes.backlogs) == ["b1"]  # e2 matches now; e3's source is whitelisted
    assert h.engine.stats.whitelisted == 1


def example_events() -> list[dict]:
    """The example streams: the ping flood and a port scan, in time order."""
    scan = [kit.event(f"scan-{n}", T0 + 5 + 10 * n, "203.0.113.50", "192.168.10.5",
                      plugin_id=1001, plugin_sid=2100498, src_port=40000 + n, dst_port=1000 + n)
            for n in range(1, 13)]
    return sorted(kit.ping_events(T0) + scan, key=lambda e: e["timestamp"])


def run_examples(reload_after: set[int]) -> Harness:
    """The example events through the example config, reloaded (from the same files: equal
    definitions, new objects) after the events numbered in `reload_after`."""
    config = load_config(CONFIGS)
    h = Harness(config.directives)
    h.engine.assets = config.assets
    for n, data in enumerate(example_events()):
        h.feed(decoded(data))
        if n in reload_after:
            h.engine.reload(load_config(CONFIGS))
    return h


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(st.integers(0, len(example_events()) - 1)))
def test_reloading_an_unchanged_config_changes_nothing(points):
    plain, reloaded = run_examples(set()), run_examples(points)
    assert reloaded.changes.alarms == plain.changes.alarms
    assert reloaded.links == plain.links
    assert [d.config for d in reloaded.engine.directives] == \
        [d.config for d in plain.engine.directives]


def test_the_examples_give_alarms_to_compare():
    """The property above compares something."""
    h = run_examples(set())
    assert h.alarms and h.links
    assert json.loads(h.changes.alarms[0])["title"]


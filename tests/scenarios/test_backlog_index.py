"""The backlog index changes nothing: on random directive sets and event streams, the engine
that offers an event only to the backlogs its index names gives exactly the output and the
state of one that offers every event to every live backlog."""

from __future__ import annotations

from harness import T0, Harness, directive, event, rule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsiem_sql.engine.index import LiveBacklogs

ADDRESSES = ["10.0.0.1", "10.0.0.2", "203.0.113.7"]
# references and literal addresses are what the index files backlogs under: more of them
ADDRESS_RULES = ["ANY", "ANY", "HOME_NET", "!HOME_NET", ":1", ":1", ":2", "10.0.0.1",
                 "10.0.0.1", "203.0.113.7", "10.0.0.0/8", "!10.0.0.2", "10.0.0.1,203.0.113.7"]


class ScanAll(LiveBacklogs):
    """Every live backlog is a candidate, as before the index."""

    __slots__ = ()

    def candidates(self, e):
        return sorted(self, key=lambda b: b.seq)


@st.composite
def directives(draw):
    made = []
    for d in range(draw(st.integers(1, 3))):
        stages = draw(st.integers(2, 3))
        rules = []
        for n in range(1, stages + 1):
            refs = [a for a in ADDRESS_RULES if not a.startswith(":") or int(a[1:]) < n]
            rules.append(rule(
                n, plugin_sid=draw(st.sampled_from([[1], [1], [1, 2], [2]])),
                occurrence=1 if n == 1 else draw(st.integers(1, 3)),
                timeout=draw(st.sampled_from([0, 300, 300, 300])),
                **{"from": draw(st.sampled_from(refs))}, to=draw(st.sampled_from(refs)),
            ))
        made.append(directive(100 + d, rules, name=f"d{d} from SRC_IP",
                              all_rules_always_active=draw(st.booleans())))
    return made


stream = st.lists(st.tuples(st.integers(1, 2), st.sampled_from(ADDRESSES),
                            st.sampled_from(ADDRESSES), st.integers(0, 20),
                            st.sampled_from([False, False, False, True])),
                  min_size=1, max_size=80)


def run(rules, events, index_class):
    h = Harness(rules)
    for d in h.engine.directives:
        d.backlogs = index_class()
    ts, previous = T0, None
    for i, (sid, src, dst, gap, again) in enumerate(events):
        ts += gap
        event_id = previous if again and previous else f"e{i}"
        previous = event_id
        h.feed(event(event_id, ts, src, dst, plugin_sid=sid))
    h.sweep(ts + 100)
    live = sorted((b.id, b.current_stage, [list(s.event_ids) for s in b.stages])
                  for b in h.engine.backlogs.values())
    return h.changes.alarms, h.links, live, h.engine.stats


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(directives(), stream)
def test_the_index_offers_events_exactly_where_a_full_scan_would_have_an_effect(rules, events):
    assert run(rules, events, LiveBacklogs) == run(rules, events, ScanAll)

"""Suppressions in the engine (docs/behaviour.md, "Suppressions"): an event in scope neither
opens nor advances a backlog of that directive; others go on; expiry by the engine clock;
hits; the index finds what a scan of every suppression finds."""

from __future__ import annotations

import ipaddress

from harness import T0, Harness, directive, event, rule
from hypothesis import given, settings
from hypothesis import strategies as st

from dsiem_sql.engine.suppressions import Suppression, Suppressions

HOME = "10.0.0.1"


def two_directives() -> Harness:
    return Harness([
        directive(1, [rule(1), rule(2, occurrence=2, timeout=60, **{"from": ":1"})]),
        directive(2, [rule(1), rule(2, occurrence=2, timeout=60, **{"from": ":1"})]),
    ])


def net(text: str):
    return ipaddress.ip_network(text)


def backlogs(h: Harness) -> list[tuple[int, str, int, str]]:
    return sorted((b.definition.id, b.stages[0].first_event.src_ip, b.current_stage, b.state)
                  for b in h.changes.backlogs.values())


def test_a_suppressed_source_opens_no_backlog_of_that_directive_only():
    h = two_directives()
    h.engine.suppressions.add(Suppression(7, 1, src=net("192.0.2.0/24")))
    step = h.feed(event("a", T0, "192.0.2.9", HOME), event("b", T0, "198.51.100.1", HOME))
    assert backlogs(h) == [(1, "198.51.100.1", 2, "live"), (2, "192.0.2.9", 2, "live"),
                           (2, "198.51.100.1", 2, "live")]
    assert step.suppression_hits == {7: (1, T0)}
    assert h.engine.stats.suppressed == {1: 1}


def test_a_live_backlog_in_scope_stops_advancing_and_expires_as_usual():
    h = two_directives()
    h.feed(event("a", T0, "192.0.2.9", HOME))
    h.engine.suppressions.add(Suppression(1, None, src=net("192.0.2.9/32")))
    h.feed(event("b", T0 + 1, "192.0.2.9", HOME), event("c", T0 + 2, "192.0.2.9", HOME))
    assert [(d, stage) for d, _, stage, _ in backlogs(h)] == [(1, 2), (2, 2)]
    assert all(len(b.stages[1].event_ids) == 0 for b in h.changes.backlogs.values())
    h.sweep(T0 + 61)
    assert [state for *_, state in backlogs(h)] == ["expired", "expired"]
    assert h.changes.suppression_hits == {1: (4, T0 + 2)}  # two events, two directives


def test_an_expired_suppression_lets_correlation_come_back():
    h = two_directives()
    h.engine.suppressions.add(Suppression(1, 1, dst=net("10.0.0.0/8"), expires=T0 + 100))
    h.feed(event("a", T0, "192.0.2.9", HOME))
    assert [d for d, *_ in backlogs(h)] == [2]
    h.sweep(T0 + 100)  # expires at the engine clock: event time here
    assert len(h.engine.suppressions) == 0
    h.feed(event("b", T0 + 101, "192.0.2.9", HOME))
    assert [d for d, *_ in backlogs(h)].count(1) == 1


def test_custom_data_narrows_the_scope_case_insensitively():
    h = two_directives()
    h.engine.suppressions.add(Suppression(1, 1, src=net("192.0.2.0/24"), custom_data="Scan"))
    h.feed(event("a", T0, "192.0.2.9", HOME, custom_data2="SCAN"),
           event("b", T0, "192.0.2.10", HOME, custom_data1="other"))
    assert [(d, src) for d, src, *_ in backlogs(h)] == [
        (1, "192.0.2.10"), (2, "192.0.2.10"), (2, "192.0.2.9")]


def test_no_suppression_no_change():
    plain, empty = two_directives(), two_directives()
    empty.engine.suppressions = Suppressions([])
    events = [event(f"e{i}", T0 + i, f"192.0.2.{i % 3}", HOME) for i in range(9)]
    plain.feed(*events)
    empty.feed(*events)
    assert plain.changes.alarms == empty.changes.alarms
    assert plain.links == empty.links
    assert plain.changes.suppression_hits == {}


def test_removing_a_suppression():
    s = Suppressions([Suppression(1, None, src=net("192.0.2.0/24")),
                      Suppression(2, 5, dst=net("10.0.0.1/32"))])
    assert s.remove(1) and not s.remove(1)
    assert s.suppressing(1, "192.0.2.1", HOME, ("", "", ""), T0) is None
    assert s.suppressing(5, "192.0.2.1", HOME, ("", "", ""), T0).id == 2


NETWORKS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "192.0.2.0/24", "2001:db8::/32",
            "2001:db8::1/128", "0.0.0.0/0"]
ADDRESSES = ["10.1.2.3", "10.1.9.9", "10.200.0.1", "192.0.2.7", "198.51.100.1",
             "2001:db8::1", "2001:db8::2", "::1"]


suppression = st.builds(
    lambda i, d, src, dst, cd, exp: Suppression(
        i, d, net(src) if src else None, net(dst) if dst else None, cd, exp),
    st.integers(0, 10**6), st.sampled_from([None, 1, 2]),
    st.sampled_from([None, *NETWORKS]), st.sampled_from([None, *NETWORKS]),
    st.sampled_from([None, "x"]), st.sampled_from([None, T0 + 5]))


@settings(max_examples=300, deadline=None)
@given(st.lists(suppression, max_size=30, unique_by=lambda s: s.id),
       st.sampled_from([1, 2, 3]), st.sampled_from(ADDRESSES), st.sampled_from(ADDRESSES),
       st.sampled_from(["", "x", "X"]), st.sampled_from([T0, T0 + 10]))
def test_the_index_finds_what_a_scan_finds(items, d, src, dst, cd, now):
    found = Suppressions(items).suppressing(d, src, dst, (cd, "", ""), now)
    scanned = [s for s in sorted(items, key=lambda s: (s.directive_id is None, s.id))
               if s.directive_id in (d, None) and s.active(now)
               and s.covers(src, dst, (cd, "", ""))]
    assert found == (scanned[0] if scanned else None)


@settings(max_examples=300, deadline=None)
@given(st.lists(suppression, max_size=30, unique_by=lambda s: s.id),
       st.sampled_from(ADDRESSES), st.sampled_from(ADDRESSES), st.sampled_from([T0, T0 + 10]))
def test_the_event_wide_check_passes_every_event_a_suppression_could_hold(items, src, dst,
                                                                          now):
    # the engine asks it once an event, before a lookup for each directive
    suppressions = Suppressions(items)
    suppressions.expire(now)  # rebuilds the index without the expired ones
    could = any(s.covers(src, dst, ("x", "x", "x")) for s in items if s.active(now))
    assert suppressions.could_hold(src, dst) or not could


def test_the_event_wide_check_passes_over_an_event_no_suppression_is_near():
    s = Suppressions([Suppression(1, 5, src=net("192.0.2.0/24")),
                      Suppression(2, None, dst=net("10.9.0.0/16"))])
    assert not s.could_hold("198.51.100.1", HOME)
    assert s.could_hold("192.0.2.1", HOME) and s.could_hold("198.51.100.1", "10.9.1.1")
    s.add(Suppression(3, 5, custom_data="x"))  # no address: any event could be held
    assert s.could_hold("198.51.100.1", HOME)

"""Issue 10, events and output: events without a title, repeated event ids, and protocol
references in `--reference-mode rule`."""

import pytest
from harness import T0, Harness, directive, event, records, rule

from dsiem_sql.engine.alarm import render_link


def test_an_event_without_title_correlates_and_the_alarm_title_is_the_directives():
    d = directive(1, [rule(1), rule(2, timeout=60, **{"from": ":1"})],
                  name="Untitled source SRC_IP", priority=5)
    h = Harness([d])
    h.feed(event("1", T0, "10.0.0.1", "10.0.0.2", title=None),  # null: the key is absent
           event("2", T0 + 1, "10.0.0.1", "10.0.0.2", title=""))
    assert h.links == [("b1", 1, "1"), ("b1", 2, "2")]
    assert [a["title"] for a in h.alarms] == ["Untitled source 10.0.0.1"] * 2


def test_a_repeated_event_id_is_one_link_per_backlog_and_stage():
    """The store keeps one `stage_events` row per (backlog, stage, event id); the alarm-events
    file must hold the same records, so a copy of an event writes no second line."""
    h = Harness([directive(1, [rule(1), rule(2, occurrence=5, timeout=60)])])
    h.feed(event("1", T0, "10.0.0.1", "10.0.0.2"))
    copies = h.feed(*(event("2", T0 + 1, "10.0.0.1", "10.0.0.2") for _ in range(5)))
    assert records(copies) == [("b1", 2, "2")]
    h.feed(event("1", T0 + 2, "10.0.0.1", "10.0.0.2"))  # stage 1's event, now in stage 2
    assert h.links == [("b1", 1, "1"), ("b1", 2, "2"), ("b1", 2, "1")]
    assert h.stage_events("b1") == [["1"], ["2", "1"]]


@pytest.mark.parametrize(
    ("mode", "match_protocol", "shown"),
    [
        pytest.param("value", False, "ICMP", id="value-mode-resolves"),
        pytest.param("value", True, "ICMP", id="value-mode-resolves-and-matches"),
        pytest.param("rule", False, ":1", id="rule-mode-literal-as-go"),
        pytest.param("rule", True, ":1", id="rule-mode-literal-not-matched"),
    ],
)
def test_protocol_reference_stays_literal_in_rule_mode(mode, match_protocol, shown):
    """Go Dsiem resolves references in addresses, ports and custom data only, so its alarms
    show `"protocol": ":1"`; rule mode reproduces that. With `--match-protocol` such a literal
    reference is not checked: it stands for no value."""
    d = directive(1, [rule(1), rule(2, timeout=60, protocol=":1", **{"from": ":1"})],
                  priority=5)
    h = Harness([d], reference_mode=mode, match_protocol=match_protocol)
    h.feed(event("1", T0, "10.0.0.1", "10.0.0.2", protocol="ICMP"),
           event("2", T0 + 1, "10.0.0.1", "10.0.0.2", protocol="ICMP"))
    assert h.links == [("b1", 1, "1"), ("b1", 2, "2")]
    assert [a["rules"][1]["protocol"] for a in h.alarms] == [shown, shown]


def test_a_link_carries_the_events_time_addresses_and_ports():
    """What `stage_events` keeps for `dsiem-sql explain`: the time (whole seconds), the
    canonical addresses and the ports of the event the stage took, also when an earlier
    stage takes it under all_rules_always_active; the alarm-event line stays the three keys."""
    d = directive(1, [rule(1, to="HOME_NET"), rule(2, occurrence=3, timeout=60,
                                                    **{"from": ":1"}, to="8.8.8.8")],
                  all_rules_always_active=True)
    h = Harness([d])
    h.feed(event("1", T0, "2002:c0a8:0001:0:0:0:0:2", "10.0.0.2", src_port=4444, dst_port=22,
                 timestamp="2024-05-01T10:00:00.900Z"))
    h.feed(event("2", T0 + 5, "2002:c0a8:1::2", "10.0.0.2"))  # stage 1 takes it again
    assert h.changes.links == [
        ("b1", 1, "1", T0, "2002:c0a8:1::2", "10.0.0.2", 4444, 22),
        ("b1", 1, "2", T0 + 5, "2002:c0a8:1::2", "10.0.0.2", 0, 0),
    ]
    assert render_link(h.changes.links[0]) == '{"alarm_id":"b1","stage":1,"event_id":"1"}'

"""Consumed events, as in Go Dsiem, and the two reference modes (docs/behaviour.md, "Consumed
events", "References")."""

import pytest
from harness import T0, Harness, directive, event, records, rule

PORT_SCAN = directive(
    2001,
    [
        rule(1, to="HOME_NET"),
        rule(2, occurrence=3, reliability=4, timeout=300, sticky_different="DST_PORT",
             **{"from": ":1", "to": ":1"}),
        rule(3, occurrence=20, reliability=8, timeout=900, sticky_different="DST_PORT",
             **{"from": ":1", "to": ":1"}),
    ],
    name="Port Scan from SRC_IP",
)


def scan(eid: str, port: int, ts: int = T0):
    return event(eid, ts, "203.0.113.50", "192.168.10.5", dst_port=port)


def test_repeated_port_is_consumed_and_opens_no_backlog():
    h = Harness([PORT_SCAN])
    h.feed(scan("1", 21), scan("2", 22))
    repeat = h.feed(scan("3", 22))  # same port again: no new sticky value
    assert repeat.links == []
    assert list(h.engine.backlogs) == ["b1"]
    assert list(h.engine.backlogs["b1"].current.event_ids) == ["2"]


def test_out_of_order_event_is_consumed_and_opens_no_backlog():
    h = Harness([PORT_SCAN])
    h.feed(scan("1", 21, T0 + 100), scan("2", 22, T0 + 101), scan("3", 23, T0 + 102),
           scan("4", 80, T0 + 103))
    b = h.engine.backlogs["b1"]
    assert b.current_stage == 3
    late = h.feed(scan("5", 443, T0 + 50))  # before stage 2 ended
    assert late.links == [] and list(h.engine.backlogs) == ["b1"]
    assert 443 not in b.current.sticky  # a discarded event takes no sticky slot


def test_event_matching_an_earlier_rule_is_consumed_only_with_all_rules_always_active():
    rules = [rule(1, to="HOME_NET"), rule(2, plugin_sid=[2], occurrence=2, timeout=60,
                                          **{"from": ":1", "to": ":1"})]
    for active, expected_backlogs in ((True, ["b1"]), (False, ["b1", "b2"])):
        h = Harness([directive(1, rules, all_rules_always_active=active)])
        h.feed(event("1", T0, "1.2.3.4", "192.168.0.5"), event("2", T0, "1.2.3.4", "192.168.0.5"))
        assert list(h.engine.backlogs) == expected_backlogs


def test_event_already_in_a_backlog_does_not_open_another():
    h = Harness([PORT_SCAN])
    h.feed(scan("1", 21))
    # same event id from another source: stage 2 of b1 does not match it
    again = h.feed(event("1", T0, "198.51.100.1", "192.168.10.5", dst_port=21))
    assert not again and list(h.engine.backlogs) == ["b1"]


def test_an_event_can_feed_several_backlogs_of_one_directive():
    d = directive(1, [rule(1, to="HOME_NET"),
                      rule(2, occurrence=3, timeout=60, **{"from": ":1"})])
    h = Harness([d])
    h.feed(event("1", T0, "1.1.1.1", "192.168.0.5"))
    h.feed(event("2", T0, "2.2.2.2", "192.168.0.5"))
    step = h.feed(event("3", T0, "2.2.2.2", "192.168.0.6", dst_port=1))
    assert records(step) == [("b2", 2, "3")]
    # a broader stage 2 (ANY source) in both backlogs takes one event in both
    d2 = directive(2, [rule(1, to="HOME_NET"), rule(2, occurrence=3, timeout=60)])
    h2 = Harness([d2])
    h2.feed(event("1", T0, "1.1.1.1", "192.168.0.5"), event("x", T0, "1.1.1.1", "8.8.8.8"))
    h2.feed(event("2", T0, "2.2.2.2", "192.168.0.5"))
    assert len(h2.engine.backlogs) == 1  # event 2 was consumed by b1's ANY stage 2


# --- reference modes --------------------------------------------------------------------

CIDR_REF = directive(
    10,
    [rule(1, **{"from": "192.168.0.0/16"}), rule(2, occurrence=2, timeout=60, **{"from": ":1"})],
)
CHAINED = directive(
    11,
    [rule(1, to="HOME_NET"), rule(2, timeout=60), rule(3, occurrence=2, timeout=60,
                                                        **{"from": ":2"})],
)


@pytest.mark.parametrize(("mode", "counted"), [("value", []), ("rule", ["2"])])
def test_reference_to_a_cidr_rule(mode, counted):
    """value: `:1` is the first event's address; rule: the text `192.168.0.0/16` is copied."""
    h = Harness([CIDR_REF], reference_mode=mode)
    h.feed(event("1", T0, "192.168.0.1", "8.8.8.8"))
    h.feed(event("2", T0, "192.168.0.3", "8.8.8.8"))
    assert list(h.engine.backlogs["b1"].current.event_ids) == counted


@pytest.mark.parametrize(("mode", "stage3_from"), [("value", "5.5.5.5"), ("rule", "1.1.1.1")])
def test_chained_reference(mode, stage3_from):
    """value: `:2` is stage 2's first event; rule: `:2` -> ANY -> the creating event."""
    h = Harness([CHAINED], reference_mode=mode)
    h.feed(event("1", T0, "1.1.1.1", "192.168.0.5"), event("2", T0, "5.5.5.5", "8.8.8.8"))
    b = h.engine.backlogs["b1"]
    assert b.current_stage == 3 and b.current.rule.from_ == stage3_from
    h.feed(event("3", T0, stage3_from, "9.9.9.9"))
    assert list(b.current.event_ids) == ["3"]


def test_custom_data_reference_stays_case_insensitive():
    d = directive(12, [rule(1), rule(2, occurrence=2, timeout=60, custom_data1=":1")])
    h = Harness([d])
    h.feed(event("1", T0, custom_data1="Deny"), event("2", T0, custom_data1="deny"),
           event("3", T0, custom_data1="allow"))
    assert list(h.engine.backlogs["b1"].current.event_ids) == ["2"]


def test_port_reference_in_value_mode():
    d = directive(13, [rule(1), rule(2, occurrence=2, timeout=60, port_to=":1")])
    h = Harness([d])
    h.feed(event("1", T0, dst_port=443), event("2", T0, dst_port=80),
           event("3", T0, dst_port=443))
    assert list(h.engine.backlogs["b1"].current.event_ids) == ["3"]


def test_protocol_is_ignored_unless_matching_is_switched_on():
    d = directive(14, [rule(1, protocol="TCP/IP"), rule(2, timeout=60)])
    assert Harness([d]).feed(event("1", T0, protocol="TCP")).links
    assert not Harness([d], match_protocol=True).feed(event("1", T0, protocol="TCP")).links


def test_ipv6_addresses_in_rules():
    d = directive(15, [rule(1, to="2002:c0a8:1::2"), rule(2, timeout=60, to="2002:c0a8:1::/64")])
    h = Harness([d])
    h.feed(event("1", T0, "2001:db8::1", "2002:c0a8:0001:0:0:0:0:2"))
    assert h.engine.backlogs["b1"].current_stage == 2
    h.feed(event("2", T0, "2001:db8::1", "2002:c0a8:1::99"))
    assert h.changes.backlogs["b1"].state == "finished"

"""Backlog scenarios of the Rust backends' tests, under dsiem-sql's semantics: S1 is
dsiem-backend's `test_backlog`, S2 its `test_all_rules_always_active_n_stickydiff`, S3 its
`test_expired`; S5 is dsiem-rs's `test_concurrent_events_to_the_same_directive`, S6 its
`test_any_and_multiple_sid_on_2nd_stage`."""

from harness import T0, Harness, directive, event, records, rule

DATA = {f"custom_{k}{n}": v for n in (1, 2, 3) for k, v in (("label", "label"), ("data", "data"))}

# directive5 of S1
DIRECTIVE5 = directive(
    1,
    [
        rule(1, custom_data1="ANY"),
        rule(
            2,
            plugin_sid=[1, 2],
            timeout=3,
            custom_data1=":1",
            custom_data2="ANY",
            custom_data3="ANY",
        ),
        rule(
            3,
            reliability=10,
            timeout=21600,
            to=":1",
            custom_data1=":1",
            custom_data2=":2",
            custom_data3=":2",
        ),
        rule(
            4,
            occurrence=2,
            reliability=10,
            timeout=21600,
            to=":1",
            custom_data1=":1",
            custom_data2=":2",
            custom_data3=":2",
        ),
    ],
)


def test_s1_stage_progression_references_and_out_of_order():
    h = Harness([DIRECTIVE5])
    h.feed(event("1", T0, "192.168.0.1", "10.0.0.131", src_port=31337, dst_port=80, **DATA))
    b = h.engine.backlogs["b1"]
    assert (b.current_stage, b.risk, h.alarms) == (2, 0, [])

    h.feed(event("2", T0, **DATA))
    assert b.current_stage == 3
    assert list(b.src_ips) == ["192.168.0.1"] and list(b.dst_ips) == ["10.0.0.131"]
    assert b.risk == 0
    # stage 3 now holds the values its references point at
    assert (b.current.rule.to, b.current.rule.custom_data2) == ("10.0.0.131", "data")

    h.feed(event("3", T0, "0.0.0.0", "10.0.0.131", **DATA))
    assert (b.current_stage, b.risk, b.risk_class) == (4, 6, "Medium")
    assert len(h.alarms) == 1

    late = h.feed(event("3", T0 - 86400, "0.0.0.0", "10.0.0.131", **DATA))
    assert late.links == [] and len(h.engine.backlogs) == 1

    h.feed(
        event("4", T0 + 10, "0.0.0.0", "10.0.0.131", **DATA),
        event("5", T0 + 10, "0.0.0.0", "10.0.0.131", **DATA),
    )
    assert b.state == "finished" and h.engine.backlogs == {}
    assert [a["risk"] for a in h.alarms] == [6, 6]
    assert h.links == [
        ("b1", 1, "1"),
        ("b1", 2, "2"),
        ("b1", 3, "3"),
        ("b1", 4, "4"),
        ("b1", 4, "5"),
    ]


# directive6 of S2
DIRECTIVE6 = directive(
    1,
    [
        rule(1),
        rule(
            2,
            plugin_sid=[2],
            occurrence=2,
            reliability=3,
            timeout=30,
            sticky_different="SRC_PORT",
            **{"from": ":1", "to": ":1"},
        ),
        rule(
            3,
            plugin_sid=[3],
            occurrence=2,
            reliability=10,
            timeout=30,
            **{"from": ":1", "to": ":1"},
        ),
    ],
    all_rules_always_active=True,
)


def s2_event(eid: str, sid: int, sport: int):
    return event(eid, T0, "192.168.0.1", "10.0.0.131", plugin_sid=sid, src_port=sport, dst_port=80)


def test_s2_all_rules_always_active_and_sticky_different():
    h = Harness([DIRECTIVE6], med_risk_max=5)
    h.feed(s2_event("1", 1, 31337))
    b = h.engine.backlogs["b1"]
    assert (b.stages[0].rule.from_, b.stages[0].rule.to) == ("192.168.0.1", "10.0.0.131")

    consumed_by_stage1 = h.feed(s2_event("2", 1, 31313), s2_event("3", 1, 31313))
    assert records(consumed_by_stage1) == [("b1", 1, "2"), ("b1", 1, "3")]
    assert h.alarms == [] and len(h.engine.backlogs) == 1

    nothing = h.feed(s2_event("4", 3, 31313), s2_event("5", 3, 31313))
    assert not nothing

    h.feed(s2_event("6", 2, 31337))
    assert list(b.current.sticky) == [31337] and list(b.current.event_ids) == ["6"]
    repeated = h.feed(s2_event("7", 2, 31337))
    assert repeated.links == [] and len(h.engine.backlogs) == 1

    h.feed(s2_event("7", 2, 31313))
    assert (b.current_stage, b.risk, b.risk_class, len(h.alarms)) == (3, 1, "Low", 1)

    h.feed(s2_event("8", 3, 31313), s2_event("9", 3, 31313))
    assert (b.state, b.risk, b.risk_class) == ("finished", 6, "High")
    assert len(h.alarms) == 2


def test_s3_expiry_after_the_stage_timeout():
    h = Harness([DIRECTIVE5])
    h.feed(event("1", T0))
    assert h.sweep(T0 + 3).backlogs == {}  # deadline T0+3 is not yet passed
    ended = h.sweep(T0 + 4)
    b = ended.backlogs["b1"]
    assert b.state == "expired" and b.stages[1].status == "timeout"
    assert ended.alarms == []  # risk 0: 0.0.0.0 has no asset value


def test_s3_min_alarm_lifetime_delays_expiry():
    h = Harness([DIRECTIVE5], min_alarm_lifetime=1)
    h.feed(event("1", T0))
    assert h.sweep(T0 + 63).backlogs == {}
    assert h.sweep(T0 + 64).backlogs["b1"].state == "expired"


def test_expired_alarm_writes_a_timeout_line_when_risk_is_set():
    h = Harness([DIRECTIVE5])
    h.feed(
        event("1", T0, "192.168.0.1", "10.0.0.131", **DATA),
        event("2", T0, **DATA),
        event("3", T0, "0.0.0.0", "10.0.0.131", **DATA),
    )
    assert len(h.alarms) == 1
    h.sweep(T0 + 21601)
    last = h.alarms[-1]
    assert last["risk"] == 6 and last["rules"][3]["status"] == "timeout"


def test_backlog_created_from_old_event_expires_at_its_first_check():
    h = Harness([DIRECTIVE5])
    h.feed(event("new", T0 + 100, "192.168.0.9", "10.0.0.9", plugin_sid=9))  # advances the clock
    opened = h.feed(event("old", T0, "192.168.0.1", "10.0.0.131", **DATA))
    assert opened.backlogs["b1"].state == "expired"


# directive8 of S5
DIRECTIVE8 = directive(
    333331,
    [rule(1, plugin_id=1002, plugin_sid=[60122])]
    + [
        rule(
            s,
            plugin_id=1002,
            plugin_sid=[60122],
            occurrence=10 ** (s - 1),
            timeout=600,
            **{"from": ":1", "to": ":1"},
        )
        for s in range(2, 6)
    ],
)


def test_s5_one_directive_two_backlogs():
    h = Harness([DIRECTIVE8])
    ev = {"plugin_id": 1002, "plugin_sid": 60122}
    h.feed(event("1", T0, "8.8.8.8", "192.168.0.1", **ev))
    h.feed(event("2", T0, "8.8.8.8", "192.168.0.2", **ev))
    step = h.feed(
        event("3", T0, "8.8.8.8", "192.168.0.2", **ev),
        event("4", T0, "8.8.8.8", "192.168.0.2", **ev),
    )
    assert sorted(h.engine.backlogs) == ["b1", "b2"]
    assert records(step) == [("b2", 2, "3"), ("b2", 2, "4")]


# directive9 of S6
DIRECTIVE9 = directive(
    2,
    [
        rule(1, plugin_id=1002, plugin_sid=[60122], to="HOME_NET", port_to="80"),
        rule(
            2,
            plugin_id=1002,
            plugin_sid=[60122, 60123, 60124],
            occurrence=10,
            timeout=600,
            to=":1",
            port_to=":1",
        ),
    ],
)


def test_s6_any_source_and_several_sids_on_stage_2():
    h = Harness([DIRECTIVE9])
    h.feed(event("1", T0, "8.8.8.8", "192.168.0.1", plugin_id=1002, plugin_sid=60122, dst_port=80))
    step = h.feed(
        event(
            "2",
            T0,
            "9.9.9.9",
            "192.168.0.1",
            plugin_id=1002,
            plugin_sid=60122,
            src_port=31337,
            dst_port=80,
        ),
        event(
            "3",
            T0,
            "9.9.9.10",
            "192.168.0.1",
            plugin_id=1002,
            plugin_sid=60122,
            src_port=31338,
            dst_port=80,
        ),
        event(
            "4",
            T0,
            "9.9.9.11",
            "192.168.0.1",
            plugin_id=1002,
            plugin_sid=60123,
            src_port=31339,
            dst_port=80,
        ),
    )
    assert list(h.engine.backlogs) == ["b1"]
    assert [link.event_id for link in step.links] == ["2", "3", "4"]

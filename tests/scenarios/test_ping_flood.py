"""The Ping Flood example of the Dsiem documentation (docs/behaviour.md, "Alarm lines")."""

from harness import T0, Harness, decoded, directive, rule
from kit import ping_events

PING = {"plugin_id": 1001, "plugin_sid": [2100384], "protocol": "ICMP"}
PING_FLOOD = directive(
    1,
    [
        rule(1, name="ICMP Ping", **PING, **{"from": "HOME_NET"}),
        rule(
            2, name="ICMP Ping", **PING, occurrence=5, reliability=5, timeout=600, **{"from": ":1"}
        ),
        rule(
            3,
            name="ICMP Ping",
            **PING,
            occurrence=500,
            reliability=10,
            timeout=3600,
            **{"from": ":1"},
        ),
    ],
    name="Ping Flood from SRC_IP",
)
ONE_ASSET = [("10-Net", "10.0.0.0/8", 4, False)]


def run() -> Harness:
    h = Harness([PING_FLOOD], ONE_ASSET)
    h.feed(*map(decoded, ping_events(T0)))
    return h


def test_one_backlog_collects_the_flood_in_three_stages():
    h = run()
    assert h.stage_events("b1") == [
        ["ping-01"],
        ["ping-02", "ping-04", "ping-05", "ping-06", "ping-07"],
        [f"ping-{n:02d}" for n in range(8, 18)],
    ]
    assert h.engine.backlogs["b1"].current_stage == 3


def test_exactly_one_alarm_line_low_risk_with_substituted_title():
    h = run()
    assert len(h.alarms) == 1
    alarm = h.alarms[0]
    assert alarm["alarm_id"] == "b1"
    assert alarm["risk"] == 2
    assert alarm["risk_class"] == "Low"
    assert alarm["title"] == "Ping Flood from 10.0.0.1"
    assert alarm["networks"] == ["10.0.0.0/8"]
    assert alarm["src_ips"] == ["10.0.0.1"]
    assert alarm["custom_data"] == [{"label": "icmp_type", "content": "8"}]
    stage2 = alarm["rules"][1]
    assert stage2["from"] == "10.0.0.1"  # the reference shows the value it stands for
    assert stage2["status"] == "finished"
    assert stage2["end_time"] == T0 + 70


def test_ping_03_opens_a_second_backlog_that_never_alarms():
    h = run()
    second = h.changes.backlogs["b2"]
    assert second.risk == 0
    assert [list(s.event_ids) for s in second.stages] == [["ping-03"], [], []]
    assert ("b2", 1, "ping-03") in h.links
    assert all(a["alarm_id"] != "b2" for a in h.alarms)
    assert len(h.links) == 17

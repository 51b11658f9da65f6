"""Alarm and alarm-event line format (docs/behaviour.md, "Alarm lines", "Alarm fields",
"Alarm-event lines")."""

import json

from harness import T0, Harness, directive, event, rule

ALARM_KEYS = ["alarm_id", "title", "status", "tag", "kingdom", "category", "created_time",
              "update_time", "risk", "risk_class", "rules", "src_ips", "dst_ips", "networks"]


def alarmed(**options) -> Harness:
    d = directive(
        1,
        [rule(1, to="HOME_NET", custom_label1="action"),
         rule(2, occurrence=2, reliability=10, timeout=60, sticky_different="SRC_PORT",
              **{"from": ":1", "to": ":1"})],
        name="Attack on DST_IP from SRC_IP", priority=5,
    )
    h = Harness([d], **options)
    h.feed(event("1", T0, "8.8.8.8", "192.168.0.1", src_port=1, custom_label1="action",
                 custom_data1="deny"),
           event("2", T0 + 5, "8.8.8.8", "192.168.0.1", src_port=2),
           event("3", T0 + 9, "8.8.8.8", "192.168.0.1", src_port=3))
    return h


def test_alarm_keys_order_and_values():
    h = alarmed()
    line = h.changes.alarms[-1]
    alarm = json.loads(line)
    assert list(alarm) == [*ALARM_KEYS, "custom_data"]
    assert "saved" not in line
    assert alarm["title"] == "Attack on Firewall from 8.8.8.8"  # host asset name, else the IP
    assert (alarm["status"], alarm["tag"]) == ("Open", "Identified Threat")
    assert (alarm["risk"], alarm["risk_class"]) == (10, "High")
    # risk 1 already at stage 1 (5 * 1 * 5 // 25): the alarm was created then
    assert (alarm["created_time"], alarm["update_time"]) == (T0, T0 + 9)
    assert alarm["networks"] == ["192.168.0.0/16"]  # the /32 host asset never appears
    assert alarm["custom_data"] == [{"label": "action", "content": "deny"}]
    assert line == json.dumps(alarm, separators=(",", ":"))


def test_rule_object_keys_and_omissions():
    alarm = alarmed().alarms[-1]
    stage1, stage2 = alarm["rules"]
    assert list(stage1) == ["name", "stage", "occurrence", "from", "to", "plugin_id",
                            "plugin_sid", "type", "port_from", "port_to", "protocol",
                            "reliability", "timeout", "start_time", "end_time", "status",
                            "custom_label1"]
    assert stage2["sticky_different"] == "SRC_PORT"
    assert (stage2["from"], stage2["to"]) == ("8.8.8.8", "192.168.0.1")
    assert (stage2["start_time"], stage2["end_time"]) == (T0, T0 + 9)
    assert "product" not in stage2 and "custom_data1" not in stage2


def test_status_and_tag_come_from_options():
    alarm = alarmed(status="In-Progress", tag="Valid Threat").alarms[-1]
    assert (alarm["status"], alarm["tag"]) == ("In-Progress", "Valid Threat")


def test_medium_thresholds_follow_options():
    assert alarmed(med_risk_min=3, med_risk_max=9).alarms[-1]["risk_class"] == "High"
    assert alarmed(med_risk_min=3, med_risk_max=9).alarms[-1]["risk"] == 10


def test_optional_lists_are_omitted_when_empty():
    d = directive(2, [rule(1, to="HOME_NET"), rule(2, reliability=10, timeout=60)], priority=5)
    h = Harness([d])
    h.feed(event("1", T0, "8.8.8.8", "192.168.0.1"), event("2", T0, "8.8.8.8", "192.168.0.1"))
    alarm = h.alarms[-1]
    assert list(alarm) == ALARM_KEYS

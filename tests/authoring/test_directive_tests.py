"""`dsiem-sql test` and `test-init` in-process: case files, their errors, failures that name
the alarm, stage and field, time steps, starter cases over random directives, and the same
alarms as `replay` for the same events."""

from __future__ import annotations

import asyncio
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import kit
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import CONFIGS, EXAMPLES, directive, event, rule

from dsiem_sql.authoring.cases import CaseError, load_cases
from dsiem_sql.authoring.runner import run_cases
from dsiem_sql.authoring.starter import Unreachable, starter_case
from dsiem_sql.authoring.suite import run_suite
from dsiem_sql.config import load_config
from dsiem_sql.engine import Engine
from dsiem_sql.runtime.correlator import Correlator, EventClock, FileSink
from dsiem_sql.runtime.replay import replay
from dsiem_sql.runtime.settings import EngineSettings
from dsiem_sql.store.outbox import FILES, Appender

CASE = """
configs: {configs}
directives: [1]
start: 2024-05-01T10:00:00Z
defaults: {{plugin_id: 1001, plugin_sid: 2100384, protocol: ICMP, src_ip: 10.0.0.1,
           dst_ip: 10.0.0.3}}
cases:
  - name: six pings
    events:
      - {{at: +0s, id: first}}
      - {{at: +10s, id: ping, repeat: 5, every: 10s}}
    expect:
      alarms:
        - {{directive: 1, risk: {risk}, risk_class: Low, stage: 3,
            events: {{1: [first], 2: [{stage2}]}}}}
      alarm_lines: 1
"""


def case_file(tmp_path: Path, text: str = CASE, name: str = "case.yaml", **values) -> Path:
    path = tmp_path / name
    fields = {"configs": str(CONFIGS), "risk": 2, "stage2": "ping-1..ping-5", **values}
    path.write_text(text.format(**fields))
    return path


def outcomes(path: Path):
    return run_cases(load_cases(path))


def test_a_case_passes(tmp_path):
    [outcome] = outcomes(case_file(tmp_path))
    assert outcome.passed, outcome.failures


def test_a_wrong_risk_and_stage_events_fail_naming_the_stage_and_the_field(tmp_path):
    [outcome] = outcomes(case_file(tmp_path, risk=3, stage2="ping-1..ping-4"))
    assert outcome.failures == [
        "alarm 1 (directive 1): risk: expected 3, got 2",
        "alarm 1 (directive 1): stage 2 events: expected [ping-1..ping-4], "
        "got [ping-1..ping-5]",
    ]


def test_expiry_through_a_time_step(tmp_path):
    text = f"""
configs: {CONFIGS}
directives: [1]
defaults: {{plugin_id: 1001, plugin_sid: 2100384, src_ip: 10.0.0.1}}
cases:
  - name: at the deadline
    events: [{{at: +0s, id: ping}}, {{at: +600s}}]
    expect: {{backlogs: [{{state: live, stage: 2}}]}}
  - name: past it
    events: [{{at: +0s, id: ping}}, {{at: +601s}}]
    expect: {{backlogs: [{{state: expired, ended: +601s}}]}}
  - name: the wrong time
    events: [{{at: +0s, id: ping}}, {{at: +700s}}]
    expect: {{backlogs: [{{state: expired, ended: +601s}}]}}
"""
    (tmp_path / "t.yaml").write_text(text)
    results = outcomes(tmp_path / "t.yaml")
    assert [o.failures for o in results] == [
        [], [], ["backlog 1 (directive 1): ended: expected +601s, got +700s"]]


def test_negative_expectations(tmp_path):
    text = f"""
configs: {CONFIGS}
defaults: {{plugin_id: 1001, plugin_sid: 2100384, src_ip: 10.0.0.1}}
cases:
  - name: one ping opens a backlog of directive 1 and raises no alarm
    events: [{{id: ping}}]
    expect: {{alarms: [], no_backlog: [2001, 3001]}}
  - name: wrongly said to open none
    events: [{{id: ping}}]
    expect: {{no_backlog: [1]}}
  - name: wrongly said to alarm
    events: [{{id: ping}}]
    expect: {{alarms: [{{directive: 1}}]}}
"""
    (tmp_path / "t.yaml").write_text(text)
    results = outcomes(tmp_path / "t.yaml")
    assert results[0].failures == []
    assert results[1].failures == [
        "no_backlog: directive 1 opened 1 backlog: directive 1 stage 2/3 risk 0 live"]
    assert results[2].failures == ["alarms: expected 1, got 0: none"]


@pytest.mark.parametrize(("text", "message"), [
    ("cases: [", "not valid YAML: line 1, column 9"),
    ("cases: []", "cases: List should have at least 1 item"),
    ("cases: [{name: x, expect: {alarm: []}}]", "cases[0] (x).expect.alarm: not a key of this "
                                                "place (a typo?)"),
    ("cases: [{name: x, expect: {alarms: [{risk: high}]}}]",
     "cases[0] (x).expect.alarms[0].risk: Input should be a valid integer"),
    ("start: tomorrow\ncases: [{name: x, expect: {}}]", "'tomorrow' is not a time"),
    ("options: {med_risk_min: 9}\ncases: [{name: x, expect: {}}]", "options"),
    ("cases: [{name: x, events: [{at: soon}], expect: {}}]",
     "cases[0] (x): events[0]: 'soon' is not a time"),
    ("cases: [{name: x, events: [{repeat: 0}], expect: {}}]",
     "events[0]: repeat: 0 is not a count of 1 or more"),
])
def test_a_bad_case_file_is_named_with_the_place(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CaseError) as raised:
        load_cases(path, CONFIGS)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_what_cannot_run_is_an_error_of_its_case(tmp_path):
    text = f"""
configs: {CONFIGS}
cases:
  - {{name: no such directive, directives: [99], expect: {{}}}}
  - {{name: an invalid event, events: [{{id: e1}}], expect: {{}}}}
  - {{name: fine, expect: {{alarms: []}}}}
"""
    (tmp_path / "t.yaml").write_text(text)
    results = outcomes(tmp_path / "t.yaml")
    assert [o.error for o in results] == [
        f"directive 99 is not in {CONFIGS}",
        "events[0]: event e1 is not valid: needs plugin_id and plugin_sid, or product and "
        "category",
        None,
    ]
    assert results[2].passed


def test_configs_default_to_the_folder_beside_the_file(tmp_path):
    (tmp_path / "configs").symlink_to(CONFIGS)
    path = tmp_path / "t.yaml"
    path.write_text(CASE.replace("configs: {configs}\n", "").format(
        risk=2, stage2="ping-1..ping-5"))
    [outcome] = run_cases(load_cases(path))
    assert outcome.passed, outcome.error or outcome.failures


def test_the_suite_reports_junit_xml(tmp_path):
    case_file(tmp_path, name="good.yaml")
    case_file(tmp_path, name="wrong.yaml", risk=5)
    (tmp_path / "broken.yaml").write_text("cases: [")
    result = run_suite([tmp_path])
    assert not result.passed
    assert result.lines()[-1] == "2 cases: 1 passed, 1 failed"
    assert result.lines()[0].startswith(f"ERROR {tmp_path / 'broken.yaml'}: not valid YAML")
    root = ET.fromstring(result.junit_xml())
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    failure = root.find(".//testcase[@classname='%s']/failure" % (tmp_path / "wrong.yaml"))
    assert failure is not None
    assert failure.get("message") == "alarm 1 (directive 1): risk: expected 5, got 2"


def test_the_example_directives_all_have_passing_tests():
    result = run_suite([EXAMPLES / "tests"])
    assert result.passed, "\n".join(result.lines())
    directives = {d.id for d in load_config(CONFIGS).directives}
    tested = {d for case in load_cases_of(EXAMPLES / "tests") for d in case.directives or ()}
    assert directives <= tested


def load_cases_of(directory: Path):
    return [c for path in sorted(directory.glob("*.yaml")) for c in load_cases(path)]


# -- test-init --------------------------------------------------------------------------------


ASSETS = {"assets": [{"name": "home", "cidr": "10.0.0.0/16", "value": 5},
                     {"name": "dmz", "cidr": "172.16.0.0/24", "value": 2},
                     {"name": "scanner", "cidr": "10.0.9.9/32", "value": 1, "whitelisted": True}]}
ADDRESSES = ["ANY", "HOME_NET", "!HOME_NET", "10.0.3.0/24", "172.16.0.5", "!10.0.0.0/8",
             "10.0.0.0/16, !10.0.1.0/24"]
PORTS = ["ANY", "22", "22, 80", "!22", "1024, !1024"]


@st.composite
def random_directive(draw) -> dict:
    stages = draw(st.integers(2, 4))
    rules = []
    for n in range(1, stages + 1):
        refs = [f":{k}" for k in range(1, n)]
        taxonomy = draw(st.integers(0, 4)) == 0
        kind = ({"type": "TaxonomyRule", "product": ["IDS"], "category": "Scan"} if taxonomy
                else {"plugin_sid": draw(st.sampled_from([[1], [1, 2], [2], [3, 4, 5]]))})
        sticky = draw(st.sampled_from(["", "", "SRC_IP", "DST_IP", "DST_PORT", "PLUGIN_SID",
                                       "CUSTOM_DATA1"]))
        rules.append(rule(
            n, **kind, occurrence=1 if n == 1 else draw(st.integers(1, 4)),
            timeout=draw(st.sampled_from([0, 60, 600])) if n > 1 else 0,
            reliability=draw(st.integers(1, 10)),
            to=draw(st.sampled_from(ADDRESSES + refs)),
            port_to=draw(st.sampled_from(PORTS + refs)),
            sticky_different=sticky,
            custom_data1=draw(st.sampled_from(["", "ANY", "deny", "!allow", "a, b", *refs])),
            **{"from": draw(st.sampled_from(ADDRESSES + refs))},
        ))
    return directive(1, rules, priority=draw(st.integers(1, 5)))


def write_configs(root: Path, *directives: dict) -> Path:
    configs = root / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    (configs / "assets_t.json").write_text(json.dumps(ASSETS))
    (configs / "directives_n_t.json").write_text(json.dumps({"directives": list(directives)}))
    return configs


def changed_stage_2(d: dict, change: str) -> dict:
    d = json.loads(json.dumps(d))
    r = d["rules"][1]
    if change == "occurrence":
        r["occurrence"] = r["occurrence"] + 1
    elif r["type"] == "PluginRule":
        r["plugin_sid"] = [77]
    else:
        r["product"] = ["Another product"]
    return d


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_directive(), st.sampled_from(["occurrence", "sids"]))
def test_a_starter_case_passes_and_fails_once_stage_2_changes(tmp_path_factory, d, change):
    root = tmp_path_factory.mktemp("init")
    configs = write_configs(root, d)
    config = load_config(configs)
    try:
        text = starter_case(config.directives[0], config, EngineSettings(), "configs")
    except Unreachable as exc:
        assert exc.reason and 1 <= exc.stage <= len(d["rules"])
        return
    (root / "case.yaml").write_text(text)
    [outcome] = run_cases(load_cases(root / "case.yaml"))
    assert outcome.passed, (text, outcome.failures, outcome.error)
    write_configs(root, changed_stage_2(d, change))
    [outcome] = run_cases(load_cases(root / "case.yaml"))
    assert not outcome.passed, text


@pytest.mark.parametrize(("changes", "stage", "reason"), [
    ({"occurrence": 3, "sticky_different": "SRC_IP", "from": ":1"}, 2,
     "sticky_different SRC_IP needs 3 events with different src_ip values, but from :1 "
     "(stage 1's source) admits only 1"),
    ({"occurrence": 3, "sticky_different": "DST_PORT", "port_to": "22"}, 2,
     "but port_to 22 admits only 1"),
    ({"occurrence": 3, "sticky_different": "PLUGIN_SID", "plugin_sid": [1, 2]}, 2,
     "but plugin_sid [1, 2] admits only 2"),
    ({"from": "10.0.9.9"}, 2, "from 10.0.9.9: every address it admits is whitelisted"),
    ({"to": "!0.0.0.0/0, !::/0"}, 2, "to !0.0.0.0/0, !::/0: it admits no address"),
])
def test_a_stage_no_event_can_reach_is_reported_with_the_reason(tmp_path, changes, stage,
                                                                 reason):
    d = kit.directive(1, [rule(1), rule(2, **{"timeout": 60, **changes})])
    config = load_config(write_configs(tmp_path, d))
    with pytest.raises(Unreachable) as raised:
        starter_case(config.directives[0], config, EngineSettings(), "configs")
    assert raised.value.stage == stage
    assert reason in raised.value.reason


def test_a_starter_case_expects_what_the_engine_produced(tmp_path):
    config = load_config(CONFIGS)
    d2001 = next(d for d in config.directives if d.id == 2001)
    document = yaml.safe_load(starter_case(d2001, config, EngineSettings(), str(CONFIGS)))
    [case] = document["cases"]
    assert [e["id"] for e in case["events"]] == ["s1", "s2-1", "s2-2", "s2-3",
                                                  *(f"s3-{i}" for i in range(1, 7))]
    assert len({e.get("dst_port") for e in case["events"][1:4]}) == 3  # sticky DST_PORT
    assert case["expect"]["alarms"][0]["events"] == {1: ["s1"], 2: ["s2-1", "s2-2", "s2-3"],
                                                     3: ["s3-1..s3-6"]}
    assert case["expect"]["alarms"][0]["state"] == "finished"


# -- the same alarms as replay ------------------------------------------------------------------


def replay_alarms(lines: list[str], tmp_path: Path) -> list[dict]:
    clock = EventClock()
    engine = Engine(load_config(CONFIGS), clock=clock)
    out = Appender(tmp_path)
    out.open()
    asyncio.run(replay(lines, Correlator(engine, FileSink(out), clock=clock),
                       final_sweep=False))
    text = (tmp_path / FILES["alarms"]).read_text()
    return renamed([json.loads(line) for line in text.splitlines()])


def renamed(records: list[dict]) -> list[dict]:
    names: dict[str, str] = {}
    return [{**r, "alarm_id": names.setdefault(r["alarm_id"], f"A{len(names) + 1}")}
            for r in records]


PINGS = kit.ping_events(kit.T0)
POOL = [*PINGS, event("other", kit.T0, "10.0.0.9", "10.0.0.3", plugin_id=1001,
                      plugin_sid=2100384),
        *(event(f"scan-{i}", kit.T0 + 5, "203.0.113.50", "192.168.1.20", plugin_id=1001,
                plugin_sid=2100498, protocol="TCP", dst_port=1000 + i) for i in range(10))]


@settings(max_examples=30, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(range(len(POOL))), st.integers(0, 900)),
                min_size=1, max_size=40))
def test_test_and_replay_give_the_same_alarms(tmp_path, picks):
    events = [{**POOL[i], "event_id": f"e{n}", "timestamp": kit.iso(kit.T0 + t)}
              for n, (i, t) in enumerate(picks)]
    out = tmp_path / f"replay-{abs(hash(tuple(picks)))}"
    out.mkdir()
    expected = replay_alarms([json.dumps(e) for e in events], out)
    path = out / "case.yaml"
    path.write_text(yaml.safe_dump({"configs": str(CONFIGS), "cases": [{
        "name": "random", "events": [
            {**e, "at": e["timestamp"], "id": e["event_id"]} for e in events],
        "expect": {}}]}))
    [case] = load_cases(path)
    from dsiem_sql.authoring.runner import run

    actual = run(case, load_config(CONFIGS))
    assert renamed(actual.alarm_records) == expected


def test_a_suppression_in_a_case_expires_by_the_event_clock(tmp_path):
    text = f"""
configs: {CONFIGS}
directives: [1]
defaults: {{plugin_id: 1001, plugin_sid: 2100384, src_ip: 10.0.0.1}}
cases:
  - name: suppressed
    suppressions: [{{directive: 1, src: 10.0.0.1, until: +60s}}]
    events: [{{at: +0s, id: a}}, {{at: +59s, id: b}}]
    expect: {{backlogs: []}}
  - name: expired
    suppressions: [{{src: 10.0.0.0/8, until: +60s}}]
    events: [{{at: +0s, id: a}}, {{at: +60s, id: b}}]
    expect: {{backlogs: [{{events: {{1: [b]}}}}]}}
  - name: another directive
    suppressions: [{{directive: 2001, src: 10.0.0.1}}]
    events: [{{at: +0s, id: a}}]
    expect: {{backlogs: [{{directive: 1}}]}}
"""
    (tmp_path / "t.yaml").write_text(text)
    assert [o.failures for o in outcomes(tmp_path / "t.yaml")] == [[], [], []]
    (tmp_path / "bad.yaml").write_text(text.replace("src: 10.0.0.1, until", "src: ten, until"))
    with pytest.raises(CaseError, match="suppressions"):
        load_cases(tmp_path / "bad.yaml")


EXTENDED = EXAMPLES / "extensions" / "configs"


@pytest.mark.parametrize(("directive_id", "change"), [
    (9001, {"timeout": 900}),  # the absence stage waits longer
    (9002, {"sticky_different": "DST_PORT"}),  # the starter varies the sources, not ports
    (9003, {"from": ":1.from"}),  # the attacker, not the victim
])
def test_a_starter_case_walks_an_extended_directive_and_fails_once_it_changes(
        tmp_path, directive_id, change):
    configs = tmp_path / "configs"
    shutil.copytree(EXTENDED, configs)
    config = load_config(configs)
    d = next(d for d in config.directives if d.id == directive_id)
    text = starter_case(d, config, EngineSettings(), "configs")
    (tmp_path / "case.yaml").write_text(text)
    [outcome] = run_cases(load_cases(tmp_path / "case.yaml"))
    assert outcome.passed, (text, outcome.failures, outcome.error)
    path = next(configs.glob("directives_*.json"))
    doc = json.loads(path.read_text())
    rules = next(x for x in doc["directives"] if x["id"] == directive_id)["rules"]
    rules[1].update(change)
    path.write_text(json.dumps(doc))
    [outcome] = run_cases(load_cases(tmp_path / "case.yaml"))
    assert not outcome.passed, text

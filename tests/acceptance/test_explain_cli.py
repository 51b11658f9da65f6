"""`dsiem-sql explain --configs DIR --directive ID EVENT` as a directive author runs it (issue
19): for each kind of rule field, whether the event matches and, if not, the first field that
refuses it with both values; whitelisting; the engine options; the JSON form; the errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kit import CONFIGS, EXAMPLES, cli, directive, event, ok, rule

EVENT = event("e1", 1714557600, "192.168.1.5", "8.8.8.8", src_port=4444, dst_port=22,
              protocol="TCP", product="IDS", category="Malware", subcategory="C&C",
              custom_data1="Alice", custom_data3="x")
TAXONOMY = {"type": "TaxonomyRule", "product": ["IDS"], "category": "Malware"}


def configs(tmp_path: Path, stage1: dict[str, Any]) -> Path:
    """Assets (a LAN, a whitelisted scanner) and directive 5: stage 1 under test, then a
    stage 2 whose addresses refer to stage 1."""
    d = tmp_path / "configs"
    d.mkdir()
    (d / "assets_a.json").write_text(json.dumps({"assets": [
        {"name": "lan", "cidr": "192.168.0.0/16", "value": 3},
        {"name": "scanner", "cidr": "172.16.0.9", "value": 1, "whitelisted": True},
    ]}))
    rules = [stage1, rule(2, occurrence=2, timeout=60, **{"from": ":1", "to": ":1"})]
    (d / "directives_n_a.json").write_text(json.dumps({"directives": [
        directive(5, rules, name="Directive under test")]}))
    return d


def explain(configs_dir: Path, data: dict[str, Any], *flags: str,
            env: dict[str, str | None] | None = None) -> dict:
    run = cli("explain", "--configs", configs_dir, "--directive", "5", *flags, "--format", "json",
              json.dumps(data), env=env)
    return json.loads(ok(run).stdout)


CASES = [
    # (stage 1's rule changes, event changes, flags, env, expected reason of stage 1)
    pytest.param({}, {}, [], {}, None, id="plugin-matches"),
    pytest.param({"plugin_id": 1338}, {}, [], {}, "plugin_id: 1337 is not 1338", id="plugin_id"),
    pytest.param({"plugin_sid": [1, 2]}, {"plugin_sid": 7}, [], {},
                 "plugin_sid: 7 not in [1, 2]", id="plugin_sid"),
    pytest.param(TAXONOMY, {}, [], {}, None, id="taxonomy-matches"),
    pytest.param({**TAXONOMY, "product": ["Firewall"]}, {}, [], {},
                 'product: "IDS" not in ["Firewall"]', id="product"),
    pytest.param({**TAXONOMY, "category": "Exploit"}, {}, [], {},
                 'category: "Malware" is not "Exploit"', id="category"),
    pytest.param({**TAXONOMY, "subcategory": ["Botnet", "Worm"]}, {}, [], {},
                 'subcategory: "C&C" not in ["Botnet", "Worm"]', id="subcategory"),
    pytest.param({"from": "ANY"}, {}, [], {}, None, id="from-ANY"),
    pytest.param({"from": "HOME_NET", "to": "HOME_NET"}, {}, [], {},
                 "to: 8.8.8.8 is not in HOME_NET", id="to-HOME_NET"),
    pytest.param({"from": "!HOME_NET"}, {}, [], {},
                 'from: 192.168.1.5 is in HOME_NET (asset "lan" 192.168.0.0/16), and the rule '
                 "says !HOME_NET", id="from-not-HOME_NET"),
    pytest.param({"to": "8.8.4.4"}, {}, [], {}, "to: 8.8.8.8 is not 8.8.4.4", id="to-host"),
    pytest.param({"from": "10.0.0.0/8, !192.168.1.0/24, 192.168.0.0/16"}, {}, [], {},
                 "from: 192.168.1.5 is excluded by !192.168.1.0/24", id="from-cidr-negated"),
    pytest.param({"to": "10.0.0.0/8, 172.16.0.0/12"}, {}, [], {},
                 "to: 8.8.8.8 is not in 10.0.0.0/8, 172.16.0.0/12", id="to-cidr-list"),
    pytest.param({"to": "!10.0.0.0/8"}, {}, [], {}, None, id="to-negated-list-passes"),
    pytest.param({"port_from": "1024, 4443"}, {}, [], {}, "port_from: 4444 not in 1024, 4443",
                 id="port_from-list"),
    pytest.param({"port_to": "!22, 23"}, {}, [], {}, "port_to: 22 is excluded by !22",
                 id="port_to-negated"),
    pytest.param({"protocol": "UDP"}, {}, [], {}, None, id="protocol-off"),
    pytest.param({"protocol": "UDP"}, {}, ["--match-protocol"], {},
                 'protocol: "TCP" is not "UDP"', id="protocol-match-protocol"),
    pytest.param({"protocol": "UDP"}, {}, [], {"DSIEM_MATCH_PROTOCOL": "true"},
                 'protocol: "TCP" is not "UDP"', id="protocol-DSIEM_MATCH_PROTOCOL"),
    pytest.param({"custom_data1": "bob"}, {}, [], {},
                 'custom_data1: "Alice" is not "bob" (case-insensitive)', id="custom_data1"),
    pytest.param({"custom_data2": "!"}, {}, [], {},
                 'custom_data2: "" is excluded by ! (case-insensitive)',
                 id="custom_data2-negated-empty"),
    pytest.param({"custom_data3": "a, b"}, {}, [], {}, 'custom_data3: "x" not in a, b',
                 id="custom_data3-list"),
    pytest.param({**TAXONOMY, "custom_data1": "bob"}, {}, [], {}, None,
                 id="taxonomy-custom-data-off"),
    pytest.param({**TAXONOMY, "custom_data1": "bob"}, {}, ["--taxonomy-custom-data"], {},
                 'custom_data1: "Alice" is not "bob" (case-insensitive)',
                 id="taxonomy-custom-data"),
    pytest.param({**TAXONOMY, "custom_data1": "bob"}, {}, [],
                 {"DSIEM_TAXONOMY_CUSTOM_DATA": "1"},
                 'custom_data1: "Alice" is not "bob" (case-insensitive)',
                 id="taxonomy-custom-data-DSIEM_TAXONOMY_CUSTOM_DATA"),
    pytest.param({}, {"src_ip": "172.16.0.9"}, [], {},
                 'whitelisted by asset "scanner" 172.16.0.9/32: the engine drops events from '
                 "src_ip 172.16.0.9 before any directive", id="whitelisted"),
]


@pytest.mark.parametrize(("stage1", "changes", "flags", "env", "reason"), CASES)
def test_each_kind_of_rule_field(tmp_path, stage1, changes, flags, env, reason):
    d = configs(tmp_path, rule(1, **stage1))
    r = explain(d, {**EVENT, **changes}, *flags, env=env)
    first = r["stages"][0]
    assert (first["matches"], first["reason"]) == (reason is None, reason)
    assert r["opens_backlog"] is (reason is None)
    text = ok(cli("explain", "--configs", d, "--directive", "5", *flags,
                  json.dumps({**EVENT, **changes}), env=env)).stdout
    verdict = "matches" if reason is None else f"no: {reason}"
    assert text.splitlines()[3] == f"stage 1  stage 1  {verdict}"


def test_the_json_form(tmp_path):
    d = configs(tmp_path, rule(1, to="HOME_NET", protocol="TCP"))
    r = explain(d, EVENT)
    assert r["kind"] == "event"
    assert r["directive"] == {"id": 5, "name": "Directive under test", "stages": 2,
                              "all_rules_always_active": False}
    assert r["event"]["event_id"] == "e1" and r["event"]["dst_port"] == 22
    assert r["options"] == {"match_protocol": False, "taxonomy_custom_data": False,
                            "reference_mode": "value"}
    assert r["whitelisted"] is None and r["opens_backlog"] is False
    assert [(s["stage"], s["matches"], s["reason"], s["field"]) for s in r["stages"]] == [
        (1, False, "to: 8.8.8.8 is not in HOME_NET", "to"),
        (2, True, None, None)]
    assert r["stages"][1]["notes"] == [
        "from is :1, stage 1's src_ip: for a lone event, its own: 192.168.1.5",
        "to is :1, stage 1's dst_ip: for a lone event, its own: 8.8.8.8"]
    assert r["stages"][0]["rule"] == (
        "plugin 1337 SID 1; from ANY to HOME_NET; ports ANY -> ANY; protocol TCP (not checked "
        "without --match-protocol); 1 event; reliability 1")
    assert r["summary"] == (
        "stage 1 does not match: this event opens no backlog; a live backlog waiting at "
        "stage 2 would take it (if its references and sticky values allow)")


def test_the_text_form(tmp_path):
    d = configs(tmp_path, rule(1, plugin_sid=[1, 2], protocol="TCP"))
    event_text = json.dumps({**EVENT, "plugin_sid": 2})
    wide = ok(cli("explain", "--configs", d, "--directive", "5", event_text)).stdout
    assert wide.splitlines() == [
        'event e1 (plugin 1337 SID 2, 192.168.1.5:4444 -> 8.8.8.8:22) against directive 5 '
        '"Directive under test"',
        "options    --match-protocol off, --taxonomy-custom-data off, --reference-mode value",
        "",
        "stage 1  stage 1  matches",
        "                  note: protocol TCP is not checked (without --match-protocol)",
        "stage 2  stage 2  no: plugin_sid: 2 not in [1]",
        "                  note: from is :1, stage 1's src_ip: for a lone event, its own: "
        "192.168.1.5",
        "                  note: to is :1, stage 1's dst_ip: for a lone event, its own: 8.8.8.8",
        "",
        "stage 1 matches: this event opens a backlog of directive 5, unless a live backlog of "
        "the directive takes it first or already holds its id",
    ]
    # folded to the terminal's width, continuation lines under their text
    narrow = ok(cli("explain", "--configs", d, "--directive", "5", event_text,
                    env={"COLUMNS": "60"})).stdout.splitlines()
    assert max(map(len, narrow)) <= 60
    assert narrow[:2] == ["event e1 (plugin 1337 SID 2, 192.168.1.5:4444 -> 8.8.8.8:22)",
                          '           against directive 5 "Directive under test"']
    assert "                  note: from is :1, stage 1's src_ip: for a" in narrow
    assert "                        lone event, its own: 192.168.1.5" in narrow


def test_the_event_from_a_file_and_from_stdin(tmp_path):
    d = configs(tmp_path, rule(1))
    path = tmp_path / "event.json"
    path.write_text(json.dumps(EVENT, indent=2))
    by_file = json.loads(ok(cli("explain", "--configs", d, "--directive", "5", "--format", "json",
                                f"@{path}")).stdout)
    by_stdin = json.loads(ok(cli("explain", "--configs", d, "--directive", "5", "--format", "json",
                                 "-", input=json.dumps(EVENT))).stdout)
    assert by_file == by_stdin and by_file["stages"][0]["matches"]


def test_the_examples(tmp_path):
    """The example Port Scan directive takes the example scan events."""
    scan = next(json.loads(line) for line in (EXAMPLES / "events.jsonl").open()
                if json.loads(line)["event_id"] == "scan-01")
    r = json.loads(ok(cli("explain", "--configs", CONFIGS, "--directive", "2001", "--format",
                          "json", json.dumps(scan))).stdout)
    assert [s["matches"] for s in r["stages"]] == [True, True, True]


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--directive", "77", json.dumps(EVENT)],
                 "{configs}: no directive 77 among the 1 enabled directives (5)",
                 id="unknown-directive"),
    pytest.param(["--directive", "5", '{"event_id": "e1", "timestamp": '],
                 "EVENT: cannot parse event: Invalid JSON: EOF while parsing a value at line 1 "
                 "column 31", id="bad-json"),
    pytest.param(["--directive", "5", "[1, 2]"],
                 "EVENT: cannot parse event: Input should be an object", id="not-an-object"),
    pytest.param(["--directive", "5", json.dumps({**EVENT, "dst_port": 70000})],
                 "EVENT: cannot parse event: dst_port: Input should be less than or equal to "
                 "65535", id="bad-port"),
    pytest.param(["--directive", "5", json.dumps({**EVENT, "sensor": ""})],
                 "EVENT: event e1 is not valid: sensor is empty", id="invalid-event"),
    pytest.param(["--directive", "5", "@{tmp}/missing.json"],
                 "{tmp}/missing.json: cannot read the event: No such file or directory",
                 id="missing-file"),
    pytest.param(["--directive", "5", "  "], "EVENT: no event: give a JSON object",
                 id="empty"),
])
def test_errors(tmp_path, args, message):
    d = configs(tmp_path, rule(1))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    run = cli("explain", "--configs", d, *args)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == f"error: {message.format(configs=d, tmp=tmp_path)}\n"


def test_the_form_needs_its_options(tmp_path):
    run = cli("explain", "--directive", "5", json.dumps(EVENT))
    assert (run.returncode, run.stderr) == (1, "error: explain --directive needs --configs DIR\n")
    run = cli("explain", "abc")
    assert run.returncode == 1
    assert run.stderr == ("error: give --db PATH and an alarm id, or --configs DIR "
                          "--directive ID and an event\n")

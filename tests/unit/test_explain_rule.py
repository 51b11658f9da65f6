"""Why a rule matches an event or not (dsiem_sql/engine/explain.py, docs/explain.md): the
explanation always agrees with the engine's `Rule.matches` (a hypothesis property over
random rules and events), and names the first field that refuses, with both values, for
every kind of rule field."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsiem_sql.config.assets import Asset, Assets
from dsiem_sql.config.models import DirectiveConfig, RuleConfig
from dsiem_sql.engine.engine import EngineOptions
from dsiem_sql.engine.event import Event
from dsiem_sql.engine.explain import (
    address_refusal,
    custom_data_refusal,
    describe_rule,
    explain_event,
    explain_rule,
    terms_refusal,
    valued_asset,
)
from dsiem_sql.engine.matching import compile_address, compile_custom_data, compile_terms
from dsiem_sql.engine.rules import Rule


def _asset(name: str, cidr: str, value: int, whitelisted: bool = False) -> Asset:
    return Asset(name, ipaddress.ip_network(cidr), value, whitelisted)


ASSETS = Assets([
    _asset("ten", "10.0.0.0/8", 2),
    _asset("scanner", "172.16.0.9/32", 5, whitelisted=True),
    _asset("lan", "192.168.0.0/16", 3),
    _asset("gateway", "192.168.0.1/32", 4),
])

EVENT: dict[str, Any] = {
    "event_id": "e1", "timestamp": "2024-05-01T10:00:00Z", "sensor": "s",
    "plugin_id": 1001, "plugin_sid": 7, "product": "IDS", "category": "Malware",
    "subcategory": "C&C", "src_ip": "192.168.0.5", "dst_ip": "8.8.8.8", "src_port": 4444,
    "dst_port": 22, "protocol": "TCP", "custom_data1": "Alice", "custom_data2": "",
    "custom_data3": "x",
}
RULE: dict[str, Any] = {
    "name": "r", "stage": 1, "type": "PluginRule", "occurrence": 1, "plugin_id": 1001,
    "plugin_sid": [7], "from": "ANY", "to": "ANY", "port_from": "ANY", "port_to": "ANY",
    "protocol": "ANY", "reliability": 1, "timeout": 0,
}
TAXONOMY: dict[str, Any] = {
    **{k: v for k, v in RULE.items() if k not in ("plugin_id", "plugin_sid")},
    "type": "TaxonomyRule", "product": ["IDS"], "category": "Malware",
}


def make_event(**changes: Any) -> Event:
    return Event.model_validate_json(json.dumps({**EVENT, **changes}))


def make_rule(base: dict[str, Any] = RULE, **changes: Any) -> Rule:
    return Rule.from_config(RuleConfig.model_validate({**base, **changes}))


# -- the property: explain says "matches" exactly when Rule.matches does ----------------------

ADDRESS_ITEMS = ["10.0.0.0/8", "!10.0.0.0/24", "192.168.0.1", "!192.168.0.1", "8.8.8.8",
                 "2002:c0a8:1::/64", "any", "192.168.0.1/24", "!foo", " :1", " 10.0.0.1 ",
                 "!!10.0.0.9", ""]
PORT_ITEMS = ["22", "!22", "80", "!80", "080", "0", " 22", "!4444", "ANY"]
CUSTOM_VALUES = ["", "ANY", "a", "A", "!a", "a,b", "!a,b", "a,!b", ":1", "!", "alice",
                 "x, !y", "A,a"]


def comma_list(items: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(items), min_size=1, max_size=3).map(",".join)


addresses = st.one_of(
    st.just("ANY"),
    st.sampled_from(["HOME_NET", "!HOME_NET", "10.0.0.1", "2002:c0a8:0001::2", ":1", "home_net"]),
    comma_list(ADDRESS_ITEMS))
ports = st.one_of(st.just("ANY"), comma_list(PORT_ITEMS))

rules = st.fixed_dictionaries({
    "type": st.sampled_from(["PluginRule", "TaxonomyRule"]),
    "plugin_id": st.sampled_from([1, 1, 1, 2]),
    "plugin_sid": st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=3),
    "product": st.lists(st.sampled_from(["a", "b", "A"]), min_size=1, max_size=2),
    "category": st.sampled_from(["", "c", "C"]),
    "subcategory": st.lists(st.sampled_from(["x", "y", "ANY"]), max_size=2),
    "from": addresses, "to": addresses, "port_from": ports, "port_to": ports,
    "protocol": st.sampled_from(["", "ANY", "TCP", "tcp", ":1"]),
    "custom_data1": st.sampled_from(CUSTOM_VALUES),
    "custom_data2": st.sampled_from(CUSTOM_VALUES),
    "custom_data3": st.sampled_from(CUSTOM_VALUES),
}).map(lambda changes: make_rule(RULE, **changes))

IPS = ["10.0.0.1", "10.0.0.9", "172.16.0.9", "10.0.0.200", "192.168.0.1", "8.8.8.8",
       "2002:c0a8:1::2"]
events = st.fixed_dictionaries({
    "plugin_id": st.sampled_from([1, 1, 1, 2]),
    "plugin_sid": st.sampled_from([1, 2, 3, 4]),
    "product": st.sampled_from(["", "a", "A", "b"]),
    "category": st.sampled_from(["", "c", "C"]),
    "subcategory": st.sampled_from(["", "x", "y", "ANY"]),
    "src_ip": st.sampled_from(IPS), "dst_ip": st.sampled_from(IPS),
    "src_port": st.sampled_from([0, 22, 80, 4444]),
    "dst_port": st.sampled_from([0, 22, 80, 4444]),
    "protocol": st.sampled_from(["", "TCP", "tcp", "UDP"]),
    "custom_data1": st.sampled_from(["", "a", "A", "b", "a,b", "!a", "Alice"]),
    "custom_data2": st.sampled_from(["", "a", "b", "x"]),
    "custom_data3": st.sampled_from(["", "a", "y", ":1"]),
}).map(lambda changes: make_event(**changes))


@given(addresses, st.sampled_from(IPS))
def test_address_explanation_agrees_with_compile_address(value, ip):
    cond = compile_address(value)
    assert (address_refusal(value, ip, ASSETS) is None) is (cond is None or cond(ip, ASSETS))


TERMS = st.text(alphabet=",! 0128aA:", max_size=12)


@given(st.one_of(ports, TERMS), st.sampled_from(["0", "22", "80", "080", "a", ""]))
def test_terms_explanation_agrees_with_compile_terms(value, term):
    cond = compile_terms(value)
    assert (terms_refusal(value, term, term) is None) is (cond is None or cond(term))


@given(st.one_of(st.sampled_from(CUSTOM_VALUES), TERMS), st.one_of(TERMS, st.sampled_from(
    ["", "a", "A", "Alice", "!a", "a,b"])))
def test_custom_data_explanation_agrees_with_compile_custom_data(value, text):
    cond = compile_custom_data(value)
    assert (custom_data_refusal(value, text) is None) is (cond is None or cond(text))


@settings(max_examples=1500, deadline=None)
@given(rules, events, st.booleans(), st.booleans())
def test_explain_agrees_with_the_engine(rule, event, match_protocol, taxonomy_custom_data):
    got = explain_rule(rule, event, ASSETS, match_protocol, taxonomy_custom_data)
    assert got.matches is rule.matches(event, ASSETS, match_protocol, taxonomy_custom_data)
    if got.matches:
        assert got.field is None and got.reason is None
    else:
        assert got.reason is not None and got.reason.startswith(f"{got.field}: ")


@settings(max_examples=300, deadline=None)
@given(rules, events, st.booleans(), st.booleans())
def test_the_field_named_is_the_one_that_refuses(rule, event, match_protocol, taxonomy):
    """Making the named field take anything makes the refusal move on to a later field (or
    the rule match): the field named is one the engine does check, in its order."""
    got = explain_rule(rule, event, ASSETS, match_protocol, taxonomy)
    if got.matches or got.field not in ("from", "to", "port_from", "port_to", "custom_data1",
                                        "custom_data2", "custom_data3", "protocol"):
        return
    attr = "from_" if got.field == "from" else got.field
    assert got.field is not None
    opened = rule.replace(**{attr: "ANY"})
    again = explain_rule(opened, event, ASSETS, match_protocol, taxonomy)
    order = ["protocol", "from", "to", "port_from", "port_to", "custom_data1",
             "custom_data2", "custom_data3"]
    assert again.matches or order.index(again.field) > order.index(got.field)


# -- every kind of field, with its reason -------------------------------------------------------

REASONS = [
    # (rule base, rule changes, event changes, options, expected reason or None)
    pytest.param(RULE, {}, {}, {}, None, id="plugin-matches"),
    pytest.param(RULE, {"plugin_id": 1002}, {}, {}, "plugin_id: 1001 is not 1002",
                 id="plugin_id"),
    pytest.param(RULE, {"plugin_sid": [1, 2]}, {}, {}, "plugin_sid: 7 not in [1, 2]",
                 id="plugin_sid"),
    pytest.param(TAXONOMY, {}, {}, {}, None, id="taxonomy-matches"),
    pytest.param(TAXONOMY, {"category": "Exploit"}, {}, {},
                 'category: "Malware" is not "Exploit"', id="category"),
    pytest.param(TAXONOMY, {"product": ["Firewall", "AV"]}, {}, {},
                 'product: "IDS" not in ["Firewall", "AV"]', id="product"),
    pytest.param(TAXONOMY, {"subcategory": ["Botnet"]}, {}, {},
                 'subcategory: "C&C" not in ["Botnet"]', id="subcategory"),
    pytest.param(TAXONOMY, {"subcategory": ["Botnet", "ANY"]}, {}, {}, None,
                 id="subcategory-ANY"),
    pytest.param(RULE, {"protocol": "UDP"}, {}, {}, None, id="protocol-not-checked"),
    pytest.param(RULE, {"protocol": "UDP"}, {}, {"match_protocol": True},
                 'protocol: "TCP" is not "UDP"', id="protocol-match-protocol"),
    pytest.param(RULE, {"from": "HOME_NET"}, {"src_ip": "8.8.4.4"}, {},
                 "from: 8.8.4.4 is not in HOME_NET", id="from-HOME_NET"),
    pytest.param(RULE, {"to": "HOME_NET"}, {}, {},
                 "to: 8.8.8.8 is not in HOME_NET", id="to-HOME_NET"),
    pytest.param(RULE, {"to": "HOME_NET"}, {"dst_ip": "172.16.0.9"}, {},
                 'to: 172.16.0.9 is not in HOME_NET (its asset "scanner" 172.16.0.9/32 is '
                 "whitelisted, and whitelisted assets are not HOME_NET)",
                 id="to-HOME_NET-whitelisted"),
    pytest.param(RULE, {"from": "!HOME_NET"}, {}, {},
                 'from: 192.168.0.5 is in HOME_NET (asset "lan" 192.168.0.0/16), and the rule '
                 "says !HOME_NET", id="from-not-HOME_NET"),
    pytest.param(RULE, {"from": "!HOME_NET"}, {"src_ip": "1.1.1.1"}, {}, None,
                 id="from-not-HOME_NET-outside"),
    pytest.param(RULE, {"to": "8.8.4.4"}, {}, {}, "to: 8.8.8.8 is not 8.8.4.4", id="to-host"),
    pytest.param(RULE, {"to": "2002:c0a8:0001::1"}, {"dst_ip": "2002:c0a8:1::1"}, {}, None,
                 id="to-host-ipv6-canonical"),
    pytest.param(RULE, {"from": "10.0.0.0/8, 172.16.0.0/12"}, {}, {},
                 "from: 192.168.0.5 is not in 10.0.0.0/8, 172.16.0.0/12", id="from-cidr-list"),
    pytest.param(RULE, {"from": "192.168.0.0/16, !192.168.0.0/24"}, {}, {}, None,
                 id="from-cidr-list-first-decides"),
    pytest.param(RULE, {"from": "!192.168.0.0/24, 192.168.0.0/16"}, {}, {},
                 "from: 192.168.0.5 is excluded by !192.168.0.0/24", id="from-cidr-negated"),
    pytest.param(RULE, {"from": "!10.0.0.0/8"}, {}, {}, None, id="from-negated-elsewhere"),
    pytest.param(RULE, {"from": "192.168.0.1/24, any"}, {}, {},
                 'from: 192.168.0.5 is not in 192.168.0.1/24, any ("192.168.0.1/24", "any" '
                 "do not parse and match nothing)", id="from-items-that-do-not-parse"),
    pytest.param(RULE, {"port_from": "1024, 4443"}, {}, {},
                 "port_from: 4444 not in 1024, 4443", id="port_from-list"),
    pytest.param(RULE, {"port_to": "!22"}, {}, {}, "port_to: 22 is excluded by !22",
                 id="port_to-negated"),
    pytest.param(RULE, {"port_to": "!23, 80"}, {}, {}, None, id="port_to-negation-passes"),
    pytest.param(RULE, {"port_to": "022"}, {}, {}, "port_to: 22 not in 022",
                 id="port_to-text-compare"),
    pytest.param(RULE, {"custom_data1": "alice"}, {}, {}, None,
                 id="custom_data1-case-insensitive"),
    pytest.param(RULE, {"custom_data1": "bob"}, {}, {},
                 'custom_data1: "Alice" is not "bob" (case-insensitive)', id="custom_data1"),
    pytest.param(RULE, {"custom_data1": "!alice"}, {}, {},
                 'custom_data1: "Alice" is excluded by !alice (case-insensitive)',
                 id="custom_data1-negated"),
    pytest.param(RULE, {"custom_data2": "x"}, {}, {},
                 'custom_data2: "" is not "x" (case-insensitive)', id="custom_data2-empty"),
    pytest.param(RULE, {"custom_data3": "a, b"}, {}, {},
                 'custom_data3: "x" not in a, b', id="custom_data3-list"),
    pytest.param(RULE, {"custom_data3": "!x, b"}, {}, {},
                 'custom_data3: "x" is excluded by !x', id="custom_data3-list-negated"),
    pytest.param(TAXONOMY, {"custom_data1": "bob"}, {}, {}, None,
                 id="taxonomy-custom-data-not-checked"),
    pytest.param(TAXONOMY, {"custom_data1": "bob"}, {}, {"taxonomy_custom_data": True},
                 'custom_data1: "Alice" is not "bob" (case-insensitive)',
                 id="taxonomy-custom-data-checked"),
    pytest.param(RULE, {"plugin_sid": [1], "to": "HOME_NET"}, {}, {},
                 "plugin_sid: 7 not in [1]", id="first-field-in-engine-order"),
]


@pytest.mark.parametrize(("base", "rule_changes", "event_changes", "options", "reason"),
                         REASONS)
def test_the_reason_names_the_field_and_both_values(base, rule_changes, event_changes,
                                                     options, reason):
    rule, event = make_rule(base, **rule_changes), make_event(**event_changes)
    got = explain_rule(rule, event, ASSETS, **options)
    assert got.reason == reason
    assert got.matches is (reason is None) is rule.matches(event, ASSETS, **options)


def test_fields_left_unchecked_are_noted():
    got = explain_rule(make_rule(TAXONOMY, protocol="UDP", custom_data2="y"), make_event(),
                       ASSETS)
    assert got.matches
    assert got.notes == (
        "protocol UDP is not checked (without --match-protocol)",
        "custom_data2 is not checked on a TaxonomyRule (without --taxonomy-custom-data)",
    )


# -- a directive's stages, for one event ------------------------------------------------------


def directive(*rules: dict[str, Any], **changes: Any) -> DirectiveConfig:
    return DirectiveConfig.model_validate({
        "id": 9, "name": "d", "priority": 3, "kingdom": "k", "category": "c",
        "rules": list(rules), **changes})


def test_references_stand_for_the_events_own_values():
    d = directive({**RULE, "to": "HOME_NET"},
                  {**RULE, "stage": 2, "from": ":1", "port_to": ":1", "custom_data1": ":1"})
    whitelisted, stages = explain_event(d, make_event(dst_ip="10.0.0.1"), ASSETS,
                                        EngineOptions())
    assert whitelisted is None
    assert [s.match.matches for s in stages] == [True, True]
    assert stages[1].match.notes == (
        "from is :1, stage 1's src_ip: for a lone event, its own: 192.168.0.5",
        "port_to is :1, stage 1's dst_port: for a lone event, its own: 22",
        'custom_data1 is :1, stage 1\'s custom_data1: for a lone event, its own: "Alice"',
    )


def test_rule_mode_copies_the_referred_rule_as_go_dsiem():
    d = directive({**RULE, "to": "10.0.0.0/8"}, {**RULE, "stage": 2, "to": ":1"})
    options = EngineOptions(reference_mode="rule")
    _, stages = explain_event(d, make_event(), ASSETS, options)
    assert stages[1].match.reason == "to: 8.8.8.8 is not in 10.0.0.0/8"
    assert stages[1].match.notes == (
        "to is :1: 10.0.0.0/8 when this event opens the backlog (--reference-mode rule "
        "copies rule 1's to)",)
    _, value_mode = explain_event(d, make_event(), ASSETS, EngineOptions())
    assert value_mode[1].match.matches


def test_a_whitelisted_source_matches_no_stage():
    d = directive(RULE, {**RULE, "stage": 2})
    whitelisted, stages = explain_event(d, make_event(src_ip="172.16.0.9"), ASSETS,
                                        EngineOptions())
    assert whitelisted is not None and whitelisted.name == "scanner"
    assert {s.match.reason for s in stages} == {
        'whitelisted by asset "scanner" 172.16.0.9/32: the engine drops events from src_ip '
        "172.16.0.9 before any directive"}
    assert not any(s.match.matches for s in stages)


def test_a_rule_in_words():
    assert describe_rule(make_rule(RULE, plugin_sid=[1, 2], to="HOME_NET", port_to="22",
                                   protocol="TCP", custom_data1="bob")) == (
        'plugin 1001 SIDs 1, 2; from ANY to HOME_NET; ports ANY -> 22; protocol TCP; '
        'custom_data1 "bob"; 1 event; reliability 1')
    assert describe_rule(make_rule(TAXONOMY, stage=2, occurrence=5, timeout=600,
                                   subcategory=["C&C", "Botnet"],
                                   sticky_different="DST_PORT")) == (
        'product "IDS", category "Malware", subcategory "C&C" or "Botnet"; from ANY to ANY; '
        "ports ANY -> ANY; 5 events within 600 s, each with a different DST_PORT; "
        "reliability 1")


def test_the_asset_that_gives_an_address_its_value():
    assert valued_asset(ASSETS, "192.168.0.1").name == "gateway"  # 4 beats lan's 3
    assert valued_asset(ASSETS, "172.16.0.9").name == "scanner"  # whitelisted ones count
    assert valued_asset(ASSETS, "8.8.8.8") is None


def test_a_rule_in_words_says_what_the_options_leave_unchecked():
    rule = make_rule(TAXONOMY, protocol="TCP", custom_data1="deny")
    assert describe_rule(rule, counts=False, options=EngineOptions()) == (
        'product "IDS", category "Malware"; from ANY to ANY; ports ANY -> ANY; protocol TCP '
        '(not checked without --match-protocol); custom_data1 "deny" (not checked on a '
        "TaxonomyRule without --taxonomy-custom-data)")
    both = EngineOptions(match_protocol=True, taxonomy_custom_data=True)
    assert describe_rule(rule, counts=False, options=both) == (
        'product "IDS", category "Malware"; from ANY to ANY; ports ANY -> ANY; protocol TCP; '
        'custom_data1 "deny"')

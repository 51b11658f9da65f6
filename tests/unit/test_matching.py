"""Rule matching (docs/behaviour.md, from "Address lists" to "Sticky values"), with the test
vectors of the Dsiem backends; test ids start with the number of the table they were first
gathered in, and name their source (`rust`, `G`) or say `derived` when they follow from the
rules.

Expected values are dsiem-sql's: strict CIDRs, invalid list items skipped, a bare address gets
/32 or /128 from its own family, protocol ignored unless `match_protocol`, custom data of a
TaxonomyRule ignored unless `taxonomy_custom_data`.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from dsiem_sql.config.assets import Asset, Assets
from dsiem_sql.config.loader import Config
from dsiem_sql.config.models import RuleConfig
from dsiem_sql.engine.engine import Engine
from dsiem_sql.engine.event import Event
from dsiem_sql.engine.matching import (
    compile_address,
    compile_custom_data,
    compile_terms,
)
from dsiem_sql.engine.rules import STICKY_VALUE, Rule
from dsiem_sql.engine.state import Stage

NO_ASSETS = Assets([])


def _asset(name: str, cidr: str, value: int, whitelisted: bool = False) -> Asset:
    return Asset(name, ipaddress.ip_network(cidr), value, whitelisted)


# the assets of dsiem-backend's `test_rule`
ASSETS_1404 = Assets(
    [
        _asset("Firewall", "192.168.0.1/32", 5),
        _asset("VulnerabilityScanner", "192.168.0.2/32", 5, whitelisted=True),
        _asset("192-168-Net", "192.168.0.0/16", 2),
        _asset("10-Net", "10.0.0.0/8", 2),
        _asset("172-16-Net", "172.16.0.0/12", 2),
    ]
)

# base event e1 of `test_rule`
E1: dict[str, Any] = {
    "event_id": "e1",
    "timestamp": "2023-01-01T00:00:00Z",
    "title": "e1",
    "sensor": "sensor",
    "plugin_id": 1001,
    "plugin_sid": 50001,
    "product": "IDS",
    "category": "Malware",
    "subcategory": "C&C Communication",
    "src_ip": "192.168.0.1",
    "src_port": 31337,
    "dst_ip": "8.8.8.200",
    "dst_port": 80,
    "protocol": "UDP",
}

# base rule r1 of `test_rule`
R1: dict[str, Any] = {
    "name": "r1",
    "stage": 1,
    "type": "PluginRule",
    "occurrence": 1,
    "plugin_id": 1001,
    "plugin_sid": [50001],
    "product": ["IDS"],
    "category": "Malware",
    "subcategory": ["C&C Communication"],
    "from": "HOME_NET",
    "to": "ANY",
    "port_from": "ANY",
    "port_to": "ANY",
    "protocol": "ANY",
    "reliability": 1,
    "timeout": 0,
}


def make_event(**changes: Any) -> Event:
    """e1 with `changes`, decoded like a received event (addresses canonicalised)."""
    return Event.model_validate_json(json.dumps({**E1, **changes}))


def make_rule(**changes: Any) -> Rule:
    """r1 with `changes`; use the key `from` through `**{"from": ...}`."""
    return Rule.from_config(RuleConfig.model_validate({**R1, **changes}))


# --------------------------------------------------------------------------------------------
# address list matching (docs/behaviour.md, "Address lists")
# --------------------------------------------------------------------------------------------

ADDRESS_ROWS = [
    # dsiem-backend's `test_netaddr_in_csv` (the same in dsiem-rs); event IP 192.168.0.1
    pytest.param("192.168.0.1", "192.168.0.0/16", True, id="14.1-rust-1"),
    pytest.param("192.168.0.1", "192.168.0.1", True, id="14.1-rust-2"),
    pytest.param("192.168.0.1", "192.168.0.1/32", True, id="14.1-rust-3"),
    pytest.param("192.168.0.1", "192.168.0.1/24", False, id="14.1-rust-4-invalid-cidr-skipped"),
    pytest.param("192.168.0.1", "!10.0.0.0/16", True, id="14.1-rust-5"),
    pytest.param("192.168.0.1", "!10.0.0.0/16, 192.168.0.0/24", True, id="14.1-rust-6"),
    pytest.param("192.168.0.1", "!192.168.0.0/24", False, id="14.1-rust-7"),
    pytest.param("192.168.0.1", "10.0.0.0/16, !192.168.0.0/16", False, id="14.1-rust-8"),
    pytest.param(
        "192.168.0.1",
        "10.0.0.0/16, !192.168.0.0/16, 192.168.0.0/16",
        False,
        id="14.1-rust-9",
    ),
    # Go Dsiem's `TestNetAddrInCSV`, with OUR expected value. Go masks host bits leniently and
    # fails the whole list on an unparsable item; we skip invalid items (strict CIDR). Rows
    # whose outcome is the same in both are plain; the two rows whose outcome differs carry our
    # value and say so in the id.
    pytest.param("192.168.0", "192.168.0.0/16", False, id="14.1-G-1-event-ip-unparsable"),
    pytest.param("192.168.0.1", "192.168.0/16", False, id="14.1-G-2-item-unparsable"),
    pytest.param("192.168.0.1", "192.168.0.0/16", True, id="14.1-G-3"),
    # Go: true (10.0.0.1/16 masked to 10.0.0.0/16). Ours: invalid item skipped -> no item.
    pytest.param("192.168.0.1", "!10.0.0.1/16", False, id="14.1-G-4-ours-differs-from-G"),
    pytest.param("192.168.0.1", "!10.0.0.1/16, 192.168.0.0/24", True, id="14.1-G-5"),
    # Go: false because masked 192.168.0.0/16 contains the ip; ours: skipped -> no item.
    pytest.param("192.168.0.1", "!192.168.0.1/16", False, id="14.1-G-6"),
    pytest.param("192.168.0.1", "10.0.0.0/16, !192.168.0.1/16", False, id="14.1-G-7"),
    # Go: false (the masked negation decides first). Ours: the negation is skipped, the
    # third item contains the ip.
    pytest.param(
        "192.168.0.1",
        "10.0.0.0/16, !192.168.0.1/16, 192.168.0.0/16",
        True,
        id="14.1-G-8-ours-differs-from-G",
    ),
    # derived rows, dsiem-sql's values
    pytest.param("8.8.8.8", "!10.0.0.0/16, 1.2.3.4", True, id="14.1-derived-negation-satisfied"),
    pytest.param("2002:c0a8:1::2", "2002:c0a8:1::2", True, id="14.1-derived-bare-ipv6"),
    pytest.param("2002:c0a8:1::2", "2002:c0a8:1::/64", True, id="14.1-derived-ipv6-cidr"),
    pytest.param("192.168.0.1", "any", False, id="14.1-derived-lowercase-any"),
    # further consequences of the suffix taken from the item's own family
    pytest.param(
        "2002:c0a8:1::2", "10.0.0.0/8, 2002:c0a8:1::2", True, id="4.3-bare-ipv6-inside-list"
    ),
    pytest.param("2002:c0a8:1::2", "!2002:c0a8:1::2", False, id="4.3-negated-bare-ipv6"),
    pytest.param("2002:c0a8:1::3", "!2002:c0a8:1::2", True, id="4.3-negated-bare-ipv6-other"),
    pytest.param("2002:c0a8:1::2", "2002:c0a8:0001::2", True, id="4.3-bare-ipv6-non-canonical"),
    pytest.param("192.168.0.1", "2002:c0a8:1::/64", False, id="4.3-ipv6-net-vs-ipv4-event"),
    pytest.param("2002:c0a8:1::2", "192.168.0.1", False, id="4.3-bare-ipv4-vs-ipv6-event"),
    pytest.param("192.168.0.1", "10.0.0.0/8,, 192.168.0.1", True, id="4.3-empty-item-skipped"),
    pytest.param("192.168.0.1", "!!10.0.0.0/8", True, id="4.3-every-bang-removed"),
]


@pytest.mark.parametrize(("ip", "value", "expected"), ADDRESS_ROWS)
def test_address_list(ip: str, value: str, expected: bool) -> None:
    cond = compile_address(value)
    assert cond is not None
    assert cond(ip, NO_ASSETS) is expected


HOME_ASSETS = Assets(
    [
        _asset("lan", "192.168.0.0/16", 2),
        _asset("scanner", "10.0.0.2/32", 5, whitelisted=True),
    ]
)


@pytest.mark.parametrize(
    ("ip", "value", "expected"),
    [
        pytest.param("192.168.0.1", "HOME_NET", True, id="4.3-HOME_NET-inside"),
        pytest.param("8.8.8.8", "HOME_NET", False, id="4.3-HOME_NET-outside"),
        pytest.param("10.0.0.2", "HOME_NET", False, id="4.3-HOME_NET-whitelisted-excluded"),
        pytest.param("192.168.0.1", "!HOME_NET", False, id="4.3-not-HOME_NET-inside"),
        pytest.param("8.8.8.8", "!HOME_NET", True, id="4.3-not-HOME_NET-outside"),
        pytest.param("10.0.0.2", "!HOME_NET", True, id="4.3-not-HOME_NET-whitelisted"),
        pytest.param("192.168.0.1", "home_net", False, id="4.3-lowercase-home_net-is-item"),
    ],
)
def test_address_keywords(ip: str, value: str, expected: bool) -> None:
    cond = compile_address(value)
    assert cond is not None
    assert cond(ip, HOME_ASSETS) is expected


def test_address_any_always_passes() -> None:
    assert compile_address("ANY") is None


# --------------------------------------------------------------------------------------------
# term list matching (docs/behaviour.md, "Ports"): `test_term_in_csv` / `TestTermInCSV`
# --------------------------------------------------------------------------------------------

TERM_ROWS = [
    pytest.param("1231", "1000, 1001", False, id="14.2-1"),
    pytest.param("1231", "!1231, 1001", False, id="14.2-2"),
    pytest.param("1231", "1000, !1231", False, id="14.2-3"),
    pytest.param("1231", "1231, !1231", True, id="14.2-4"),
    pytest.param("1231", "!1231, 1231", False, id="14.2-5"),
    pytest.param("1231", "!1000, !1001", True, id="14.2-6"),
    pytest.param("1231", "!1000, 1001", True, id="14.2-7"),
    pytest.param("1231", "1001, !1000", True, id="14.2-8"),
    pytest.param("1231", "!1000, 1231", True, id="14.2-9"),
    pytest.param("foo", "!bar, foobar, foo", True, id="14.2-10"),
    # string comparison, so "080" does not match port 80
    pytest.param("80", "080", False, id="4.4-leading-zero-no-match"),
    pytest.param("80", "80", True, id="4.4-single-port"),
]


@pytest.mark.parametrize(("term", "value", "expected"), TERM_ROWS)
def test_compiled_terms(term: str, value: str, expected: bool) -> None:
    cond = compile_terms(value)
    assert cond is not None
    assert cond(term) is expected


def test_port_any_always_passes() -> None:
    assert compile_terms("ANY") is None


@pytest.mark.parametrize(
    ("rule_changes", "expected"),
    [
        pytest.param({"port_from": "31337"}, True, id="4.4-port_from-hit"),
        pytest.param({"port_from": "1000, 31337"}, True, id="4.4-port_from-list-hit"),
        pytest.param({"port_from": "!31337"}, False, id="4.4-port_from-negated"),
        pytest.param({"port_to": "80"}, True, id="4.4-port_to-hit"),
        pytest.param({"port_to": "!443"}, True, id="4.4-port_to-negated-other"),
        pytest.param({"port_to": "8080"}, False, id="4.4-port_to-miss"),
    ],
)
def test_port_conditions_in_rule(rule_changes: dict[str, Any], expected: bool) -> None:
    assert make_rule(**rule_changes).matches(make_event(), ASSETS_1404) is expected


# --------------------------------------------------------------------------------------------
# custom data matching (docs/behaviour.md, "Custom data"): `test_custom_data_match` /
# `TestCustomDataMatch`
# --------------------------------------------------------------------------------------------

CUSTOM_DATA_ROWS = [
    pytest.param("Network Command Shell", "Network Command Shell", True, id="14.3-1"),
    pytest.param("Network Command Shell", "Network Command Login", False, id="14.3-2"),
    pytest.param("!Network Command Shell", "Network Command Shell", False, id="14.3-3"),
    pytest.param("!Network Command Shell", "Network Command Login", True, id="14.3-4"),
    pytest.param("foo,bar,qux", "foo", True, id="14.3-5"),
    pytest.param("foo,bar,qux", "bar", True, id="14.3-6"),
    pytest.param("foo,bar,qux", "qux", True, id="14.3-7"),
    pytest.param("foo,bar,qux", "baz", False, id="14.3-8"),
    pytest.param("foo,!bar,qux", "bar", False, id="14.3-9"),
    pytest.param("foo,bar,!qux", "qux", False, id="14.3-10"),
    pytest.param("!foo,bar,qux", "foo", False, id="14.3-11"),
    pytest.param("!foo, foo, bar, qux", "foo", False, id="14.3-12"),
    pytest.param("foo, !foo, bar, qux", "foo", True, id="14.3-13"),
    # Derived
    pytest.param("DENY", "deny", True, id="14.3-derived-case-insensitive"),
    pytest.param("DENY,x", "deny", False, id="14.3-derived-comma-list-case-sensitive"),
    # consequences: empty event value fails a concrete value, passes a negated one;
    # no trimming (Rust compat)
    pytest.param("deny", "", False, id="4.6-empty-event-concrete-rule"),
    pytest.param("!deny", "", True, id="4.6-empty-event-negated-rule"),
    pytest.param("deny", " deny", False, id="4.6-no-trimming"),
    pytest.param("!DENY", "deny", False, id="4.6-negation-case-insensitive"),
]


@pytest.mark.parametrize(("rule_value", "event_value", "expected"), CUSTOM_DATA_ROWS)
def test_custom_data_rule(rule_value: str, event_value: str, expected: bool) -> None:
    # rule: PluginRule 1001/[50001], all addresses and ports ANY; event 1001/50001,
    # 192.168.0.1:31337 -> 8.8.8.200:80; empty asset list
    rule = make_rule(**{"from": "ANY"}, custom_data1=rule_value)
    event = make_event(custom_data1=event_value)
    assert rule.matches(event, NO_ASSETS) is expected


@pytest.mark.parametrize(("rule_value", "event_value", "expected"), CUSTOM_DATA_ROWS)
def test_compiled_custom_data(rule_value: str, event_value: str, expected: bool) -> None:
    cond = compile_custom_data(rule_value)
    assert cond is not None
    assert cond(event_value) is expected


@pytest.mark.parametrize("value", ["", "ANY"])
def test_custom_data_empty_and_any_always_pass(value: str) -> None:
    assert compile_custom_data(value) is None


# --------------------------------------------------------------------------------------------
# rule matching: dsiem-backend's `test_rule` (the same in dsiem-rs, and Go Dsiem's `TestRule`)
# --------------------------------------------------------------------------------------------

RULE_CASES = [
    pytest.param({}, {}, True, id="14.4-case-1"),
    pytest.param({}, {"plugin_sid": [50002]}, False, id="14.4-case-2"),
    pytest.param({}, {"type": "TaxonomyRule"}, True, id="14.4-case-3"),
    pytest.param({}, {"type": "TaxonomyRule", "category": "Scanning"}, False, id="14.4-case-4"),
    pytest.param({}, {"plugin_id": 1002}, False, id="14.4-case-5"),
    pytest.param({}, {"type": "TaxonomyRule", "product": ["Firewall"]}, False, id="14.4-case-6"),
    pytest.param({}, {"type": "TaxonomyRule", "subcategory": []}, True, id="14.4-case-7"),
    pytest.param(
        {},
        {"type": "TaxonomyRule", "subcategory": ["Firewall Allow"]},
        False,
        id="14.4-case-8",
    ),
    # case 9 (Go Dsiem only, rule type "Unknown"): not ours, such a rule cannot be loaded
    # (RuleConfig.type is a Literal), so there is nothing to match.
    pytest.param(
        {"src_ip": "8.8.8.200", "src_port": 80, "dst_ip": "192.168.0.1", "dst_port": 31337},
        {},
        False,
        id="14.4-case-10-src-dst-swapped",
    ),
    pytest.param({}, {"from": "!HOME_NET"}, False, id="14.4-case-11"),
    pytest.param({}, {"from": "192.168.0.10"}, False, id="14.4-case-12"),
    pytest.param({}, {"to": "HOME_NET"}, False, id="14.4-case-13"),
    pytest.param({"dst_ip": "192.168.0.1"}, {"to": "!HOME_NET"}, False, id="14.4-case-14"),
    pytest.param({}, {"to": "192.168.0.10"}, False, id="14.4-case-15"),
    pytest.param({}, {"port_from": "1337"}, False, id="14.4-case-16"),
    pytest.param({}, {"port_to": "1337"}, False, id="14.4-case-17"),
    # subcategory additions
    pytest.param(
        {"subcategory": "Other"},
        {"type": "TaxonomyRule", "subcategory": ["Firewall Allow", "ANY"]},
        True,
        id="4.7-subcategory-ANY-entry",
    ),
    pytest.param(
        {"subcategory": "Other"},
        {"type": "TaxonomyRule", "subcategory": ["Firewall Allow", "Other"]},
        True,
        id="4.7-subcategory-second-entry",
    ),
    pytest.param(
        {"subcategory": "c&c communication"},
        {"type": "TaxonomyRule"},
        False,
        id="4.7-subcategory-case-sensitive",
    ),
    pytest.param({"category": "malware"}, {"type": "TaxonomyRule"}, False, id="4.2-category-exact"),
    pytest.param(
        {"product": "Other"},
        {"type": "TaxonomyRule", "product": ["Firewall", "Other"]},
        True,
        id="4.2-product-in-list",
    ),
    pytest.param(
        {"product": "", "category": ""},
        {},
        True,
        id="4.2-plugin-rule-ignores-taxonomy",
    ),
    pytest.param(
        {"plugin_id": 0, "plugin_sid": 0},
        {"type": "TaxonomyRule"},
        True,
        id="4.2-taxonomy-rule-ignores-plugin",
    ),
    pytest.param({"plugin_sid": 50003}, {"plugin_sid": [50002, 50003]}, True, id="4.2-sid-in-list"),
]


@pytest.mark.parametrize(("event_changes", "rule_changes", "expected"), RULE_CASES)
def test_rule_matching(
    event_changes: dict[str, Any], rule_changes: dict[str, Any], expected: bool
) -> None:
    rule = make_rule(**rule_changes)
    event = make_event(**event_changes)
    assert rule.matches(event, ASSETS_1404) is expected


# Custom data sequence 51–59: rule and event changes accumulate row by row.
CD_SEQUENCE = [
    # case, rule (cd1, cd2, cd3), event (cd1, cd2, cd3), expected
    (51, ("deny", "", ""), ("", "", ""), False),
    (52, ("deny", "", ""), ("deny", "", ""), True),
    (53, ("deny", "malware", ""), ("deny", "", ""), False),
    (54, ("deny", "malware", ""), ("deny", "malware", ""), True),
    (55, ("deny", "malware", ""), ("deny", "exploit", ""), False),
    (56, ("deny", "malware", "7000"), ("deny", "exploit", ""), False),
    (57, ("deny", "malware", "7000"), ("deny", "exploit", "7000"), False),
    (58, ("deny", "malware", "7000"), ("deny", "malware", "7000"), True),
    (59, ("deny", "!malware", "7000"), ("deny", "malware", "7000"), False),
]


def _cd(values: tuple[str, str, str]) -> dict[str, str]:
    return {f"custom_data{n}": v for n, v in enumerate(values, start=1)}


@pytest.mark.parametrize(
    ("rule_cd", "event_cd", "expected"),
    [pytest.param(r, e, x, id=f"14.4-case-{c}") for c, r, e, x in CD_SEQUENCE],
)
def test_custom_data_sequence(
    rule_cd: tuple[str, str, str], event_cd: tuple[str, str, str], expected: bool
) -> None:
    rule = make_rule(**_cd(rule_cd))
    event = make_event(**_cd(event_cd))
    assert rule.matches(event, ASSETS_1404) is expected


EANY1 = {"custom_data1": "foo", "custom_data2": "bar", "custom_data3": "qux"}
EANY2 = {"custom_data1": "", "custom_data2": "", "custom_data3": ""}

ANY_TABLE = [
    # field, value, eany1, eany2, case numbers
    ("custom_data1", "ANY", True, True, (113, 125)),
    ("custom_data1", "", True, True, (114, 126)),
    ("custom_data1", "quas", False, False, (115, 127)),
    ("custom_data1", "foo", True, False, (116, 128)),
    ("custom_data2", "ANY", True, True, (117, 129)),
    ("custom_data2", "", True, True, (118, 130)),
    ("custom_data2", "quas", False, False, (119, 131)),
    ("custom_data2", "bar", True, False, (120, 132)),
    ("custom_data3", "ANY", True, True, (121, 133)),
    ("custom_data3", "", True, True, (122, 134)),
    ("custom_data3", "quas", False, False, (123, 135)),
    ("custom_data3", "qux", True, False, (124, 136)),
]

ANY_ROWS = [
    row
    for field, value, x1, x2, (c1, c2) in ANY_TABLE
    for row in (
        pytest.param(field, value, EANY1, x1, id=f"14.4-case-{c1}-eany1"),
        pytest.param(field, value, EANY2, x2, id=f"14.4-case-{c2}-eany2"),
    )
]


@pytest.mark.parametrize(("field", "value", "event_cd", "expected"), ANY_ROWS)
def test_custom_data_any(field: str, value: str, event_cd: dict[str, str], expected: bool) -> None:
    rule = make_rule(**{field: value})
    assert rule.matches(make_event(**event_cd), ASSETS_1404) is expected


# --------------------------------------------------------------------------------------------
# protocol and custom data on TaxonomyRule: off by default, opt-in switches (docs/behaviour.md,
# "Protocol", "TaxonomyRules")
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_protocol", "event_protocol", "match_protocol", "expected"),
    [
        pytest.param("TCP/IP", "TCP", False, True, id="4.5-default-ignored-dpluger-value"),
        pytest.param("TCP", "UDP", False, True, id="4.5-default-ignored-mismatch"),
        pytest.param("TCP", "TCP", True, True, id="4.5-switch-equal"),
        pytest.param("TCP", "UDP", True, False, id="4.5-switch-different"),
        pytest.param("TCP", "tcp", True, False, id="4.5-switch-case-sensitive"),
        pytest.param("TCP/IP", "TCP", True, False, id="4.5-switch-dpluger-value"),
        pytest.param("TCP", "", True, False, id="4.5-switch-empty-event-protocol"),
        pytest.param("ANY", "UDP", True, True, id="4.5-switch-ANY-passes"),
        pytest.param("", "UDP", True, True, id="4.5-switch-empty-passes"),
    ],
)
def test_protocol(
    rule_protocol: str, event_protocol: str, match_protocol: bool, expected: bool
) -> None:
    rule = make_rule(protocol=rule_protocol)
    event = make_event(protocol=event_protocol)
    assert rule.matches(event, ASSETS_1404, match_protocol=match_protocol) is expected


@pytest.mark.parametrize(
    ("rule_type", "event_cd1", "taxonomy_custom_data", "expected"),
    [
        pytest.param("TaxonomyRule", "", False, True, id="4.2-taxonomy-cd-ignored-by-default"),
        pytest.param("TaxonomyRule", "allow", False, True, id="4.2-taxonomy-cd-ignored-mismatch"),
        pytest.param("TaxonomyRule", "", True, False, id="4.2-taxonomy-cd-switch-empty"),
        pytest.param("TaxonomyRule", "allow", True, False, id="4.2-taxonomy-cd-switch-mismatch"),
        pytest.param("TaxonomyRule", "DENY", True, True, id="4.2-taxonomy-cd-switch-equal"),
        pytest.param("PluginRule", "", False, False, id="4.2-plugin-cd-always-checked"),
        pytest.param("PluginRule", "deny", False, True, id="4.2-plugin-cd-equal"),
        pytest.param("PluginRule", "", True, False, id="4.2-plugin-cd-switch-irrelevant"),
    ],
)
def test_taxonomy_custom_data_switch(
    rule_type: str, event_cd1: str, taxonomy_custom_data: bool, expected: bool
) -> None:
    rule = make_rule(type=rule_type, custom_data1="deny")
    event = make_event(custom_data1=event_cd1)
    result = rule.matches(event, ASSETS_1404, taxonomy_custom_data=taxonomy_custom_data)
    assert result is expected


# --------------------------------------------------------------------------------------------
# sticky-different recording (docs/behaviour.md, "Sticky values"): the sticky table of
# `test_rule`
# --------------------------------------------------------------------------------------------

STICKY_EVENT = {"custom_data1": "foo", "custom_data2": "bar", "custom_data3": "baz"}

STICKY_GROUPS = {
    # group: rows of (case, rule changes, match, recorded value, ints after, strings after)
    "A": [
        (101, {"sticky_different": "PLUGIN_SID"}, True, 50001, [50001], []),
        (102, {"sticky_different": "PLUGIN_SID"}, True, 50001, [50001], []),
        (103, {"sticky_different": "SRC_IP"}, True, "192.168.0.1", [50001], ["192.168.0.1"]),
        (
            104,
            {"sticky_different": "DST_IP"},
            True,
            "8.8.8.200",
            [50001],
            ["192.168.0.1", "8.8.8.200"],
        ),
    ],
    "B": [
        (108, {"sticky_different": "SRC_PORT"}, True, 31337, [31337], []),
        (109, {"sticky_different": "DST_PORT"}, True, 80, [31337, 80], []),
    ],
    "C": [
        (
            110,
            {"custom_data1": "foo", "sticky_different": "CUSTOM_DATA1"},
            True,
            "foo",
            [],
            ["foo"],
        ),
        (
            111,
            {"custom_data1": "foo", "custom_data2": "bar", "sticky_different": "CUSTOM_DATA2"},
            True,
            "bar",
            [],
            ["foo", "bar"],
        ),
        (
            112,
            {
                "custom_data1": "foo",
                "custom_data2": "bar",
                "custom_data3": "baz",
                "sticky_different": "CUSTOM_DATA3",
            },
            True,
            "baz",
            [],
            ["foo", "bar", "baz"],
        ),
        (
            113,
            {
                "custom_data1": "foo",
                "custom_data2": "bar",
                "custom_data3": "qux",
                "sticky_different": "CUSTOM_DATA3",
            },
            False,
            "baz",  # what STICKY_VALUE reads from the event; not recorded (no full match)
            [],
            ["foo", "bar", "baz"],
        ),
    ],
}


def _split(store: dict[Any, None]) -> tuple[list[int], list[str]]:
    return [v for v in store if isinstance(v, int)], [v for v in store if isinstance(v, str)]


@pytest.mark.parametrize(
    "group",
    [pytest.param(g, id=f"14.5-group-{g}") for g in STICKY_GROUPS],
)
def test_sticky_recording(group: str) -> None:
    """Rules of one group share one sticky store; the engine records only on a full match."""
    engine = Engine(Config(directives=(), assets=ASSETS_1404), clock=lambda: 0)
    event = make_event(**STICKY_EVENT)
    store: dict[Any, None] = {}
    for case, changes, match, value, ints, strings in STICKY_GROUPS[group]:
        rule = make_rule(**changes)
        field = changes["sticky_different"]
        recorded = STICKY_VALUE[field](event)
        assert recorded == value, case
        assert type(recorded) is type(value), case
        matched = rule.matches(event, ASSETS_1404)
        assert matched is match, case
        if matched:
            engine._record_sticky(Stage(rule, sticky=store), event)
        assert _split(store) == (ints, strings), case


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        pytest.param("PLUGIN_SID", 50001, id="4.8-PLUGIN_SID"),
        pytest.param("SRC_IP", "2002:c0a8:1::1", id="4.8-SRC_IP-canonical-text"),
        pytest.param("DST_IP", "8.8.8.200", id="4.8-DST_IP"),
        pytest.param("SRC_PORT", 31337, id="4.8-SRC_PORT"),
        pytest.param("DST_PORT", 80, id="4.8-DST_PORT"),
        pytest.param("CUSTOM_DATA1", "foo", id="4.8-CUSTOM_DATA1"),
        pytest.param("CUSTOM_DATA2", "", id="4.8-CUSTOM_DATA2-empty"),
        pytest.param("CUSTOM_DATA3", "baz", id="4.8-CUSTOM_DATA3"),
    ],
)
def test_sticky_value_fields(field: str, expected: Any) -> None:
    event = make_event(src_ip="2002:c0a8:0001:0:0:0:0:1", custom_data1="foo", custom_data3="baz")
    value = STICKY_VALUE[field](event)
    assert value == expected
    assert type(value) is type(expected)


def test_sticky_fields_are_exactly_the_documented_values() -> None:
    assert set(STICKY_VALUE) == {
        "PLUGIN_SID",
        "SRC_IP",
        "DST_IP",
        "SRC_PORT",
        "DST_PORT",
        "CUSTOM_DATA1",
        "CUSTOM_DATA2",
        "CUSTOM_DATA3",
    }

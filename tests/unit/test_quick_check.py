"""Directive-level quick check (docs/behaviour.md, "Directive index"), with the vectors of
the Rust backends' `test_quick_check_*` and Go Dsiem's `TestQuickCheck`.

dsiem-sql uses dsiem-rs's OR combination: an event reaches a directive when it carries one of
the directive's (plugin_id, plugin_sid) pairs OR one of its (product, category) pairs.
"""

from __future__ import annotations

import json
from typing import Any

import kit
import pytest

from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.engine.event import Event
from dsiem_sql.engine.index import DirectiveIndex
from dsiem_sql.engine.state import Directive


def plugin_rule(plugin_id: int, sids: list[int]) -> dict[str, Any]:
    return {"type": "PluginRule", "plugin_id": plugin_id, "plugin_sid": sids}


def taxo_rule(products: list[str], category: str) -> dict[str, Any]:
    return {"type": "TaxonomyRule", "product": products, "category": category}


def directive(rules: list[dict[str, Any]], id_: int = 1, position: int = 0) -> Directive:
    stages = [kit.rule(n, timeout=60, **r) for n, r in enumerate(rules, start=1)]
    return Directive.from_config(DirectiveConfig.model_validate(kit.directive(id_, stages)),
                                 position)


def event(plugin_id: int = 0, plugin_sid: int = 0, product: str = "", category: str = "") -> Event:
    return Event.model_validate_json(json.dumps(kit.event(
        "e", kit.T0, "10.0.0.1", "10.0.0.2", plugin_id=plugin_id, plugin_sid=plugin_sid,
        product=product, category=category)))


SID_1_2 = [plugin_rule(1, [1, 2, 3]), plugin_rule(2, [1, 2, 3])]
TAXO_FW_WAF = [
    taxo_rule(["checkpoint", "fortigate"], "firewall"),
    taxo_rule(["f5", "modsec"], "waf"),
]
TAXO_P = [taxo_rule(["P1", "P2"], "C1")]
SID_10 = [plugin_rule(10, [1, 2])]
# Derived mixed directive: stage 1 TaxonomyRule, stage 2 PluginRule
MIXED = [taxo_rule(["Firewall"], "Allowed traffic event"), plugin_rule(1001, [1])]

QUICK_CHECK_ROWS = [
    pytest.param(SID_1_2, event(1, 1), True, id="14.6-sid-1/1"),
    pytest.param(SID_1_2, event(1, 4), False, id="14.6-sid-1/4"),
    pytest.param(SID_1_2, event(3, 4), False, id="14.6-sid-3/4"),
    pytest.param(
        TAXO_FW_WAF,
        event(product="checkpoint", category="firewall"),
        True,
        id="14.6-taxo-checkpoint/firewall",
    ),
    pytest.param(
        TAXO_FW_WAF,
        event(product="checkpoint", category="waf"),
        False,
        id="14.6-taxo-checkpoint/waf",
    ),
    pytest.param(TAXO_FW_WAF, event(product="pf", category="waf"), False, id="14.6-taxo-pf/waf"),
    pytest.param(TAXO_P, event(product="P1", category="C1"), True, id="14.6-taxo-P1/C1"),
    pytest.param(TAXO_P, event(product="P1", category="C2"), False, id="14.6-taxo-P1/C2"),
    pytest.param(TAXO_P, event(product="P3", category="C1"), False, id="14.6-taxo-P3/C1"),
    pytest.param(SID_10, event(10, 1), True, id="14.6-sid-10/1"),
    pytest.param(SID_10, event(10, 3), False, id="14.6-sid-10/3"),
    pytest.param(SID_10, event(9, 1), False, id="14.6-sid-9/1"),
    # Derived combination rows, dsiem-rs's values (OR): dsiem-backend fails both, Go Dsiem
    # fails the second.
    pytest.param(MIXED, event(1001, 1), True, id="14.6-derived-mixed-plugin-event-R"),
    pytest.param(
        MIXED,
        event(product="Firewall", category="Allowed traffic event"),
        True,
        id="14.6-derived-mixed-taxonomy-event-R",
    ),
    # Further consequences: exact, case-sensitive equality; both strings needed
    pytest.param(MIXED, event(1001, 2), False, id="4.11-mixed-other-sid"),
    pytest.param(
        MIXED,
        event(product="firewall", category="Allowed traffic event"),
        False,
        id="4.11-product-case-sensitive",
    ),
    pytest.param(MIXED, event(product="Firewall"), False, id="4.11-product-without-category"),
    pytest.param(
        MIXED,
        event(1001, 9, product="Firewall", category="Allowed traffic event"),
        True,
        id="4.11-taxonomy-pair-with-unrelated-sid",
    ),
    pytest.param(SID_10, event(0, 1), False, id="4.11-plugin-id-zero"),
]


@pytest.mark.parametrize(("rules", "ev", "expected"), QUICK_CHECK_ROWS)
def test_quick_check(rules: list[dict[str, Any]], ev: Event, expected: bool) -> None:
    d = directive(rules)
    found = DirectiveIndex([d]).lookup(ev)
    assert found == ([d] if expected else [])
    # the returned list holds the very Directive objects that were indexed
    assert all(x is d for x in found)


@pytest.mark.parametrize(
    ("rules", "sid_keys", "taxo_keys"),
    [
        pytest.param(
            [plugin_rule(1, [1, 2, 3]), taxo_rule(["checkpoint"], "firewall")],
            {(1, 1), (1, 2), (1, 3)},
            {("checkpoint", "firewall")},
            id="14.6-extraction-plugin-and-taxonomy",
        ),
        pytest.param(
            [plugin_rule(1, [1, 2, 3])],
            {(1, 1), (1, 2), (1, 3)},
            set(),
            id="14.6-extraction-plugin-only",
        ),
        # Pairs are taken from all rules whatever their type, so a rule carrying both plugin
        # and taxonomy keys yields both kinds (as Go Dsiem documents, too).
        pytest.param(
            [{**plugin_rule(7, [8]), "product": ["IDS"], "category": "Malware"}],
            {(7, 8)},
            {("IDS", "Malware")},
            id="14.6-extraction-rule-with-both-kinds",
        ),
        pytest.param(
            [{**taxo_rule(["IDS", "NIDS"], "Malware"), "plugin_id": 7, "plugin_sid": [8]}],
            {(7, 8)},
            {("IDS", "Malware"), ("NIDS", "Malware")},
            id="4.11-extraction-taxonomy-rule-with-plugin-keys",
        ),
        pytest.param(
            [plugin_rule(0, [1]), plugin_rule(5, []), taxo_rule([], "c"), taxo_rule(["p"], "")],
            set(),
            set(),
            id="4.11-extraction-incomplete-pairs-ignored",
        ),
    ],
)
def test_pair_extraction(
    rules: list[dict[str, Any]],
    sid_keys: set[tuple[int, int]],
    taxo_keys: set[tuple[str, str]],
) -> None:
    index = DirectiveIndex([directive(rules)])
    assert set(index.by_sid) == sid_keys
    assert set(index.by_taxonomy) == taxo_keys


def test_event_reaching_no_pair_returns_empty_list() -> None:
    index = DirectiveIndex(
        [directive(SID_1_2, 1, 0), directive(TAXO_FW_WAF, 2, 1), directive(MIXED, 3, 2)]
    )
    assert index.lookup(event(99, 99, product="nothing", category="nowhere")) == []
    assert index.lookup(event(99, 99)) == []
    assert index.lookup(event(product="checkpoint", category="nowhere")) == []


def test_empty_index_returns_empty_list() -> None:
    assert DirectiveIndex([]).lookup(event(1, 1)) == []


def test_lookup_returns_each_directive_once_in_load_order() -> None:
    # d2 is loaded first; d1 is reached through both its sid pair and its taxonomy pair.
    d2 = directive([plugin_rule(1001, [1])], id_=2, position=0)
    d1 = directive(MIXED, id_=1, position=1)
    d3 = directive(TAXO_FW_WAF, id_=3, position=2)
    index = DirectiveIndex([d2, d1, d3])
    both = event(1001, 1, product="Firewall", category="Allowed traffic event")
    assert index.lookup(both) == [d2, d1]
    assert index.lookup(event(1001, 1)) == [d2, d1]
    assert index.lookup(event(product="Firewall", category="Allowed traffic event")) == [d1]
    assert index.lookup(event(product="fortigate", category="firewall")) == [d3]


@pytest.mark.parametrize(
    ("sid_position", "taxo_position"),
    [pytest.param(0, 1, id="4.11-sid-directive-first"), pytest.param(1, 0, id="4.11-taxo-first")],
)
def test_event_reaching_directives_by_different_kinds(
    sid_position: int, taxo_position: int
) -> None:
    """One directive reached only by the sid pair, another only by the taxonomy pair."""
    by_sid = directive([plugin_rule(1001, [1])], id_=1, position=sid_position)
    by_taxo = directive([taxo_rule(["Firewall"], "Allowed")], id_=2, position=taxo_position)
    loaded = sorted([by_sid, by_taxo], key=lambda d: d.position)
    index = DirectiveIndex(loaded)
    both = event(1001, 1, product="Firewall", category="Allowed")
    assert index.lookup(both) == loaded


def test_directive_reached_by_several_rules_is_listed_once() -> None:
    d = directive([plugin_rule(1, [1, 2]), plugin_rule(1, [2, 3]), plugin_rule(1, [2])])
    assert DirectiveIndex([d]).lookup(event(1, 2)) == [d]

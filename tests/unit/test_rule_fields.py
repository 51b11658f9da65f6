"""`Rule` takes its fields from `RuleConfig`: the same names in the same order, the same
defaults, lists as tuples."""

from __future__ import annotations

import dataclasses

from dsiem_sql.config.models import RuleConfig
from dsiem_sql.engine.rules import Rule

CONFIG = {
    "name": "r", "stage": 2, "type": "PluginRule", "occurrence": 3, "from": "10.0.0.0/8",
    "to": ":1", "port_from": "ANY", "port_to": "22,!23", "protocol": "TCP", "reliability": 4,
    "timeout": 60, "plugin_id": 7, "plugin_sid": [1, 2], "custom_data1": "x",
}


def test_the_fields_are_those_of_rule_config_in_its_order() -> None:
    init = [f.name for f in dataclasses.fields(Rule) if f.init]
    assert init == list(RuleConfig.model_fields)


def test_from_config_copies_every_field_with_lists_as_tuples() -> None:
    config = RuleConfig.model_validate(CONFIG)
    rule = Rule.from_config(config)
    for name, value in config:
        assert getattr(rule, name) == (tuple(value) if isinstance(value, list) else value)
    assert (rule.plugin_sid, rule.product, rule.subcategory) == ((1, 2), (), ())
    assert rule.sids == frozenset({1, 2}) and rule.references == (("to", 1),)
    assert rule.port_to_cond("22") and not rule.port_to_cond("23")


def test_the_defaults_are_those_of_rule_config() -> None:
    optional = ("plugin_id", "plugin_sid", "custom_data1")
    given = {k: v for k, v in CONFIG.items() if k not in optional}
    config = RuleConfig.model_validate(given)
    rule = Rule(**{"from_" if k == "from" else k: v for k, v in given.items()})
    for name, value in config:
        assert getattr(rule, name) == (tuple(value) if isinstance(value, list) else value)


def test_rules_are_equal_and_hashed_by_identity() -> None:
    """Backlogs share rule objects; the store memoises their JSON per object."""
    config = RuleConfig.model_validate(CONFIG)
    a, b = Rule.from_config(config), Rule.from_config(config)
    assert a != b and a == a and hash(a) != hash(b)
    assert "from_='10.0.0.0/8'" in repr(a) and "sids" not in repr(a)

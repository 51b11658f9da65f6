"""The directive extensions' syntax: every malformed extension is a validation error naming
the stage and the reason; a file that uses them is refused by the loading rules of the other
Dsiem backends; a directive without them is stored as before (docs/extensions.md)."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from kit import EXAMPLES, directive, rule
from pydantic import BaseModel, ConfigDict, ValidationError

from dsiem_sql.config import load_config
from dsiem_sql.config.errors import ConfigError
from dsiem_sql.config.extensions import directive_extensions
from dsiem_sql.config.models import DirectiveConfig, DirectivesFile
from dsiem_sql.config.validate import InvalidDirective, validate_directive
from dsiem_sql.engine.rules import Rule
from dsiem_sql.store.rows import definition_json, rule_from_json, rule_json

EXTENDED_FILE = EXAMPLES / "extensions" / "configs" / "directives_dsiem-backend-0_extended.json"
X = "ExtendedPluginRule"


def checked(*rules: dict[str, Any]) -> DirectiveConfig:
    d = DirectiveConfig.model_validate(directive(77, list(rules)))
    validate_directive(d, set())
    return d


def error(*rules: dict[str, Any]) -> str:
    with pytest.raises(InvalidDirective) as exc:
        checked(*rules)
    return str(exc.value)


MALFORMED = {
    "absence on a PluginRule": (
        [rule(1), rule(2, absent=True, timeout=60)],
        "rule stage 2 uses an extension of dsiem-sql (absence), so its type must be "
        "ExtendedPluginRule, not PluginRule"),
    "absence on a TaxonomyRule": (
        [rule(1), rule(2, type="TaxonomyRule", product=["fw"], category="c", absent=True,
                       timeout=60)],
        "its type must be ExtendedTaxonomyRule, not TaxonomyRule"),
    "two sticky fields on a PluginRule": (
        [rule(1), rule(2, sticky_different="SRC_IP,DST_PORT")],
        "rule stage 2 uses an extension of dsiem-sql (sticky-different on 2 fields)"),
    "an address referring to another field on a PluginRule": (
        [rule(1), rule(2, **{"from": ":1.to"})],
        "rule stage 2 uses an extension of dsiem-sql (reference from = stage 1's to)"),
    "custom data referring to another field on a PluginRule": (
        [rule(1), rule(2, custom_data1=":1.custom_data2")],
        "(reference custom_data1 = stage 1's custom_data2)"),
    "an absence stage 1": (
        [rule(1, type=X, absent=True, timeout=60), rule(2, type=X)],
        "rule stage 1 cannot be an absence stage"),
    "an absence stage with occurrence 2": (
        [rule(1, type=X), rule(2, type=X, absent=True, occurrence=2, timeout=60)],
        "rule stage 2 is an absence stage and must have occurrence = 1"),
    "an absence stage without a timeout": (
        [rule(1, type=X), rule(2, type=X, absent=True)],
        "rule stage 2 is an absence stage and needs a timeout above 0"),
    "an absence stage with sticky_different": (
        [rule(1, type=X), rule(2, type=X, absent=True, timeout=60, sticky_different="SRC_IP")],
        "rule stage 2 is an absence stage and cannot have sticky_different"),
    "a reference to an absence stage": (
        [rule(1, type=X), rule(2, type=X, absent=True, timeout=60),
         rule(3, type=X, **{"from": ":2"})],
        "rule stage 3 from is invalid: :2 refers to stage 2, an absence stage"),
    "a reference to another field of an absence stage": (
        [rule(1, type=X), rule(2, type=X, absent=True, timeout=60),
         rule(3, type=X, custom_data1=":2.custom_data3")],
        "rule stage 3 custom_data1 is invalid: :2.custom_data3 refers to stage 2"),
    "a sticky field named twice": (
        [rule(1, type=X), rule(2, type=X, sticky_different="SRC_IP, SRC_IP")],
        "rule stage 2 sticky_different is invalid: 'SRC_IP, SRC_IP' names a field twice"),
    "an unknown sticky field among several": (
        [rule(1, type=X), rule(2, type=X, sticky_different="SRC_IP,src_port")],
        "rule stage 2 sticky_different is invalid: 'src_port' is not one of PLUGIN_SID"),
    "an empty sticky field among several": (
        [rule(1, type=X), rule(2, type=X, sticky_different="SRC_IP,")],
        "rule stage 2 sticky_different is invalid: '' is not one of"),
    "an address referring to a port": (
        [rule(1, type=X), rule(2, type=X, **{"from": ":1.port_to"})],
        "rule stage 2 from address is invalid: :1.port_to is not a valid reference: it joins "
        "from (address) to port_to (port), fields of different kinds"),
    "a port referring to custom data": (
        [rule(1, type=X), rule(2, type=X, port_to=":1.custom_data1")],
        "rule stage 2 port_to is invalid: :1.custom_data1 is not a valid reference"),
    "custom data referring to an address": (
        [rule(1, type=X), rule(2, type=X, custom_data2=":1.from")],
        "rule stage 2 custom_data2 is invalid: :1.from is not a valid reference: it joins "
        "custom_data2 (custom data) to from (address)"),
    "a protocol referring to custom data": (
        [rule(1, type=X), rule(2, type=X, protocol=":1.custom_data1")],
        "rule stage 2 protocol is invalid: :1.custom_data1 is not a valid reference"),
    "a reference to an unknown field": (
        [rule(1, type=X), rule(2, type=X, to=":1.dst_ip")],
        "rule stage 2 to address is invalid: :1.dst_ip is not a valid reference: `:N.field` "
        "names one of from, to, port_from, port_to, protocol, custom_data1"),
    "a reference to its own stage": (
        [rule(1, type=X), rule(2, type=X, to=":2.from")],
        "rule stage 2 to address is invalid: :2.from is not a valid reference: it must point "
        "to an earlier stage"),
    "a reference to a later stage": (
        [rule(1, type=X), rule(2, type=X, custom_data1=":3.custom_data1"), rule(3, type=X)],
        "rule stage 2 custom_data1 is invalid: :3.custom_data1 is not a valid reference: it "
        "must point to an earlier stage"),
    "a reference on stage 1": (
        [rule(1, type=X, to=":1.from"), rule(2, type=X)],
        "rule stage 1 to address is invalid: first rule cannot have reference"),
    "a Dsiem rule in an extended directive": (
        [rule(1), rule(2, type=X, absent=True, timeout=60)],
        "rule stage 1 type must be ExtendedPluginRule: stage 2 is of an extended type, and "
        "every rule of a directive that uses extensions must be"),
    "a Dsiem rule after an extended one": (
        [rule(1, type=X), rule(2, type="TaxonomyRule", product=["fw"], category="c")],
        "rule stage 2 type must be ExtendedTaxonomyRule"),
}


@pytest.mark.parametrize("rules, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_extension_is_a_validation_error(rules, message):
    assert message in error(*rules)


def test_an_unknown_rule_type_is_a_decode_error_that_names_the_extended_types(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "assets_a.json").write_text(json.dumps(
        {"assets": [{"name": "n", "cidr": "10.0.0.0/8", "value": 3}]}))
    (configs / "directives_a.json").write_text(json.dumps({"directives": [
        directive(1, [rule(1), rule(2, type="ExtendedPluginRules")])]}))
    with pytest.raises(ConfigError) as exc:
        load_config(configs)
    assert ('directive ID 1: rules[1].type: invalid rule type string "ExtendedPluginRules", '
            "expected PluginRule or TaxonomyRule (or, with dsiem-sql's extensions, "
            "ExtendedPluginRule or ExtendedTaxonomyRule)") in str(exc.value)


def test_well_formed_extensions_validate_and_are_named():
    d = checked(rule(1, type=X),
                rule(2, type=X, absent=True, timeout=60, custom_data1=":1"),
                rule(3, type=X, **{"from": ":1.to"}, port_to=":1.port_from",
                     custom_data2=":1.custom_data3", sticky_different="SRC_IP, DST_PORT",
                     occurrence=4))
    assert directive_extensions(d) == [
        "absence", "sticky-different on 2 fields", "reference from = stage 1's to",
        "reference port_to = stage 1's port_from",
        "reference custom_data2 = stage 1's custom_data3"]


def test_the_example_file_names_every_extension():
    parsed = DirectivesFile.model_validate_json(EXTENDED_FILE.read_text())
    names = {d.id: directive_extensions(d) for d in parsed.directives}
    assert names == {9001: ["absence"], 9002: ["sticky-different on 2 fields"],
                     9003: ["reference from = stage 1's to"]}


def test_a_dsiem_custom_data_that_merely_looks_like_a_reference_stays_literal():
    d = checked(rule(1), rule(2, custom_data1=":1.5"))
    assert directive_extensions(d) == []
    assert Rule.from_config(d.rules[1]).references == ()


# -- the other backends' loading rules ----------------------------------------------------------

DSIEM_TYPES = ("PluginRule", "TaxonomyRule")


def go_dsiem_loads(d: dict[str, Any]) -> bool:
    """Go Dsiem's ValidateRules, as far as the rule type goes: a rule whose type is neither
    PluginRule nor TaxonomyRule makes the directive skipped (`invalid rule type`)."""
    return all(r["type"] in DSIEM_TYPES for r in d["rules"])


def go_dsiem_opens_a_backlog(d: dict[str, Any]) -> bool:
    """A Go Dsiem that did not validate types: a rule of another type never matches, so a
    directive whose first rule has one never opens a backlog."""
    return d["rules"][0]["type"] in DSIEM_TYPES


class RustRule(BaseModel):
    """dsiem-backend's and dsiem-rs's decoder: `type` is an enum of the two Dsiem types, a
    decode error for the whole file otherwise."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["PluginRule", "TaxonomyRule"]


class RustDirective(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rules: list[RustRule]


class RustFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    directives: list[RustDirective]


def test_no_other_backend_loads_an_extended_directive():
    doc = json.loads(EXTENDED_FILE.read_text())
    assert doc["directives"], "the example file holds directives"
    for d in doc["directives"]:
        assert not go_dsiem_loads(d), d["id"]
        assert not go_dsiem_opens_a_backlog(d), d["id"]
    with pytest.raises(ValidationError, match="type"):
        RustFile.model_validate(doc)


def test_the_loading_rules_above_do_load_the_ordinary_examples():
    # the control: the same rules accept the Dsiem example directives
    doc = json.loads((EXAMPLES / "configs" / "directives_dsiem-backend-0_example.json")
                     .read_text())
    assert all(go_dsiem_loads(d) and go_dsiem_opens_a_backlog(d) for d in doc["directives"])
    RustFile.model_validate(doc)


def test_every_extended_directive_marks_every_rule_so_the_rules_above_catch_it():
    # what makes the two tests above hold for any file dsiem-sql accepts, not only the example
    for rules in ([rule(1), rule(2, type=X, absent=True, timeout=60)],
                  [rule(1, type=X), rule(2, sticky_different="SRC_IP,DST_IP")],
                  [rule(1), rule(2, type=X, to=":1.from")]):
        with pytest.raises(InvalidDirective):
            checked(*rules)


# -- nothing changes without extensions ----------------------------------------------------------


def test_a_dsiem_rule_is_stored_as_before():
    d = checked(rule(1), rule(2, sticky_different="SRC_IP", occurrence=3))
    assert "absent" not in definition_json(d)
    text = rule_json(Rule.from_config(d.rules[1]))
    assert "absent" not in json.loads(text)
    assert rule_from_json(text).absent is False


def test_an_absence_stage_is_stored_with_its_mark():
    d = checked(rule(1, type=X), rule(2, type=X, absent=True, timeout=60))
    assert json.loads(definition_json(d))["rules"][1]["absent"] is True
    assert rule_from_json(rule_json(Rule.from_config(d.rules[1]))).absent is True

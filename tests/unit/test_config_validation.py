"""Directive, intel and vuln configuration loading and validation (docs/behaviour.md, "Config
files", "Directive validation", "Disabled directives", "Intel and vuln sources").

The fixture directories under `tests/fixtures/directives/` hold one case each: `1`..`28` are the
cases of dsiem-backend's `test_load_directives` (fixture set `directive2`, the same in
dsiem-rs), `dup` is its `directive1` fixture, `derived-*` follow from the checks, and `extra-*`
are the three checks dsiem-sql adds. In every failing fixture the offending directive has id 2
and (where that makes sense) follows a valid directive with id 1.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kit
import pytest

from dsiem_sql.config import ConfigError, load_config
from dsiem_sql.config.models import NesdConfig, WiseConfig

FIXTURES = kit.FIXTURES / "directives"
DIRECTIVES_FILE = "directives_x_test.json"
ASSETS = {"assets": [{"name": "Firewall", "cidr": "192.168.0.1/32", "value": 5}]}
RULE_ERR = "Directive ID 2 rules has error: "

# (case, expected message, decode error?) — a decode error is compared up to " at line" (serde's
# line and column cannot be reproduced), every other message must be dsiem-backend's exact text.
REFERENCE_CASES = [
    ("1", "missing field `rules`", True),
    ("2", "directive ID 2 kingdom is empty", False),
    ("3", "directive ID 2 priority must be between 1 to 5", False),
    ("4", "invalid value: integer `-1`, expected u8", True),
    ("5", "invalid rule type", True),
    ("6", RULE_ERR + "rule stage 1 plugin_id must be >= 1", False),
    ("7", RULE_ERR + "plugin_sid cannot be empty", False),
    ("8", RULE_ERR + "rule stage 1 plugin_sid must be >= 1", False),
    ("9", RULE_ERR + "rule stage 1 is a TaxonomyRule and requires product to be defined", False),
    ("10", RULE_ERR + "rule stage 1 is a TaxonomyRule and requires category to be defined", False),
    (
        "11",
        RULE_ERR + "rule stage 1 from address is invalid: "
        "HOME_NETs: couldn't parse address in network: invalid IP address syntax",
        False,
    ),
    ("12", "missing field `to`", True),
    (
        "13",
        RULE_ERR + "rule stage 1 port_from is invalid: 0 is not a valid TCP/UDP port number",
        False,
    ),
    ("14", RULE_ERR + "rule stage 1 port_to is invalid: invalid digit found in string", False),
    ("15", RULE_ERR + "rule stage cannot be zero", False),
    ("16", RULE_ERR + "duplicate rule stage 1 found", False),
    ("17", RULE_ERR + "rule stage 1 must have occurrence = 1", False),
    ("18", "directive ID 2 name is empty", False),
    ("19", "directive ID 2 category is empty", False),
    ("20", "directive ID 2 has no rule or only has one and therefore will never expire", False),
    ("21", RULE_ERR + "rule stage 1 reliability must be between 0 to 10", False),
    ("22", RULE_ERR + "rule stage 1 from address is invalid: empty string", False),
    (
        "23",
        RULE_ERR + "rule stage 1 from address is invalid: first rule cannot have reference",
        False,
    ),
    ("24", RULE_ERR + "rule stage 1 port_from is invalid: first rule cannot have reference", False),
    ("25", RULE_ERR + "rule stage 2 from address is invalid: :a is not a valid reference", False),
    ("26", RULE_ERR + "rule stage 2 from address is invalid: :3 is not a valid reference", False),
    ("27", "cannot load any directive", False),
    ("28", "cannot load any directive", False),
    ("dup", "directive ID 1 already exist", False),
]

DERIVED_AND_EXTRA_CASES = [
    (
        "derived-host-bits",
        RULE_ERR + "rule stage 2 from address is invalid: "
        "192.168.0.1/24: host part of address was not zero",
    ),
    (
        "derived-port-too-large",
        RULE_ERR + "rule stage 1 port_to is invalid: number too large to fit in target type",
    ),
    (
        "derived-port-empty",
        RULE_ERR + "rule stage 1 port_from is invalid: cannot parse integer from empty string",
    ),
    ("extra-stage-gap", RULE_ERR + "rule stages must be numbered 1 to 2 in array order"),
    ("extra-sticky", RULE_ERR + "rule stage 2 sticky_different is invalid: 'src_ip'"),
    (
        "extra-ref-self",
        RULE_ERR + "rule stage 2 from address is invalid: :2 is not a valid reference: "
        "it must point to an earlier stage",
    ),
    (
        "extra-custom-data-ref",
        RULE_ERR + "rule stage 2 custom_data1 is invalid: :3 is not a valid reference: "
        "it must point to an earlier stage",
    ),
]

# directory-wide errors are reported against the directory, not a file
DIRECTORY_CASES = {"27", "28"}


def load_error(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    return info.value


# ---------------------------------------------------------------------------------------------
# builders for the cases that are written to tmp_path


def rule(stage: int, **changes: Any) -> dict[str, Any]:
    """A rule like the fixtures': 1001/[50001] TCP, stage 1 once from HOME_NET, a later stage
    three times from :1 within 60 s; reliability = stage."""
    first = stage == 1
    return kit.rule(stage, **{
        "plugin_id": 1001, "plugin_sid": [50001], "occurrence": 1 if first else 3,
        "from": "HOME_NET" if first else ":1", "protocol": "TCP", "reliability": stage,
        "timeout": 0 if first else 60, **changes,
    })


def directive(id_: int, rules: list[dict[str, Any]] | None = None, **changes: Any) -> dict:
    return kit.directive(id_, [rule(1), rule(2)] if rules is None else rules,
                         **{"name": f"Directive {id_}", **changes})


def write_config(directory: Path, files: dict[str, Any], assets: bool = True) -> Path:
    """Write `{name: object or raw text}` into `directory`, plus a valid assets file."""
    directory.mkdir(parents=True, exist_ok=True)
    if assets:
        (directory / "assets_test.json").write_text(json.dumps(ASSETS))
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (directory / name).write_text(text)
    return directory


def directives_file(*directives: dict) -> dict:
    return {"directives": list(directives)}


def write_pair(directory: Path, second: dict) -> Path:
    """A valid directive 1 followed by `second`."""
    return write_config(directory, {DIRECTIVES_FILE: directives_file(directive(1), second)})


# ---------------------------------------------------------------------------------------------
# dsiem-backend's cases


@pytest.mark.parametrize(("case", "expected", "decode"), REFERENCE_CASES,
                         ids=[c[0] for c in REFERENCE_CASES])
def test_reference_directive_vectors(case: str, expected: str, decode: bool) -> None:
    directory = FIXTURES / case
    err = load_error(directory)
    if decode:
        assert expected in err.message
        # the decode error also says where: the directive id and the offending key
        assert err.message.startswith("directive ID 2: ")
    else:
        assert err.message == expected
    where = directory if case in DIRECTORY_CASES else directory / DIRECTIVES_FILE
    assert str(err) == f"{where}: {err.message}"
    assert str(err).startswith(str(where))


@pytest.mark.parametrize(
    ("case", "expected"), DERIVED_AND_EXTRA_CASES, ids=[c[0] for c in DERIVED_AND_EXTRA_CASES]
)
def test_derived_and_additional_checks(case: str, expected: str) -> None:
    directory = FIXTURES / case
    err = load_error(directory)
    assert err.message.startswith(expected)
    assert str(err).startswith(f"{directory / DIRECTIVES_FILE}: ")


def test_decode_errors_name_the_offending_key() -> None:
    assert load_error(FIXTURES / "4").message == (
        "directive ID 2: rules[1].reliability: invalid value: integer `-1`, expected u8"
    )
    assert load_error(FIXTURES / "12").message == "directive ID 2: rules[0]: missing field `to`"
    assert load_error(FIXTURES / "5").message.startswith(
        "directive ID 2: rules[0].type: invalid rule type"
    )


def test_stage_gap_message_lists_the_stages() -> None:
    assert load_error(FIXTURES / "extra-stage-gap").message == (
        RULE_ERR + "rule stages must be numbered 1 to 2 in array order, found [1, 3]"
    )


def test_sticky_message_lists_allowed_values() -> None:
    message = load_error(FIXTURES / "extra-sticky").message
    for allowed in ("PLUGIN_SID", "SRC_IP", "DST_IP", "SRC_PORT", "DST_PORT", "CUSTOM_DATA1"):
        assert allowed in message


FAILING_WITH_VALID_NEIGHBOUR = [
    c[0] for c in REFERENCE_CASES if c[0] not in DIRECTORY_CASES | {"dup"}
] + [c[0] for c in DERIVED_AND_EXTRA_CASES]


@pytest.mark.parametrize("case", FAILING_WITH_VALID_NEIGHBOUR)
def test_fixture_fails_only_because_of_directive_2(case: str, tmp_path: Path) -> None:
    """Without directive 2 the fixture loads: the error really comes from the case under test."""
    raw = json.loads((FIXTURES / case / DIRECTIVES_FILE).read_text())
    kept = [d for d in raw["directives"] if d["id"] != 2]
    assert len(kept) == len(raw["directives"]) - 1
    (tmp_path / "assets_test.json").write_text((FIXTURES / case / "assets_test.json").read_text())
    (tmp_path / DIRECTIVES_FILE).write_text(json.dumps({"directives": kept}))
    config = load_config(tmp_path)
    assert [d.id for d in config.directives] == [1]


def test_dup_fixture_first_two_directives_are_valid(tmp_path: Path) -> None:
    raw = json.loads((FIXTURES / "dup" / DIRECTIVES_FILE).read_text())
    assert [d["id"] for d in raw["directives"]] == [1, 2, 1]
    assert len(raw["directives"][2]["rules"]) == 1
    (tmp_path / "assets_test.json").write_text((FIXTURES / "dup" / "assets_test.json").read_text())
    (tmp_path / DIRECTIVES_FILE).write_text(json.dumps({"directives": raw["directives"][:2]}))
    config = load_config(tmp_path)
    assert [d.id for d in config.directives] == [1, 2]
    stage2 = config.directives[0].rules[1]
    assert stage2.from_ == "!192.168.0.45, 192.168.0.44"
    assert stage2.to == "192.168.6.66, !10.0.0.5"
    assert stage2.port_from == "!345, 123"
    assert config.directives[1].rules[0].subcategory == ["ANY"]


def test_fixture_28_directive_is_valid_when_enabled(tmp_path: Path) -> None:
    raw = json.loads((FIXTURES / "28" / DIRECTIVES_FILE).read_text())
    assert [d["disabled"] for d in raw["directives"]] == [True]
    raw["directives"][0]["disabled"] = False
    write_config(tmp_path, {DIRECTIVES_FILE: raw})
    assert [d.id for d in load_config(tmp_path).directives] == [2]


# ---------------------------------------------------------------------------------------------
# order of the checks (dsiem-backend's order: the first failure wins)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"name": "", "kingdom": ""}, "directive ID 2 name is empty"),
        ({"kingdom": "", "category": ""}, "directive ID 2 kingdom is empty"),
        ({"category": "", "priority": 0}, "directive ID 2 category is empty"),
        ({"priority": 0, "rules": [rule(1)]}, "directive ID 2 priority must be between 1 to 5"),
        (
            {"rules": [rule(1, reliability=11, port_from="0")]},
            "directive ID 2 has no rule or only has one and therefore will never expire",
        ),
        (
            {"rules": [rule(1, reliability=11, port_from="0"), rule(2)]},
            RULE_ERR + "rule stage 1 reliability must be between 0 to 10",
        ),
        (
            {"rules": [rule(1, port_from="0", port_to="a", to="x"), rule(2)]},
            RULE_ERR + "rule stage 1 port_from is invalid: 0 is not a valid TCP/UDP port number",
        ),
        (
            {"rules": [rule(1, plugin_id=0, plugin_sid=[])]},
            "directive ID 2 has no rule or only has one and therefore will never expire",
        ),
        (
            {"rules": [rule(1, plugin_id=0, plugin_sid=[0]), rule(2)]},
            RULE_ERR + "rule stage 1 plugin_id must be >= 1",
        ),
        (
            # rules are checked in array order: stage 2's error is met before stage 3's
            {"rules": [rule(1), rule(2, to="bad"), rule(3, reliability=99)]},
            RULE_ERR + "rule stage 2 to address is invalid: "
            "bad: couldn't parse address in network: invalid IP address syntax",
        ),
        ({"priority": 6}, "directive ID 2 priority must be between 1 to 5"),
    ],
)
def test_first_failing_check_wins(tmp_path: Path, changes: dict, expected: str) -> None:
    write_pair(tmp_path, directive(2, **changes))
    assert load_error(tmp_path).message.startswith(expected)


def test_duplicate_check_precedes_every_other_check(tmp_path: Path) -> None:
    broken = directive(1, name="", priority=9, rules=[])
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(directive(1), broken)})
    assert load_error(tmp_path).message == "directive ID 1 already exist"


# ---------------------------------------------------------------------------------------------
# address, port and reference details


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("from", ":01", ":01 is not a valid reference"),
        ("from", ":0", ":0 is not a valid reference"),
        ("to", ":-1", ":-1 is not a valid reference"),
        ("port_from", ":999", ":999 is not a valid reference"),
        ("port_to", ":x", ":x is not a valid reference"),
        ("from", "10.0.0.0/33", "10.0.0.0/33: invalid length for network: "
         "Network length 33 is too long for Ipv4 (maximum: 32)"),
        # a leading ":" always means a reference, even for an IPv6 network
        ("to", "::/129", "::/129 is not a valid reference"),
        ("to", "2001:db8::/129", "2001:db8::/129: invalid length for network: "
         "Network length 129 is too long for Ipv6 (maximum: 128)"),
        ("from", "10.0.0.0/x", "10.0.0.0/x: couldn't parse length in network: "
         "invalid digit found in string"),
        ("to", "10.0.0.1, 300.1.1.1", "300.1.1.1: couldn't parse address in network: "
         "invalid IP address syntax"),
        ("port_to", "80, !0", "0 is not a valid TCP/UDP port number"),
        ("port_from", "80,", "cannot parse integer from empty string"),
        ("port_from", "-1", "invalid digit found in string"),
        ("port_to", "65536", "number too large to fit in target type"),
    ],
)
def test_invalid_stage2_values(tmp_path: Path, field: str, value: str, detail: str) -> None:
    label = {"from": "from address", "to": "to address"}.get(field, field)
    bad = directive(2, rules=[rule(1), rule(2, **{field: value})])
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(directive(1), bad)})
    assert load_error(tmp_path).message == f"{RULE_ERR}rule stage 2 {label} is invalid: {detail}"


def test_valid_address_port_and_reference_forms_load(tmp_path: Path) -> None:
    rules = [
        rule(1, to="!HOME_NET", port_from="1, 65535", port_to="!22,!23"),
        rule(2, **{"from": ":1", "to": "any, 10.0.0.0/8, !2001:db8::/32, 10.1.2.3"},
             port_from=":1", port_to="ANY", sticky_different="DST_PORT"),
        rule(3, **{"from": ":2", "to": ":1"}, port_from=":2", port_to=":1",
             custom_data1=":2", protocol=":1", sticky_different="CUSTOM_DATA3"),
    ]
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(directive(7, rules=rules))})
    config = load_config(tmp_path)
    assert [r.stage for r in config.directives[0].rules] == [1, 2, 3]
    assert config.directives[0].rules[2].custom_data1 == ":2"


def test_custom_data_reference_on_stage_1_is_rejected(tmp_path: Path) -> None:
    """Custom data references follow the address/port reference rules (docs/behaviour.md,
    "Directive validation")."""
    rules = [rule(1, custom_data1=":1"), rule(2)]
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(directive(3, rules=rules))})
    assert load_error(tmp_path).message == (
        "Directive ID 3 rules has error: rule stage 1 custom_data1 is invalid: "
        "first rule cannot have reference"
    )


def test_custom_data_that_only_looks_like_a_reference_is_free_form(tmp_path: Path) -> None:
    rules = [rule(1, custom_data1="a:1", custom_data2=":x"), rule(2, custom_data3="!:1")]
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(directive(3, rules=rules))})
    first = load_config(tmp_path).directives[0].rules[0]
    assert (first.custom_data1, first.custom_data2) == ("a:1", ":x")


# ---------------------------------------------------------------------------------------------
# disabled directives (docs/behaviour.md, "Disabled directives")


def test_disabled_directive_does_not_occupy_its_id(tmp_path: Path) -> None:
    disabled = directive(1, disabled=True, name="old one")
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(disabled, directive(1))})
    config = load_config(tmp_path)
    assert [(d.id, d.name, d.disabled) for d in config.directives] == [(1, "Directive 1", False)]
    (summary,) = [f for f in config.files if f.kind == "directives"]
    assert (summary.directives, summary.disabled, summary.rules) == (1, 1, 2)


def test_disabled_after_enabled_with_same_id(tmp_path: Path) -> None:
    disabled = directive(1, disabled=True, name="later")
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(directive(1), disabled)})
    assert [d.name for d in load_config(tmp_path).directives] == ["Directive 1"]


def test_disabled_directive_is_not_validated(tmp_path: Path) -> None:
    disabled = directive(2, disabled=True, priority=9, kingdom="", rules=[rule(0)])
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(directive(1), disabled)})
    assert [d.id for d in load_config(tmp_path).directives] == [1]


def test_disabled_directive_is_still_decoded(tmp_path: Path) -> None:
    disabled = directive(2, disabled=True, priority="3")
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(directive(1), disabled)})
    message = load_error(tmp_path).message
    assert "directive ID 2" in message
    assert "priority" in message


# ---------------------------------------------------------------------------------------------
# decode errors: types, malformed JSON, file shape


@pytest.mark.parametrize(
    ("changes", "key", "detail"),
    [
        ({"priority": "3"}, "priority", 'invalid type: string "3", expected u8'),
        ({"priority": 256}, "priority", "invalid value: integer `256`, expected u8"),
        ({"name": None}, "name", "invalid type: null, expected a string"),
        ({"disabled": "yes"}, "disabled", 'invalid type: string "yes", expected a boolean'),
        ({"rules": {}}, "rules", "invalid type: map, expected a sequence"),
    ],
)
def test_wrong_json_type_names_file_directive_and_field(
    tmp_path: Path, changes: dict, key: str, detail: str
) -> None:
    write_pair(tmp_path, directive(2, **changes))
    err = load_error(tmp_path)
    assert str(err).startswith(f"{tmp_path / DIRECTIVES_FILE}: ")
    assert err.message == f"directive ID 2: {key}: {detail}"


def test_wrong_json_type_inside_a_rule(tmp_path: Path) -> None:
    bad = directive(2, rules=[rule(1), rule(2, timeout=-5, plugin_sid=["1"])])
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(directive(1), bad)})
    message = load_error(tmp_path).message
    assert message.startswith("directive ID 2: rules[1].")
    assert "timeout" in message or "plugin_sid" in message


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    d = directive(1, comment="x", rules=[rule(1, sub_category="Deny", note=1), rule(2)])
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(d)})
    (loaded,) = load_config(tmp_path).directives
    assert loaded.rules[0].subcategory == []


@pytest.mark.parametrize(
    "text", ['{"directives": [', "not json", '{"directives": [{"id": 1,}]}', ""]
)
def test_malformed_json(tmp_path: Path, text: str) -> None:
    write_config(tmp_path, {DIRECTIVES_FILE: text})
    err = load_error(tmp_path)
    assert err.message.startswith("invalid JSON")
    assert str(err).startswith(f"{tmp_path / DIRECTIVES_FILE}: invalid JSON")


def test_missing_directives_key(tmp_path: Path) -> None:
    write_config(tmp_path, {DIRECTIVES_FILE: {"directive": []}})
    assert load_error(tmp_path).message == "missing field `directives`"


def test_directory_not_found(tmp_path: Path) -> None:
    err = load_error(tmp_path / "nope")
    assert err.message == "configuration directory not found"
    assert str(err).startswith(str(tmp_path / "nope"))


# ---------------------------------------------------------------------------------------------
# several files: order, uniqueness across files, all or nothing


def test_error_in_second_file_fails_the_whole_load(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "directives_a_test.json": directives_file(directive(1), directive(2)),
            "directives_b_test.json": directives_file(directive(3, kingdom="")),
        },
    )
    result = None
    with pytest.raises(ConfigError) as info:
        result = load_config(tmp_path)
    assert result is None
    assert str(info.value) == (
        f"{tmp_path / 'directives_b_test.json'}: directive ID 3 kingdom is empty"
    )


def test_files_are_processed_in_lexicographic_order(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "directives_b_test.json": directives_file(directive(5, name="")),
            "directives_a_test.json": directives_file(directive(4, category="")),
        },
    )
    assert str(load_error(tmp_path)) == (
        f"{tmp_path / 'directives_a_test.json'}: directive ID 4 category is empty"
    )


def test_id_must_be_unique_across_files(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "directives_a_test.json": directives_file(directive(1)),
            "directives_b_test.json": directives_file(directive(2), directive(1)),
        },
    )
    assert str(load_error(tmp_path)) == (
        f"{tmp_path / 'directives_b_test.json'}: directive ID 1 already exist"
    )


def test_several_files_load_in_order_with_summaries(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "directives_b_test.json": directives_file(
                directive(3, rules=[rule(1), rule(2), rule(3)]), directive(4, disabled=True)
            ),
            "directives_a_test.json": directives_file(directive(1), directive(2)),
            "directives_c_test.json": directives_file(),
            "other_directives.json": "not even json, and not matched by the glob",
        },
    )
    config = load_config(tmp_path)
    assert [d.id for d in config.directives] == [1, 2, 3]
    summaries = [(f.path.name, f.directives, f.disabled, f.rules)
                 for f in config.files if f.kind == "directives"]
    assert summaries == [
        ("directives_a_test.json", 2, 0, 4),
        ("directives_b_test.json", 1, 1, 3),
        ("directives_c_test.json", 0, 0, 0),
    ]


def test_only_empty_and_disabled_files_cannot_load(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "directives_a_test.json": directives_file(),
            "directives_b_test.json": directives_file(directive(1, disabled=True)),
        },
    )
    err = load_error(tmp_path)
    assert err.message == "cannot load any directive"
    assert str(err) == f"{tmp_path}: cannot load any directive"


def test_no_directive_file_cannot_load(tmp_path: Path) -> None:
    write_config(tmp_path, {})
    assert load_error(tmp_path).message == "cannot load any directive"


def test_decoded_directive_values(tmp_path: Path) -> None:
    d = directive(
        9,
        all_rules_always_active=True,
        rules=[
            rule(1, type="TaxonomyRule", plugin_id=0, plugin_sid=[], product=["Firewall"],
                 category="Access Denied", subcategory=["Deny"], custom_label1="action",
                 custom_data1="deny"),
            rule(2, occurrence=5, reliability=10, timeout=4294967295, plugin_sid=[1, 2]),
        ],
    )
    write_config(tmp_path, {DIRECTIVES_FILE: directives_file(d)})
    (loaded,) = load_config(tmp_path).directives
    assert loaded.all_rules_always_active is True
    first, second = loaded.rules
    assert (first.type, first.product, first.category, first.subcategory) == (
        "TaxonomyRule", ["Firewall"], "Access Denied", ["Deny"]
    )
    assert (first.custom_label1, first.custom_data1, first.from_) == ("action", "deny", "HOME_NET")
    assert (second.occurrence, second.reliability, second.timeout, second.plugin_sid) == (
        5, 10, 4294967295, [1, 2]
    )
    assert second.sticky_different == "" and second.custom_data2 == ""


# ---------------------------------------------------------------------------------------------
# intel and vuln sources (docs/behaviour.md, "Intel and vuln sources")


def wise(name: str = "Wise", enabled: bool = True, config: str | None = None) -> dict:
    url = "http://wise:8081/ip/${ip}"
    return {"name": name, "type": "IP", "enabled": enabled, "plugin": "Wise",
            "config": config if config is not None else json.dumps({"url": url})}


def nesd(name: str = "Nessus", enabled: bool = True, config: str | None = None) -> dict:
    url = "http://nesd:8081/?ip=${ip}&port=${port}"
    return {"name": name, "type": "IP-Port", "enabled": enabled, "plugin": "Nesd",
            "config": config if config is not None else json.dumps({"url": url})}


def sources_dir(tmp_path: Path, intel: list[dict] | None, vuln: list[dict] | None) -> Path:
    files: dict[str, Any] = {DIRECTIVES_FILE: directives_file(directive(1))}
    if intel is not None:
        files["intel_test.json"] = {"intel_sources": intel}
    if vuln is not None:
        files["vuln_test.json"] = {"vuln_sources": vuln}
    return write_config(tmp_path, files)


@pytest.mark.parametrize("config", ["{ not json", "", '"http://wise"', "{}", '{"url": 5}'])
def test_enabled_wise_source_with_broken_config_is_fatal(tmp_path: Path, config: str) -> None:
    err = load_error(sources_dir(tmp_path, [wise(config=config)], None))
    assert "error parsing wise config" in err.message
    assert str(err).startswith(f"{tmp_path / 'intel_test.json'}: ")


@pytest.mark.parametrize(
    "config", ["{ not json", "[]", '{"url": "x", "allow_low_severity": "yes"}', "{}"]
)
def test_enabled_nesd_source_with_broken_config_is_fatal(tmp_path: Path, config: str) -> None:
    err = load_error(sources_dir(tmp_path, None, [nesd(config=config)]))
    assert "error parsing nesd config" in err.message
    assert str(err).startswith(f"{tmp_path / 'vuln_test.json'}: ")


def test_disabled_sources_with_broken_config_are_ignored(tmp_path: Path) -> None:
    config = load_config(
        sources_dir(tmp_path, [wise(enabled=False, config="{")], [nesd(enabled=False, config="")])
    )
    assert config.intel == ()
    assert config.vuln == ()


def test_only_enabled_sources_are_kept(tmp_path: Path) -> None:
    intel = [
        wise("first", config=json.dumps({"url": "http://a/${ip}"})),
        wise("off", enabled=False),
        wise("second", config=json.dumps({"url": "http://b/${ip}"})),
    ]
    vuln = [
        nesd("off", enabled=False),
        nesd("on", config=json.dumps({"url": "http://n/", "allow_low_severity": True})),
    ]
    config = load_config(sources_dir(tmp_path, intel, vuln))
    assert [(s.source.name, s.config.url) for s in config.intel] == [
        ("first", "http://a/${ip}"),
        ("second", "http://b/${ip}"),
    ]
    assert all(isinstance(s.config, WiseConfig) for s in config.intel)
    (only,) = config.vuln
    assert only.source.name == "on"
    assert isinstance(only.config, NesdConfig)
    assert (only.config.url, only.config.allow_low_severity) == ("http://n/", True)
    kinds = {f.kind: f.sources for f in config.files if f.kind in ("intel", "vuln")}
    assert kinds == {"intel": 3, "vuln": 2}


def test_nesd_allow_low_severity_defaults_to_false(tmp_path: Path) -> None:
    (only,) = load_config(sources_dir(tmp_path, None, [nesd()])).vuln
    assert only.config.allow_low_severity is False


def test_unknown_plugin_is_ignored(tmp_path: Path) -> None:
    other = {**wise("other"), "plugin": "Other", "config": "not json"}
    config = load_config(sources_dir(tmp_path, [other, wise()], None))
    assert [s.source.name for s in config.intel] == ["Wise"]


def test_no_source_files_means_no_plugins(tmp_path: Path) -> None:
    config = load_config(sources_dir(tmp_path, None, None))
    assert (config.intel, config.vuln) == ((), ())


@pytest.mark.parametrize("missing", ["name", "type", "enabled", "plugin", "config"])
def test_source_keys_are_required(tmp_path: Path, missing: str) -> None:
    source = copy.deepcopy(wise())
    del source[missing]
    err = load_error(sources_dir(tmp_path, [source], None))
    assert f"missing field `{missing}`" in err.message
    assert str(err).startswith(f"{tmp_path / 'intel_test.json'}: ")

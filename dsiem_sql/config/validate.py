"""Directive validation, in dsiem-backend's order and with its messages (docs/behaviour.md,
"Directive validation").

Three checks are added after dsiem-backend's, each with its own message: stages must be
numbered 1..N in array order, `sticky_different` must be a known field, and a reference `:N`
(also in custom data and protocol) must point to an earlier stage.
"""

from __future__ import annotations

import re

from dsiem_sql.config.models import DirectiveConfig, RuleConfig
from dsiem_sql.config.netparse import ParseError, list_items, parse_cidr, parse_u16

REFERENCE = re.compile(r"^:[1-9][0-9]?$")
# A custom data or protocol value of this shape is taken as a reference and validated.
REFERENCE_LIKE = re.compile(r"^:[0-9]+$")
ADDRESS_KEYWORDS = ("ANY", "HOME_NET", "!HOME_NET")
STICKY_FIELDS = (
    "PLUGIN_SID",
    "SRC_IP",
    "DST_IP",
    "SRC_PORT",
    "DST_PORT",
    "CUSTOM_DATA1",
    "CUSTOM_DATA2",
    "CUSTOM_DATA3",
)


class InvalidDirective(ValueError):
    pass


def validate_directive(d: DirectiveConfig, loaded_ids: set[int]) -> None:
    if d.id in loaded_ids:
        raise InvalidDirective(f"directive ID {d.id} already exist")
    for attr in ("name", "kingdom", "category"):
        if getattr(d, attr) == "":
            raise InvalidDirective(f"directive ID {d.id} {attr} is empty")
    if not 1 <= d.priority <= 5:
        raise InvalidDirective(f"directive ID {d.id} priority must be between 1 to 5")
    if len(d.rules) <= 1:
        raise InvalidDirective(
            f"directive ID {d.id} has no rule or only has one and therefore will never expire"
        )
    try:
        _validate_rules(d.rules)
    except InvalidDirective as exc:
        raise InvalidDirective(f"Directive ID {d.id} rules has error: {exc}") from None


def _validate_rules(rules: list[RuleConfig]) -> None:
    highest = max(r.stage for r in rules)
    seen: set[int] = set()
    for r in rules:
        s = r.stage
        if s == 0:
            raise InvalidDirective("rule stage cannot be zero")
        if s in seen:
            raise InvalidDirective(f"duplicate rule stage {s} found")
        seen.add(s)
        if s == 1 and r.occurrence != 1:
            raise InvalidDirective("rule stage 1 must have occurrence = 1")
        if r.type == "PluginRule":
            if r.plugin_id < 1:
                raise InvalidDirective(f"rule stage {s} plugin_id must be >= 1")
            if any(sid < 1 for sid in r.plugin_sid):
                raise InvalidDirective(f"rule stage {s} plugin_sid must be >= 1")
            if not r.plugin_sid:
                raise InvalidDirective("plugin_sid cannot be empty")
        else:
            if not r.product:
                raise InvalidDirective(
                    f"rule stage {s} is a TaxonomyRule and requires product to be defined"
                )
            if r.category == "":
                raise InvalidDirective(
                    f"rule stage {s} is a TaxonomyRule and requires category to be defined"
                )
        if r.reliability > 10:
            raise InvalidDirective(f"rule stage {s} reliability must be between 0 to 10")
        for attr, label, check in (
            ("port_from", "port_from", _check_ports),
            ("port_to", "port_to", _check_ports),
            ("from_", "from address", _check_addresses),
            ("to", "to address", _check_addresses),
        ):
            try:
                check(getattr(r, attr), s, highest)
            except ParseError as exc:
                raise InvalidDirective(f"rule stage {s} {label} is invalid: {exc}") from None
        for attr in ("custom_data1", "custom_data2", "custom_data3", "protocol"):
            value = getattr(r, attr)
            if REFERENCE_LIKE.match(value):
                try:
                    _check_reference(value, s, highest)
                except ParseError as exc:
                    raise InvalidDirective(f"rule stage {s} {attr} is invalid: {exc}") from None
        if r.sticky_different and r.sticky_different not in STICKY_FIELDS:
            raise InvalidDirective(
                f"rule stage {s} sticky_different is invalid: {r.sticky_different!r} "
                f"is not one of {', '.join(STICKY_FIELDS)}"
            )
    stages = [r.stage for r in rules]
    if stages != list(range(1, len(rules) + 1)):
        raise InvalidDirective(
            f"rule stages must be numbered 1 to {len(rules)} in array order, found {stages}"
        )


def _check_reference(value: str, stage: int, highest: int) -> None:
    if stage == 1:
        raise ParseError("first rule cannot have reference")
    if not REFERENCE.match(value) or int(value[1:]) > highest:
        raise ParseError(f"{value} is not a valid reference")
    if int(value[1:]) >= stage:
        raise ParseError(f"{value} is not a valid reference: it must point to an earlier stage")


def _bare_items(value: str) -> list[str]:
    """The items of a comma list as validation reads them: without any `!`, wherever it
    stands (matching removes them only from a negated item), and trimmed, as dsiem-backend
    reads them."""
    return [item.replace("!", "").strip() for _, item in list_items(value)]


def _check_ports(value: str, stage: int, highest: int) -> None:
    if value == "ANY":
        return
    if value.startswith(":"):
        _check_reference(value, stage, highest)
        return
    for item in _bare_items(value):
        if parse_u16(item) == 0:
            raise ParseError("0 is not a valid TCP/UDP port number")


def _check_addresses(value: str, stage: int, highest: int) -> None:
    if value in ADDRESS_KEYWORDS:
        return
    if value == "":
        raise ParseError("empty string")
    if value.startswith(":"):
        _check_reference(value, stage, highest)
        return
    for item in _bare_items(value):
        if item == "any":
            continue
        try:
            parse_cidr(item)
        except ParseError as exc:
            raise ParseError(f"{item}: {exc}") from None

"""Directive validation, in dsiem-backend's order and with its messages (docs/behaviour.md,
"Directive validation").

Three checks are added after dsiem-backend's, each with its own message: stages must be
numbered 1..N in array order, `sticky_different` must be a known field, and a reference `:N`
(also in custom data and protocol) must point to an earlier stage. Then the extensions are
checked (docs/extensions.md).
"""

from __future__ import annotations

import re

from dsiem_sql.config.extensions import (
    CROSS_REFERENCE_LIKE,
    EXTENDED_TYPES,
    KEY,
    KIND,
    PLUGIN_TYPES,
    cross_reference,
    rule_extensions,
    sticky_fields,
)
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
        if r.type in PLUGIN_TYPES:
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
            value = getattr(r, attr)
            try:
                if CROSS_REFERENCE_LIKE.match(value):
                    _check_cross_reference(attr, value, s, rules)
                else:
                    check(value, s, highest)
            except ParseError as exc:
                raise InvalidDirective(f"rule stage {s} {label} is invalid: {exc}") from None
        for attr in ("custom_data1", "custom_data2", "custom_data3", "protocol"):
            value = getattr(r, attr)
            try:
                if REFERENCE_LIKE.match(value):
                    _check_reference(value, s, highest)
                elif CROSS_REFERENCE_LIKE.match(value) and (
                        r.type in EXTENDED_TYPES or cross_reference(value) is not None):
                    # on a Dsiem rule, only a valid `:N.field` is taken for a reference
                    _check_cross_reference(attr, value, s, rules)
            except ParseError as exc:
                raise InvalidDirective(f"rule stage {s} {attr} is invalid: {exc}") from None
        for sticky in sticky_fields(r.sticky_different):
            if sticky not in STICKY_FIELDS:
                raise InvalidDirective(
                    f"rule stage {s} sticky_different is invalid: {sticky!r} "
                    f"is not one of {', '.join(STICKY_FIELDS)}"
                )
        _check_extensions(r)
    stages = [r.stage for r in rules]
    if stages != list(range(1, len(rules) + 1)):
        raise InvalidDirective(
            f"rule stages must be numbered 1 to {len(rules)} in array order, found {stages}"
        )
    _check_references_to_absence(rules)
    _check_marked(rules)


def _check_extensions(r: RuleConfig) -> None:
    """An extension only on a rule of an extended type; an absence stage's own limits."""
    s = r.stage
    used = rule_extensions(r)
    if used and r.type not in EXTENDED_TYPES:
        extended = "ExtendedPluginRule" if r.type in PLUGIN_TYPES else "ExtendedTaxonomyRule"
        raise InvalidDirective(
            f"rule stage {s} uses an extension of dsiem-sql ({', '.join(used)}), so its type "
            f"must be {extended}, not {r.type}: other Dsiem backends would ignore the "
            f"extension and run the directive with another meaning"
        )
    fields = sticky_fields(r.sticky_different)
    if len(set(fields)) < len(fields):
        raise InvalidDirective(
            f"rule stage {s} sticky_different is invalid: {r.sticky_different!r} names a "
            f"field twice"
        )
    if not r.absent:
        return
    if s == 1:
        raise InvalidDirective("rule stage 1 cannot be an absence stage: an event opens the "
                               "backlog")
    if r.occurrence != 1:
        raise InvalidDirective(f"rule stage {s} is an absence stage and must have occurrence "
                               f"= 1 (one matching event ends the backlog)")
    if r.timeout == 0:
        raise InvalidDirective(f"rule stage {s} is an absence stage and needs a timeout "
                               f"above 0: the time in which no matching event may arrive")
    if r.sticky_different:
        raise InvalidDirective(f"rule stage {s} is an absence stage and cannot have "
                               f"sticky_different: it takes no event")


def _check_cross_reference(attr: str, value: str, stage: int, rules: list[RuleConfig]) -> None:
    """`:N.field`: a known field of the same kind, of an earlier stage."""
    if stage == 1:
        raise ParseError("first rule cannot have reference")
    ref = cross_reference(value)
    if ref is None:
        raise ParseError(f"{value} is not a valid reference: `:N.field` names one of "
                         f"{', '.join(KEY.values())}")
    n, source = ref
    if n >= stage:
        raise ParseError(f"{value} is not a valid reference: it must point to an earlier stage")
    if KIND[source] != KIND[attr]:
        raise ParseError(f"{value} is not a valid reference: it joins {KEY[attr]} "
                         f"({KIND[attr]}) to {KEY[source]} ({KIND[source]}), fields of "
                         f"different kinds")


def _check_references_to_absence(rules: list[RuleConfig]) -> None:
    """A reference needs the first event of its stage, which an absence stage never has."""
    absent = {r.stage for r in rules if r.absent}
    if not absent:
        return
    for r in rules:
        for attr in KIND:
            value = getattr(r, attr)
            ref = cross_reference(value)
            n = ref[0] if ref is not None else (
                int(value[1:]) if REFERENCE.match(value) else None)
            if n in absent:
                raise InvalidDirective(
                    f"rule stage {r.stage} {KEY[attr]} is invalid: {value} refers to stage "
                    f"{n}, an absence stage, which takes no event to refer to"
                )


def _check_marked(rules: list[RuleConfig]) -> None:
    """Every rule of a directive with an extended rule is extended: even a Go Dsiem that
    did not validate the type would then never open a backlog of it."""
    extended = [r.stage for r in rules if r.type in EXTENDED_TYPES]
    if not extended:
        return
    for r in rules:
        if r.type not in EXTENDED_TYPES:
            raise InvalidDirective(
                f"rule stage {r.stage} type must be Extended{r.type}: stage {extended[0]} is "
                f"of an extended type, and every rule of a directive that uses extensions "
                f"must be, so that no other Dsiem backend runs a part of it"
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

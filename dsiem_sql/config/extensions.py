"""dsiem-sql's directive extensions (docs/extensions.md): absence stages, sticky-different on
several fields, and references to another field of an earlier stage.

A rule that uses one must have an extended type, and so must every rule of its directive:
Go Dsiem skips a directive with an unknown rule type, dsiem-backend and dsiem-rs refuse the
whole file, so no other backend runs such a directive with another meaning.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dsiem_sql.config.models import DirectiveConfig, RuleConfig

# extended type -> the Dsiem type it extends
EXTENDED_TYPES = {"ExtendedPluginRule": "PluginRule", "ExtendedTaxonomyRule": "TaxonomyRule"}
PLUGIN_TYPES = ("PluginRule", "ExtendedPluginRule")

# `:N.field`: the value of `field` of stage N (its first event's), for another field
CROSS_REFERENCE = re.compile(r"^:([1-9][0-9]?)\.([a-z_0-9]+)$")
CROSS_REFERENCE_LIKE = re.compile(r"^:[0-9]+\.")

# a rule key -> (its attribute, its kind); a reference joins two fields of one kind
REFERABLE = {
    "from": ("from_", "address"),
    "to": ("to", "address"),
    "port_from": ("port_from", "port"),
    "port_to": ("port_to", "port"),
    "protocol": ("protocol", "protocol"),
    "custom_data1": ("custom_data1", "custom data"),
    "custom_data2": ("custom_data2", "custom data"),
    "custom_data3": ("custom_data3", "custom data"),
}
KIND = {attr: kind for attr, kind in REFERABLE.values()}
KEY = {attr: key for key, (attr, _) in REFERABLE.items()}


def sticky_fields(value: str) -> tuple[str, ...]:
    """The fields of `sticky_different`: one, or several separated by commas."""
    return tuple(item.strip() for item in value.split(",")) if value else ()


def cross_reference(value: str) -> tuple[int, str] | None:
    """(stage, attribute) of a reference `:N.field` to a known field, or None."""
    m = CROSS_REFERENCE.match(value)
    if m is None or m[2] not in REFERABLE:
        return None
    return int(m[1]), REFERABLE[m[2]][0]


def rule_extensions(r: RuleConfig) -> list[str]:
    """The extensions a rule uses, by name."""
    names = []
    if r.absent:
        names.append("absence")
    fields = sticky_fields(r.sticky_different)
    if len(fields) > 1:
        names.append(f"sticky-different on {len(fields)} fields")
    for attr in KIND:
        ref = cross_reference(getattr(r, attr))
        if ref is not None:
            names.append(f"reference {KEY[attr]} = stage {ref[0]}'s {KEY[ref[1]]}")
    return names


def directive_extensions(d: DirectiveConfig) -> list[str]:
    """The extensions of a directive, each once, in stage order."""
    return list(dict.fromkeys(name for r in d.rules for name in rule_extensions(r)))


def is_extended(d: DirectiveConfig) -> bool:
    return any(r.type in EXTENDED_TYPES for r in d.rules)

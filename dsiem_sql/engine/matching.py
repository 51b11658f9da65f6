"""Rule conditions, compiled once per distinct rule text (docs/behaviour.md, from "Address
lists" to "TaxonomyRules").

A compiled condition is `None` when it always passes, else a function of the event value.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from dsiem_sql.config.assets import Assets
from dsiem_sql.config.netparse import (
    NetNumber,
    canonical_ip,
    ip_number,
    list_items,
    net_number,
    try_parse_cidr,
)

AddressCond = Callable[[str, Assets], bool]
TextCond = Callable[[str], bool]


def address_in_list(ip_text: str, items: tuple[tuple[bool, NetNumber], ...]) -> bool:
    """The CSV address list algorithm: the first item containing the address decides."""
    ip = ip_number(ip_text)
    result = False
    for negated, (version, network, mask) in items:
        if ip is not None and ip[0] == version and ip[1] & mask == network:
            return not negated
        if negated:
            result = True
    return result


def _address_items(value: str) -> tuple[tuple[bool, NetNumber], ...]:
    items = []
    for negated, item in list_items(value):
        # A bare address gets /32 or /128 from its own family (docs/behaviour.md,
        # "Address lists").
        net = try_parse_cidr(item)
        if net is not None:
            items.append((negated, net_number(net)))
    return tuple(items)


@lru_cache(maxsize=65536)
def literal_ip(value: str) -> str | None:
    """The address a rule's `from`/`to` names literally (canonical text), or None."""
    return canonical_ip(value)


@lru_cache(maxsize=8192)
def compile_address(value: str) -> AddressCond | None:
    if value == "ANY":
        return None
    if value == "HOME_NET":
        return lambda ip, assets: assets.in_home_net(ip)
    if value == "!HOME_NET":
        return lambda ip, assets: not assets.in_home_net(ip)
    host = canonical_ip(value)
    if host is not None:
        return lambda ip, assets: ip == host
    items = _address_items(value)
    return lambda ip, assets: address_in_list(ip, items)


def _term_table(value: str) -> tuple[dict[str, bool], bool]:
    """Precompute the term algorithm: the decision of each item's first occurrence, and
    the result when no item equals the term."""
    decisions: dict[str, bool] = {}
    default = False
    for negated, item in list_items(value):
        if negated:
            default = True
        decisions.setdefault(item, not negated)
    return decisions, default


@lru_cache(maxsize=8192)
def compile_terms(value: str) -> TextCond | None:
    """Port condition on the decimal text of the port."""
    if value == "ANY":
        return None
    decisions, default = _term_table(value)
    return lambda term: decisions.get(term, default)


@lru_cache(maxsize=8192)
def compile_custom_data(value: str) -> TextCond | None:
    if value in ("", "ANY"):
        return None
    if "," in value:
        return compile_terms(value)
    if value.startswith("!"):
        negated = value[1:].lower()
        return lambda text: text.lower() != negated
    wanted = value.lower()
    return lambda text: text.lower() == wanted


@lru_cache(maxsize=1024)
def compile_protocol(value: str) -> TextCond | None:
    if value in ("", "ANY"):
        return None
    return lambda text: text == value

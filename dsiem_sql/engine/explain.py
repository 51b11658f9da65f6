"""Why a rule does or does not match an event, field by field: the words of `dsiem-sql
explain` (docs/explain.md). Pure.

`explain_rule` mirrors `Rule.matches` (engine/rules.py) and the conditions it compiles
(engine/matching.py): the same fields in the same order, the same list algorithms, written
out again so that each refusal can say which item decided it. `Rule.matches` itself stays as
it is, compiled and fast; a property test (tests/unit/test_explain_rule.py) checks that both
always agree. `explain_event` applies it to every stage of a directive, for one event taken
alone, and `describe_rule` says a rule in words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dsiem_sql.config.assets import Asset, Assets
from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.config.netparse import (
    canonical_ip,
    ip_number,
    list_items,
    net_number,
    try_parse_cidr,
)
from dsiem_sql.engine.engine import EngineOptions, resolve_chained
from dsiem_sql.engine.event import Event
from dsiem_sql.engine.rules import REFERENCE_TARGETS, FirstEvent, Rule

# rule attribute -> its name in the directive file
FIELD_NAMES = {"from_": "from"}
# the event field each address and port field of a rule is matched with
_EVENT_FIELD = {"from_": "src_ip", "to": "dst_ip", "port_from": "src_port", "port_to": "dst_port"}
_CUSTOM_DATA = ("custom_data1", "custom_data2", "custom_data3")


def field_name(attr: str) -> str:
    return FIELD_NAMES.get(attr, attr)


def quoted(text: str) -> str:
    """A string as JSON writes it: quotes, and escapes for control characters."""
    return json.dumps(text, ensure_ascii=False)


def listed(values: tuple) -> str:
    """A rule's list (`plugin_sid`, `product`, `subcategory`) as the directive writes it."""
    return json.dumps(list(values), ensure_ascii=False)


@dataclass(frozen=True)
class RuleMatch:
    """Whether a rule matches an event; when not, the first field that refused it, in the
    order `Rule.matches` checks them, and why (both values). `notes`: the fields of the rule
    that were not checked, and why."""

    matches: bool
    field: str | None = None
    reason: str | None = None
    notes: tuple[str, ...] = ()


def _refused(attr: str, why: str, notes: list[str]) -> RuleMatch:
    name = field_name(attr)
    return RuleMatch(False, name, f"{name}: {why}", tuple(notes))


def explain_rule(
    rule: Rule,
    e: Event,
    assets: Assets,
    match_protocol: bool = False,
    taxonomy_custom_data: bool = False,
) -> RuleMatch:
    """`rule.matches(e, assets, match_protocol, taxonomy_custom_data)`, with its reason."""
    notes: list[str] = []
    if rule.is_plugin:
        if e.plugin_id != rule.plugin_id:
            return _refused("plugin_id", f"{e.plugin_id} is not {rule.plugin_id}", notes)
        if e.plugin_sid not in rule.plugin_sid:
            return _refused("plugin_sid", f"{e.plugin_sid} not in {listed(rule.plugin_sid)}",
                            notes)
    else:
        if e.category != rule.category:
            return _refused("category", f"{quoted(e.category)} is not {quoted(rule.category)}",
                            notes)
        if e.product not in rule.product:
            return _refused("product", f"{quoted(e.product)} not in {listed(rule.product)}",
                            notes)
        sub = rule.subcategory
        if sub and e.subcategory not in sub and "ANY" not in sub:
            return _refused("subcategory", f"{quoted(e.subcategory)} not in {listed(sub)}",
                            notes)
    protocol_reference = any(attr == "protocol" for attr, _ in rule.references)
    if rule.protocol not in ("", "ANY"):
        if protocol_reference:
            notes.append(f"protocol {rule.protocol} is a reference that stands for no value: "
                         "not checked")
        elif not match_protocol:
            notes.append(f"protocol {rule.protocol} is not checked (without --match-protocol)")
        elif e.protocol != rule.protocol:
            return _refused("protocol", f"{quoted(e.protocol)} is not {quoted(rule.protocol)}",
                            notes)
    for attr in ("from_", "to"):
        why = address_refusal(getattr(rule, attr), getattr(e, _EVENT_FIELD[attr]), assets)
        if why is not None:
            return _refused(attr, why, notes)
    for attr in ("port_from", "port_to"):
        port = str(getattr(e, _EVENT_FIELD[attr]))
        why = terms_refusal(getattr(rule, attr), port, port)
        if why is not None:
            return _refused(attr, why, notes)
    for attr in _CUSTOM_DATA:
        value = getattr(rule, attr)
        if value in ("", "ANY"):
            continue
        if not (rule.is_plugin or taxonomy_custom_data):
            notes.append(f"{attr} is not checked on a TaxonomyRule "
                         "(without --taxonomy-custom-data)")
            continue
        why = custom_data_refusal(value, getattr(e, attr))
        if why is not None:
            return _refused(attr, why, notes)
    return RuleMatch(True, notes=tuple(notes))


def address_refusal(value: str, ip: str, assets: Assets) -> str | None:
    """Why a rule's `from` or `to` refuses the address `ip`, or None when it takes it
    (engine/matching.py, compile_address and address_in_list)."""
    if value == "ANY":
        return None
    if value in ("HOME_NET", "!HOME_NET"):
        home = assets.in_home_net(ip)
        if value == "HOME_NET":
            if home:
                return None
            whitelisted = _containing(assets, ip, whitelisted=True)
            if whitelisted is not None:
                return (f"{ip} is not in HOME_NET (its asset {_asset(whitelisted)} is "
                        "whitelisted, and whitelisted assets are not HOME_NET)")
            return f"{ip} is not in HOME_NET"
        if not home:
            return None
        asset = _containing(assets, ip, whitelisted=False)
        where = f" (asset {_asset(asset)})" if asset is not None else ""
        return f"{ip} is in HOME_NET{where}, and the rule says !HOME_NET"
    host = canonical_ip(value)
    if host is not None:
        return None if ip == host else f"{ip} is not {value}"
    number = ip_number(ip)
    negated_seen = False
    skipped = []
    for negated, item in list_items(value):
        net = try_parse_cidr(item)
        if net is None:  # skipped: it neither matches nor counts as a negated item
            skipped.append(f"!{item}" if negated else item)
            continue
        version, network, mask = net_number(net)
        if number is not None and number[0] == version and number[1] & mask == network:
            return f"{ip} is excluded by !{item}" if negated else None
        negated_seen = negated_seen or negated
    if negated_seen:
        return None
    unparsed = (f" ({', '.join(quoted(s) for s in skipped)} "
                f"{'does' if len(skipped) == 1 else 'do'} not parse and match nothing)"
                if skipped else "")
    return f"{ip} is not in {value}{unparsed}"


def terms_refusal(value: str, term: str, shown_term: str) -> str | None:
    """Why a port list (or a comma list of custom data) refuses `term`, or None
    (engine/matching.py, compile_terms: the first item equal to the term decides; else the
    list takes it when it has a negated item)."""
    if value == "ANY":
        return None
    negated_seen = False
    for negated, item in list_items(value):
        if item == term:
            return f"{shown_term} is excluded by !{item}" if negated else None
        negated_seen = negated_seen or negated
    if negated_seen:
        return None
    return f"{shown_term} not in {value}"


def custom_data_refusal(value: str, text: str) -> str | None:
    """Why a rule's `custom_dataN` refuses the event's value, or None (engine/matching.py,
    compile_custom_data)."""
    if value in ("", "ANY"):
        return None
    if "," in value:
        return terms_refusal(value, text, quoted(text))
    if value.startswith("!"):
        if text.lower() != value[1:].lower():
            return None
        return f"{quoted(text)} is excluded by {value} (case-insensitive)"
    if text.lower() == value.lower():
        return None
    return f"{quoted(text)} is not {quoted(value)} (case-insensitive)"


def _containing(assets: Assets, ip: str, whitelisted: bool) -> Asset | None:
    """The first asset (whitelisted or not) that contains `ip`."""
    number = ip_number(ip)
    if number is None:
        return None
    for a in assets.assets:
        version, network, mask = net_number(a.network)
        if a.whitelisted == whitelisted and number[0] == version and number[1] & mask == network:
            return a
    return None


def _asset(a: Asset) -> str:
    return f"{quoted(a.name)} {a.network}"


def whitelisting_asset(e: Event, assets: Assets) -> Asset | None:
    """The whitelisted asset that makes the engine drop `e` before any directive (its
    `src_ip` is inside it; docs/behaviour.md, "Whitelist"), or None."""
    if not assets.is_whitelisted(e.src_ip):
        return None
    return _containing(assets, e.src_ip, whitelisted=True)


def valued_asset(assets: Assets, ip: str) -> Asset | None:
    """The first asset that gives `ip` its value (`Assets.value`: the highest value of the
    assets containing it, whitelisted ones too), or None when no asset contains it."""
    number = ip_number(ip)
    value = assets.value(ip)
    if number is None or value == 0:
        return None
    for a in assets.assets:
        version, network, mask = net_number(a.network)
        if a.value == value and number[0] == version and number[1] & mask == network:
            return a
    return None


# -- one event against the stages of a directive --------------------------------------------


@dataclass(frozen=True)
class StageMatch:
    stage: int
    name: str
    match: RuleMatch


def explain_event(
    directive: DirectiveConfig, e: Event, assets: Assets, options: EngineOptions
) -> tuple[Asset | None, list[StageMatch]]:
    """Whether `e`, taken alone, matches each stage of `directive`; and the whitelisted asset
    that drops it before any directive, if any (then no stage matches).

    A reference `:N` points at what stage N's first event had. For a lone event it is taken
    as that event itself: in value mode (the default) the reference then stands for the
    event's own value (which it matches); in rule mode it is Go Dsiem's copy of rule N's text,
    or of the event's value where that text is a keyword, as when this event opens the
    backlog (docs/behaviour.md, "References"). Each stage notes what its references became.
    """
    rules = [Rule.from_config(r) for r in directive.rules]
    rule_mode = options.reference_mode == "rule"
    if rule_mode:
        resolved = resolve_chained(rules, e)
    else:
        first = FirstEvent.of(e)
        resolved = [r.replace(**{attr: first.text(r.source(attr)) for attr, _ in r.references})
                    for r in rules]
    whitelisted = whitelisting_asset(e, assets)
    found = []
    for rule, effective in zip(rules, resolved, strict=True):
        notes = [_reference_note(attr, n, getattr(rule, attr), getattr(effective, attr),
                                 rule_mode, rule.source(attr))
                 for attr, n in rule.references
                 if getattr(rule, attr) != getattr(effective, attr)]
        if whitelisted is not None:
            match = RuleMatch(False, "src_ip", (
                f"whitelisted by asset {_asset(whitelisted)}: the engine drops events from "
                f"src_ip {e.src_ip} before any directive"), tuple(notes))
        else:
            match = explain_rule(effective, e, assets, options.match_protocol,
                                 options.taxonomy_custom_data)
            if rule.absent and match.matches:
                notes.append(f"stage {rule.stage} is an absence stage: this event, coming "
                             "while the stage waits, ends the backlog")
            match = RuleMatch(match.matches, match.field, match.reason,
                              (*notes, *match.notes))
        found.append(StageMatch(rule.stage, rule.name, match))
    return whitelisted, found


def _reference_note(attr: str, n: int, written: str, effective: str, rule_mode: bool,
                    source: str) -> str:
    """What a reference became for a lone event (see `explain_event`)."""
    name = field_name(attr)
    shown = quoted(effective) if attr.startswith("custom") or attr == "protocol" else effective
    if rule_mode:
        return (f"{name} is {written}: {shown} when this event opens the backlog "
                f"(--reference-mode rule copies rule {n}'s {field_name(source)})")
    return (f"{name} is {written}, stage {n}'s {REFERENCE_TARGETS[source]}: for a lone "
            f"event, its own: {shown}")


# -- a rule in words --------------------------------------------------------------------------


def describe_rule(rule: Rule, shown: dict[str, str] | None = None, counts: bool = True,
                  options: EngineOptions | None = None) -> str:
    """What a rule takes, in words: its event keys, addresses, ports, protocol, custom data,
    and (with `counts`) how many events within what time, sticky-different and reliability.
    `shown` gives other words for some fields (by attribute: `from_`, `port_to`,
    `custom_data1`, ...), such as a value with the reference it came from. With `options`,
    a protocol or custom data that those options leave unchecked says so."""
    shown = shown or {}
    unchecked_protocol = options is not None and not options.match_protocol
    unchecked_custom = options is not None and not (rule.is_plugin or
                                                    options.taxonomy_custom_data)

    def text(attr: str) -> str:
        if attr in shown:
            return shown[attr]
        value = getattr(rule, attr)
        return quoted(value) if attr in _CUSTOM_DATA else value

    if rule.is_plugin:
        sids = ", ".join(str(s) for s in rule.plugin_sid)
        keys = f"plugin {rule.plugin_id} SID{'s' if len(rule.plugin_sid) != 1 else ''} {sids}"
    else:
        keys = (f"product {' or '.join(quoted(p) for p in rule.product)}, "
                f"category {quoted(rule.category)}")
        if rule.subcategory:
            keys += f", subcategory {' or '.join(quoted(s) for s in rule.subcategory)}"
    parts = [keys, f"from {text('from_')} to {text('to')}",
             f"ports {text('port_from')} -> {text('port_to')}"]
    if rule.protocol not in ("", "ANY") or "protocol" in shown:
        parts.append(f"protocol {text('protocol')}" + (
            " (not checked without --match-protocol)" if unchecked_protocol else ""))
    for attr in _CUSTOM_DATA:
        if getattr(rule, attr) not in ("", "ANY") or attr in shown:
            parts.append(f"{attr} {text(attr)}" + (
                " (not checked on a TaxonomyRule without --taxonomy-custom-data)"
                if unchecked_custom else ""))
    if not counts:
        return "; ".join(parts)
    if rule.absent:
        parts.append(f"absence: no such event within {rule.timeout} s (one ends the backlog)")
        parts.append(f"reliability {rule.reliability}")
        return "; ".join(parts)
    count = f"{rule.occurrence} event{'' if rule.occurrence == 1 else 's'}"
    if rule.stage > 1:
        count += f" within {rule.timeout} s"
    if "," in rule.sticky_different:
        count += f", each with a different combination of {rule.sticky_different}"
    elif rule.sticky_different:
        count += f", each with a different {rule.sticky_different}"
    parts.append(count)
    parts.append(f"reliability {rule.reliability}")
    return "; ".join(parts)

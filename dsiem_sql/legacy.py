"""Saved backlogs of the legacy backends (SPEC §11): the [M] format (§11.2, §11.4) and the
[R] format (§11.5), turned into engine backlogs.

Both formats are read by one model; [R] is recognised per backlog by its unresolved `:N`
references and `saved_*_socketaddr` arrays. A backlog keeps its own rules; references are
resolved from the saved addresses and ports when that is unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import attrgetter
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dsiem_sql.config.models import U8, RuleConfig
from dsiem_sql.config.netparse import canonical_ip
from dsiem_sql.config.validate import STICKY_FIELDS
from dsiem_sql.engine.engine import EngineOptions
from dsiem_sql.engine.rules import REFERENCE_TARGETS, Rule, reference_of
from dsiem_sql.engine.state import Backlog, Directive, Stage

U16 = Annotated[int, Field(ge=0, le=65535)]
STRICT = ConfigDict(strict=True, extra="ignore", populate_by_name=True)
INT_STICKY = ("PLUGIN_SID", "SRC_PORT", "DST_PORT")


class SavedSticky(BaseModel):
    model_config = STRICT
    sdiff_string: list[str] = Field(default_factory=list)
    sdiff_int: list[int] = Field(default_factory=list)


class SavedRule(RuleConfig):
    """A directive rule as saved in a backlog, with its runtime state."""

    start_time: int = 0
    end_time: int = 0
    status: str = ""
    saved_sticky_diffdata: SavedSticky | None = None
    saved_event_ids: list[str] = Field(default_factory=list)


class SavedRecord(BaseModel):
    model_config = STRICT
    provider: str
    term: str
    result: str


class SavedCustomData(BaseModel):
    model_config = STRICT
    label: str = ""
    content: str


class SavedBacklog(BaseModel):
    model_config = STRICT

    alarm_id: str = Field(min_length=1)
    title: str
    status: str
    tag: str
    kingdom: str
    category: str
    created_time: int
    update_time: int
    risk: U8
    risk_class: str
    rules: list[SavedRule] = Field(min_length=1)
    src_ips: list[str]
    dst_ips: list[str]
    networks: list[str]
    intel_hits: list[SavedRecord] = Field(default_factory=list)
    vulnerabilities: list[SavedRecord] = Field(default_factory=list)
    custom_data: list[SavedCustomData] = Field(default_factory=list)
    saved_last_srcport: U16 = 0
    saved_last_dstport: U16 = 0
    saved_src_socketaddr: list[str] = Field(default_factory=list)
    saved_dst_socketaddr: list[str] = Field(default_factory=list)


SAVED_FILE = TypeAdapter(list[SavedBacklog])


class Skip(Exception):
    """A backlog that cannot be imported; the message is the reason."""


def title_matches(directive_name: str, title: str) -> bool:
    """Placeholder-aware (§11.6 item 1): `SRC_IP` / `DST_IP` in the name match anything."""
    if title == directive_name:
        return True
    pattern = re.escape(directive_name).replace("SRC_IP", ".+").replace("DST_IP", ".+")
    return re.fullmatch(pattern, title) is not None


def _socket_ports(addresses: list[str]) -> list[int]:
    ports = []
    for text in addresses:
        _, sep, port = text.rpartition(":")
        if sep and port.isdigit():
            ports.append(int(port))
    return ports


def _only(values: list, what: str) -> str:
    distinct = list(dict.fromkeys(values))
    if len(distinct) != 1:
        raise Skip(f"cannot resolve reference to {what}: {len(distinct)} candidate values")
    return str(distinct[0])


def _single_value(attr: str, text: str) -> str | None:
    """The one value a rule field allows, or None when it allows several."""
    if attr in ("from_", "to"):
        return canonical_ip(text)
    if attr in ("port_from", "port_to"):
        return text if text.isdigit() else None
    if text in ("", "ANY") or "," in text or text.startswith("!"):
        return None
    return text


def _resolve(saved: SavedBacklog, rules: list[Rule]) -> list[Rule]:
    """Replace each `:N` by the value it stood for: the referenced rule's single value, or
    else the only value the saved backlog holds for that field."""
    if not any(rule.references for rule in rules):  # [M]: resolved when saved
        return rules
    src_ports = _socket_ports(saved.saved_src_socketaddr) or [saved.saved_last_srcport]
    dst_ports = _socket_ports(saved.saved_dst_socketaddr) or [saved.saved_last_dstport]
    saved_values = {
        "from_": ("source address", saved.src_ips),
        "to": ("destination address", saved.dst_ips),
        "port_from": ("source port", [p for p in src_ports if p]),
        "port_to": ("destination port", [p for p in dst_ports if p]),
        "custom_data1": ("custom data", [c.content for c in saved.custom_data]),
        "custom_data2": ("custom data", [c.content for c in saved.custom_data]),
        "custom_data3": ("custom data", [c.content for c in saved.custom_data]),
    }
    resolved: list[Rule] = []
    for rule in rules:
        changes: dict[str, str] = {}
        for attr, n in rule.references:
            if n >= rule.stage:
                raise Skip(f"rule stage {rule.stage} {attr.rstrip('_')} refers to stage {n}")
            referenced = getattr(resolved[n - 1], attr)
            value = _single_value(attr, referenced)
            if value is None:
                if attr == "protocol":
                    value = referenced
                else:
                    what, values = saved_values[attr]
                    value = _only(values, what)
            changes[attr] = value
        resolved.append(rule.replace(**changes))
    return resolved


RULE_FIELDS = tuple(RuleConfig.model_fields)
# the fields `Rule.replace` can change: plain values, or the conditions it recompiles
_REPLACEABLE = frozenset(RULE_FIELDS) - {"stage", "type", "plugin_sid", "product", "subcategory"}


_rule_values = attrgetter(*RULE_FIELDS)


def _compile(saved: SavedRule, template: Rule | None, template_config: RuleConfig | None) -> Rule:
    """The saved rule, compiled. Most saved rules differ from the directive's rule only in
    resolved references, so they are its copy with those fields replaced: the template is
    shared where nothing differs, and only the changed conditions are compiled."""
    if template is not None and template_config is not None:
        values, original = _rule_values(saved), _rule_values(template_config)
        if values == original:
            return template
        changes = {k: v for k, v, o in zip(RULE_FIELDS, values, original, strict=True) if v != o}
        if changes.keys() <= _REPLACEABLE and not any(
            reference_of(k, v) for k, v in changes.items() if k in REFERENCE_TARGETS
        ):
            return template.replace(**changes)
    return Rule.from_config(saved)


def _sticky_values(rule: SavedRule) -> list:
    data = rule.saved_sticky_diffdata
    if data is None or not rule.sticky_different:
        return []
    if rule.sticky_different not in STICKY_FIELDS:
        raise Skip(f"rule stage {rule.stage} has an unknown sticky_different value")
    return list(data.sdiff_int if rule.sticky_different in INT_STICKY else data.sdiff_string)


@dataclass
class Converted:
    backlog: Backlog
    legacy_format: str  # "M" or "R"


def to_backlog(
    saved: SavedBacklog, directive: Directive, options: EngineOptions, seq: int
) -> Converted:
    """The engine backlog a saved one stands for (SPEC §11.3), or `Skip` with the reason."""
    name = directive.config.name
    if not title_matches(name, saved.title):
        raise Skip(f"different title detected: {name!r} vs {saved.title!r}")
    stages_numbers = [r.stage for r in saved.rules]
    if stages_numbers != list(range(1, len(saved.rules) + 1)):
        raise Skip(f"rule stages are not 1..N in order: {stages_numbers}")
    pending = [r.stage for r in saved.rules if r.status == ""]
    if not pending:
        raise Skip("cannot determine the current stage")
    same_shape = len(directive.rules) == len(saved.rules)
    try:
        rules = [
            _compile(r, directive.rules[i], directive.config.rules[i])
            if same_shape
            else Rule.from_config(r)
            for i, r in enumerate(saved.rules)
        ]
    except ValueError as exc:  # e.g. a reference like ":x" in an address field
        raise Skip(f"invalid rule: {exc}") from None
    unresolved = any(r.references for r in rules)
    rules = _resolve(saved, rules)
    stages = [
        Stage(
            rule,
            True,  # resolved
            dict.fromkeys(s.saved_event_ids),
            dict.fromkeys(_sticky_values(s)) if s.saved_sticky_diffdata else {},
            s.start_time,
            s.end_time,
            s.status,
        )
        for rule, s in zip(rules, saved.rules, strict=True)
    ]
    src_ports = _socket_ports(saved.saved_src_socketaddr)
    dst_ports = _socket_ports(saved.saved_dst_socketaddr)
    b = Backlog(
        id=saved.alarm_id,
        seq=seq,
        directive=directive,
        definition=directive.config,
        title=saved.title,
        status=options.status,
        tag=options.tag,
        stages=stages,
        current_stage=min(pending),
        risk=saved.risk,
        risk_class=saved.risk_class,
        src_ips=dict.fromkeys(_ips(saved.src_ips)),
        dst_ips=dict.fromkeys(_ips(saved.dst_ips)),
        networks=dict.fromkeys(saved.networks),
        custom_data=dict.fromkeys((c.label, c.content) for c in saved.custom_data if c.content),
        intel_hits=dict.fromkeys((h.provider, h.term, h.result) for h in saved.intel_hits),
        vulnerabilities=dict.fromkeys(
            (v.provider, v.term, v.result) for v in saved.vulnerabilities
        ),
        created_time=saved.created_time,
        update_time=saved.update_time,
        last_srcport=saved.saved_last_srcport or (src_ports[-1] if src_ports else 0),
        last_dstport=saved.saved_last_dstport or (dst_ports[-1] if dst_ports else 0),
        # [R]'s `ip:port` / `[ipv6]:port` pairs: the vulnerability search terms (§8.5)
        src_sockets=dict.fromkeys(a for a in saved.saved_src_socketaddr if not a.endswith(":0")),
        dst_sockets=dict.fromkeys(a for a in saved.saved_dst_socketaddr if not a.endswith(":0")),
    )
    b.event_ids = {e for s in stages for e in s.event_ids}
    fmt = "R" if unresolved or saved.saved_src_socketaddr or saved.saved_dst_socketaddr else "M"
    return Converted(b, fmt)


def _ips(values: list[str]) -> list[str]:
    out = []
    for v in values:
        ip = canonical_ip(v)
        if ip is None:
            raise Skip(f"{v!r} is not an IP address")
        out.append(ip)
    return out

"""Saved backlogs of the legacy backends, dsiem-backend's format and dsiem-rs's, turned into
engine backlogs (docs/behaviour.md, "Saved backlogs").

Both formats are read by one model; dsiem-rs's is recognised per backlog by its unresolved
`:N` references and `saved_*_socketaddr` arrays. A backlog keeps its own rules; references are
resolved from the saved addresses and ports when that is unambiguous.
"""

from __future__ import annotations

import re
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Annotated, Any, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from dsiem_sql.config.models import U8, RuleConfig
from dsiem_sql.config.netparse import canonical_ip
from dsiem_sql.config.validate import STICKY_FIELDS
from dsiem_sql.engine.engine import EngineOptions
from dsiem_sql.engine.rules import REFERENCE_TARGETS, Rule, reference_of
from dsiem_sql.engine.state import Backlog, Directive, Stage
from dsiem_sql.logtext import shown

# The saved formats are TypedDicts, not models: pydantic validates a file of thousands of
# backlogs into plain dicts about twice as fast. Optional keys get their defaults from
# RULE_DEFAULTS / BACKLOG_DEFAULTS when a backlog is converted.
U16 = Annotated[int, Field(ge=0, le=65535)]
STRICT = ConfigDict(strict=True, extra="ignore")
INT_STICKY = ("PLUGIN_SID", "SRC_PORT", "DST_PORT")


@with_config(STRICT)
class SavedSticky(TypedDict, total=False):
    sdiff_string: list[str]
    sdiff_int: list[int]


# the runtime state a saved rule carries besides the directive rule's fields, with defaults
RULE_STATE: dict[str, tuple[Any, Any]] = {
    "start_time": (int, 0),
    "end_time": (int, 0),
    "status": (str, ""),
    "saved_sticky_diffdata": (SavedSticky | None, None),
    "saved_event_ids": (list[str], []),
}


def _saved_rule_type() -> Any:
    """RuleConfig's fields under their JSON names, with their constraints, plus RULE_STATE."""
    fields: dict[str, Any] = {}
    for name, f in RuleConfig.model_fields.items():
        kind = Annotated[f.annotation, *f.metadata] if f.metadata else f.annotation
        fields[f.alias or name] = kind if f.is_required() else NotRequired[kind]
    fields.update({key: NotRequired[kind] for key, (kind, _) in RULE_STATE.items()})
    return with_config(STRICT)(TypedDict("SavedRule", fields))  # type: ignore[operator]


if TYPE_CHECKING:
    SavedRule = dict[str, Any]  # a TypedDict whose keys are known at run time only
else:
    SavedRule = _saved_rule_type()
RULE_FIELDS = tuple(RuleConfig.model_fields)  # Rule's attribute names
RULE_KEYS = tuple(f.alias or name for name, f in RuleConfig.model_fields.items())  # JSON names
RULE_DEFAULTS = {
    f.alias or name: f.get_default(call_default_factory=True)
    for name, f in RuleConfig.model_fields.items()
    if not f.is_required()
} | {key: default for key, (_, default) in RULE_STATE.items()}


@with_config(STRICT)
class SavedRecord(TypedDict):
    provider: str
    term: str
    result: str


@with_config(STRICT)
class SavedCustomData(TypedDict):
    label: NotRequired[str]
    content: str


@with_config(STRICT)
class SavedBacklog(TypedDict):
    alarm_id: Annotated[str, Field(min_length=1)]
    title: str
    status: str
    tag: str
    kingdom: str
    category: str
    created_time: int
    update_time: int
    risk: U8
    risk_class: str
    rules: Annotated[list[SavedRule], Field(min_length=1)]
    src_ips: list[str]
    dst_ips: list[str]
    networks: list[str]
    intel_hits: NotRequired[list[SavedRecord]]
    vulnerabilities: NotRequired[list[SavedRecord]]
    custom_data: NotRequired[list[SavedCustomData]]
    saved_last_srcport: NotRequired[U16]
    saved_last_dstport: NotRequired[U16]
    saved_src_socketaddr: NotRequired[list[str]]
    saved_dst_socketaddr: NotRequired[list[str]]


BACKLOG_DEFAULTS: dict[str, Any] = {
    "intel_hits": [], "vulnerabilities": [], "custom_data": [], "saved_last_srcport": 0,
    "saved_last_dstport": 0, "saved_src_socketaddr": [], "saved_dst_socketaddr": [],
}
SAVED_FILE = TypeAdapter(list[SavedBacklog])


class Skip(Exception):
    """A backlog that cannot be imported; the message is the reason."""


def title_matches(directive_name: str, title: str) -> bool:
    """Placeholder-aware: `SRC_IP` / `DST_IP` in the name match anything."""
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


def _resolve(saved: dict[str, Any], rules: list[Rule]) -> list[Rule]:
    """Replace each `:N` by the value it stood for: the referenced rule's single value, or
    else the only value the saved backlog holds for that field."""
    if not any(rule.references for rule in rules):  # dsiem-backend: resolved when saved
        return rules
    src_ports = _socket_ports(saved["saved_src_socketaddr"]) or [saved["saved_last_srcport"]]
    dst_ports = _socket_ports(saved["saved_dst_socketaddr"]) or [saved["saved_last_dstport"]]
    custom_data = [c["content"] for c in saved["custom_data"]]
    saved_values = {
        "from_": ("source address", saved["src_ips"]),
        "to": ("destination address", saved["dst_ips"]),
        "port_from": ("source port", [p for p in src_ports if p]),
        "port_to": ("destination port", [p for p in dst_ports if p]),
        "custom_data1": ("custom data", custom_data),
        "custom_data2": ("custom data", custom_data),
        "custom_data3": ("custom data", custom_data),
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


# the fields `Rule.replace` can change: plain values, or the conditions it recompiles
_REPLACEABLE = frozenset(RULE_FIELDS) - {"stage", "type", "plugin_sid", "product", "subcategory"}
_saved_values = itemgetter(*RULE_KEYS)
_config_values = attrgetter(*RULE_FIELDS)


def _compile(saved: dict[str, Any], template: Rule | None, config: RuleConfig | None) -> Rule:
    """The saved rule, compiled. Most saved rules differ from the directive's rule only in
    resolved references, so they are its copy with those fields replaced: the template is
    shared where nothing differs, and only the changed conditions are compiled."""
    values = _saved_values(saved)
    if template is not None and config is not None:
        original = _config_values(config)
        if values == original:
            return template
        changes = {k: v for k, v, o in zip(RULE_FIELDS, values, original, strict=True) if v != o}
        if changes.keys() <= _REPLACEABLE and not any(
            reference_of(k, v) for k, v in changes.items() if k in REFERENCE_TARGETS
        ):
            return template.replace(**changes)
    fields = dict(zip(RULE_FIELDS, values, strict=True))
    return Rule.from_config(RuleConfig.model_construct(**fields))  # validated already


def _sticky_values(rule: dict[str, Any]) -> list:
    data, field = rule["saved_sticky_diffdata"], rule["sticky_different"]
    if data is None or not field:
        return []
    if field not in STICKY_FIELDS:
        raise Skip(f"rule stage {rule['stage']} has an unknown sticky_different value")
    return list(data.get("sdiff_int" if field in INT_STICKY else "sdiff_string", []))


def to_backlog(saved: SavedBacklog, directive: Directive, options: EngineOptions) -> Backlog:
    """The engine backlog a saved one stands for, or `Skip` with the reason.
    Its `seq` is 0: the importer numbers the backlogs it inserts."""
    name, title = directive.config.name, saved["title"]
    if not title_matches(name, title):
        raise Skip(f"different title detected: {name!r} vs {shown(repr(title))}")
    item: dict[str, Any] = {**BACKLOG_DEFAULTS, **saved}
    saved_rules = [{**RULE_DEFAULTS, **r} for r in item["rules"]]
    stages_numbers = [r["stage"] for r in saved_rules]
    if stages_numbers != list(range(1, len(saved_rules) + 1)):
        raise Skip(f"rule stages are not 1..N in order: {stages_numbers}")
    pending = [r["stage"] for r in saved_rules if r["status"] == ""]
    if not pending:
        raise Skip("cannot determine the current stage")
    same_shape = len(directive.rules) == len(saved_rules)
    try:
        rules = [
            _compile(r, directive.rules[i], directive.config.rules[i])
            if same_shape
            else _compile(r, None, None)
            for i, r in enumerate(saved_rules)
        ]
    except ValueError as exc:  # e.g. a reference like ":x" in an address field
        raise Skip(f"invalid rule: {exc}") from None
    rules = _resolve(item, rules)
    stages = [
        Stage(
            rule,
            True,  # resolved
            dict.fromkeys(s["saved_event_ids"]),
            dict.fromkeys(_sticky_values(s)),
            s["start_time"],
            s["end_time"],
            s["status"],
        )
        for rule, s in zip(rules, saved_rules, strict=True)
    ]
    src_sockets, dst_sockets = item["saved_src_socketaddr"], item["saved_dst_socketaddr"]
    src_ports, dst_ports = _socket_ports(src_sockets), _socket_ports(dst_sockets)
    b = Backlog(
        id=item["alarm_id"],
        seq=0,
        directive=directive,
        definition=directive.config,
        title=title,
        status=options.status,
        tag=options.tag,
        stages=stages,
        current_stage=min(pending),
        risk=item["risk"],
        risk_class=item["risk_class"],
        src_ips=dict.fromkeys(_ips(item["src_ips"])),
        dst_ips=dict.fromkeys(_ips(item["dst_ips"])),
        networks=dict.fromkeys(item["networks"]),
        custom_data=dict.fromkeys(
            (c.get("label", ""), c["content"]) for c in item["custom_data"] if c["content"]
        ),
        intel_hits=dict.fromkeys(_records(item["intel_hits"])),
        vulnerabilities=dict.fromkeys(_records(item["vulnerabilities"])),
        created_time=item["created_time"],
        update_time=item["update_time"],
        last_srcport=item["saved_last_srcport"] or (src_ports[-1] if src_ports else 0),
        last_dstport=item["saved_last_dstport"] or (dst_ports[-1] if dst_ports else 0),
        # dsiem-rs's `ip:port` / `[ipv6]:port` pairs: the vulnerability search terms
        src_sockets=dict.fromkeys(a for a in src_sockets if not a.endswith(":0")),
        dst_sockets=dict.fromkeys(a for a in dst_sockets if not a.endswith(":0")),
    )
    b.event_ids = {e for s in stages for e in s.event_ids}
    return b


def _records(records: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    return [(r["provider"], r["term"], r["result"]) for r in records]


def _ips(values: list[str]) -> list[str]:
    out = []
    for v in values:
        ip = canonical_ip(v)
        if ip is None:
            raise Skip(f"{shown(repr(v))} is not an IP address")
        out.append(ip)
    return out

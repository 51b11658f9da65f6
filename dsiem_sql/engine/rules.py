"""Rules compiled for matching, and the values references point at (docs/behaviour.md,
"References")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, make_dataclass
from operator import attrgetter
from types import GenericAlias
from typing import Any, NamedTuple, get_args, get_origin

from pydantic.fields import FieldInfo

from dsiem_sql.config.assets import Assets
from dsiem_sql.config.extensions import PLUGIN_TYPES, cross_reference, sticky_fields
from dsiem_sql.config.models import RuleConfig
from dsiem_sql.config.validate import REFERENCE_LIKE
from dsiem_sql.engine.event import Event
from dsiem_sql.engine.matching import (
    AddressCond,
    TextCond,
    compile_address,
    compile_custom_data,
    compile_protocol,
    compile_terms,
)

# rule attribute -> the event field its reference `:N` stands for
REFERENCE_TARGETS = {
    "from_": "src_ip",
    "to": "dst_ip",
    "port_from": "src_port",
    "port_to": "dst_port",
    "protocol": "protocol",
    "custom_data1": "custom_data1",
    "custom_data2": "custom_data2",
    "custom_data3": "custom_data3",
}

# sticky_different field -> the event attribute it names
STICKY_ATTRIBUTES = {
    "PLUGIN_SID": "plugin_sid",
    "SRC_IP": "src_ip",
    "DST_IP": "dst_ip",
    "SRC_PORT": "src_port",
    "DST_PORT": "dst_port",
    "CUSTOM_DATA1": "custom_data1",
    "CUSTOM_DATA2": "custom_data2",
    "CUSTOM_DATA3": "custom_data3",
}

STICKY_VALUE = {name: attrgetter(attr) for name, attr in STICKY_ATTRIBUTES.items()}


def _no_value(e: Event) -> None:
    return None


def sticky_key(value: str) -> Callable[[Event], Any] | None:
    """The value a stage keeps distinct for `sticky_different`: the field's, or the tuple of
    the fields' values for several (docs/extensions.md). A field validation does not know
    records no value (every event after the first is then a repeat)."""
    fields = sticky_fields(value)
    if not fields:
        return None
    if any(f not in STICKY_ATTRIBUTES for f in fields):
        return _no_value
    if len(fields) == 1:
        return STICKY_VALUE[fields[0]]
    return attrgetter(*(STICKY_ATTRIBUTES[f] for f in fields))


class FirstEvent(NamedTuple):
    """The fields of a stage's first accepted event that references can point at."""

    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    protocol: str
    custom_data1: str
    custom_data2: str
    custom_data3: str

    @classmethod
    def of(cls, e: Event) -> FirstEvent:
        return cls(
            e.src_ip,
            e.dst_ip,
            e.src_port,
            e.dst_port,
            e.protocol,
            e.custom_data1,
            e.custom_data2,
            e.custom_data3,
        )

    def text(self, rule_attr: str) -> str:
        return str(getattr(self, REFERENCE_TARGETS[rule_attr]))


def reference_of(rule_attr: str, value: str) -> int | None:
    """The stage number a field refers to, or None when it holds a literal."""
    cross = cross_reference(value)
    if cross is not None:
        return cross[0]
    if rule_attr in ("from_", "to", "port_from", "port_to"):
        return int(value[1:]) if value.startswith(":") else None
    return int(value[1:]) if REFERENCE_LIKE.match(value) else None


def reference_source(rule_attr: str, value: str) -> str:
    """The field of the referenced stage that a reference reads: the same field, or another
    one for `:N.field` (docs/extensions.md)."""
    cross = cross_reference(value)
    return rule_attr if cross is None else cross[1]


_CONDITIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "from_": ("from_cond", compile_address),
    "to": ("to_cond", compile_address),
    "port_from": ("port_from_cond", compile_terms),
    "port_to": ("port_to_cond", compile_terms),
    "protocol": ("protocol_cond", compile_protocol),
}
_CUSTOM_DATA = ("custom_data1", "custom_data2", "custom_data3")


def _rule_field(name: str, f: FieldInfo) -> tuple[str, Any, Any]:
    """A field of `RuleConfig` as a dataclass field, its lists as tuples."""
    kind: Any = f.annotation
    if get_origin(kind) is list:
        kind = GenericAlias(tuple, (get_args(kind)[0], ...))  # tuple[item type, ...]
    if f.is_required():
        return name, kind, field()
    default = f.get_default(call_default_factory=True)
    return name, kind, field(default=tuple(default) if isinstance(default, list) else default)


_LISTS = frozenset(
    name for name, f in RuleConfig.model_fields.items() if get_origin(f.annotation) is list
)

# The fields of a directive rule: those of `RuleConfig`, in its order.
RuleFields: Any = make_dataclass(
    "RuleFields",
    [_rule_field(name, f) for name, f in RuleConfig.model_fields.items()],
    eq=False,  # rules are compared and hashed by identity
    repr=False,
    slots=True,
)


@dataclass(eq=False, slots=True)
class Rule(RuleFields):
    """A directive rule (the fields of `RuleConfig`, its lists as tuples) with its
    conditions compiled. Treat it as immutable: `replace` makes the copies that backlogs use
    once references are resolved."""

    is_plugin: bool = field(init=False, repr=False)
    sids: frozenset[int] = field(init=False, repr=False)
    from_cond: AddressCond | None = field(init=False, repr=False)
    to_cond: AddressCond | None = field(init=False, repr=False)
    port_from_cond: TextCond | None = field(init=False, repr=False)
    port_to_cond: TextCond | None = field(init=False, repr=False)
    protocol_cond: TextCond | None = field(init=False, repr=False)
    custom_conds: tuple[tuple[str, TextCond], ...] = field(init=False, repr=False)
    references: tuple[tuple[str, int], ...] = field(init=False, repr=False)
    # the references to another field, (attribute, the field of the stage it reads)
    crossed: tuple[tuple[str, str], ...] = field(init=False, repr=False)
    sticky_key: Callable[[Event], Any] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.is_plugin = self.type in PLUGIN_TYPES
        self.sids = frozenset(self.plugin_sid)
        self.sticky_key = sticky_key(self.sticky_different)
        for attr, (cond, compile_) in _CONDITIONS.items():
            setattr(self, cond, compile_(getattr(self, attr)))
        self._compile_custom_data()
        refs = []
        for attr in REFERENCE_TARGETS:
            n = reference_of(attr, getattr(self, attr))
            if n is not None:
                refs.append((attr, n))
        self.references = tuple(refs)
        self.crossed = tuple((attr, source) for attr, _ in refs
                             if (source := reference_source(attr, getattr(self, attr))) != attr)
        if any(attr == "protocol" for attr, _ in refs):
            # matched once resolved; left unresolved (rule mode) it stands for no value
            self.protocol_cond = None

    def _compile_custom_data(self) -> None:
        conds = []
        for attr in _CUSTOM_DATA:
            cond = compile_custom_data(getattr(self, attr))
            if cond is not None:
                conds.append((attr, cond))
        self.custom_conds = tuple(conds)

    def replace(self, **changes: str) -> Rule:
        """A copy with some text fields replaced; replaced references count as resolved."""
        if not changes:
            return self
        new = object.__new__(Rule)
        for name in _SLOTS:
            setattr(new, name, getattr(self, name))
        for attr, value in changes.items():
            setattr(new, attr, value)
        for attr in changes:
            if attr in _CONDITIONS:
                cond, compile_ = _CONDITIONS[attr]
                setattr(new, cond, compile_(changes[attr]))
        if not changes.keys().isdisjoint(_CUSTOM_DATA):
            new._compile_custom_data()
        new.references = tuple((a, n) for a, n in self.references if a not in changes)
        if self.crossed:
            new.crossed = tuple((a, f) for a, f in self.crossed if a not in changes)
        return new

    def source(self, attr: str) -> str:
        """The field of the referenced stage that the reference in `attr` reads."""
        for a, source in self.crossed:
            if a == attr:
                return source
        return attr

    @classmethod
    def from_config(cls, c: RuleConfig) -> Rule:
        return cls(**{name: tuple(value) if name in _LISTS else value for name, value in c})

    def matches(
        self,
        e: Event,
        assets: Assets,
        match_protocol: bool = False,
        taxonomy_custom_data: bool = False,
    ) -> bool:
        if self.is_plugin:
            if e.plugin_id != self.plugin_id or e.plugin_sid not in self.sids:
                return False
        else:
            if e.category != self.category or e.product not in self.product:
                return False
            sub = self.subcategory
            if sub and e.subcategory not in sub and "ANY" not in sub:
                return False
        if match_protocol and self.protocol_cond and not self.protocol_cond(e.protocol):
            return False
        if self.from_cond and not self.from_cond(e.src_ip, assets):
            return False
        if self.to_cond and not self.to_cond(e.dst_ip, assets):
            return False
        if self.port_from_cond and not self.port_from_cond(str(e.src_port)):
            return False
        if self.port_to_cond and not self.port_to_cond(str(e.dst_port)):
            return False
        if self.custom_conds and (self.is_plugin or taxonomy_custom_data):
            for attr, cond in self.custom_conds:
                if not cond(getattr(e, attr)):
                    return False
        return True


_SLOTS = tuple(f.name for f in fields(Rule))

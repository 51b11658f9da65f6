"""`dsiem-sql test-init`: a starter test case for one directive.

Its events walk the directive through every stage: for each rule, as many events as its
occurrence, each built to match the rule (its plugin and SID or product and category, its
addresses, with HOME_NET taken from the assets, its ports, protocol and custom data), with
the values its references point at (`:1`), and different values where the rule is sticky-
different. Its expectations are what the engine then produces, so the case passes, and fails
as soon as the directive behaves otherwise.

A stage that no event can reach is reported with the reason (`Unreachable`) instead: an empty
SID list, sticky-different on a field that the rule pins to one value, an address list that
admits no address, ...; `dsiem-sql validate` warns of the same.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import count, islice
from pathlib import Path
from typing import Any

import yaml

from dsiem_sql.authoring.cases import (
    START,
    Case,
    CaseModel,
    Expect,
    case_steps,
    compress,
    parse_time,
)
from dsiem_sql.authoring.runner import Actual, run
from dsiem_sql.config.assets import Assets
from dsiem_sql.config.extensions import PLUGIN_TYPES, sticky_fields
from dsiem_sql.config.loader import Config
from dsiem_sql.config.models import DirectiveConfig, RuleConfig
from dsiem_sql.config.netparse import canonical_ip, list_items, try_parse_cidr
from dsiem_sql.engine import Backlog, EngineOptions
from dsiem_sql.engine.matching import compile_address, compile_custom_data, compile_terms
from dsiem_sql.engine.rules import REFERENCE_TARGETS, reference_of, reference_source
from dsiem_sql.runtime.settings import EngineSettings

EXTERNAL = ("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24", "100.64.0.0/10")
DEFAULT_PORTS = {"port_from": 40000, "port_to": 443}
STICKY_FIELD = {  # sticky_different -> (rule attribute, event field)
    "SRC_IP": ("from_", "src_ip"), "DST_IP": ("to", "dst_ip"),
    "SRC_PORT": ("port_from", "src_port"), "DST_PORT": ("port_to", "dst_port"),
    "CUSTOM_DATA1": ("custom_data1", "custom_data1"),
    "CUSTOM_DATA2": ("custom_data2", "custom_data2"),
    "CUSTOM_DATA3": ("custom_data3", "custom_data3"),
    "PLUGIN_SID": ("plugin_sid", "plugin_sid"),
}
NAMES = {"from_": "from", "to": "to", "port_from": "port_from", "port_to": "port_to",
         "protocol": "protocol", "custom_data1": "custom_data1",
         "custom_data2": "custom_data2", "custom_data3": "custom_data3"}
UNSET = {"src_port": 0, "dst_port": 0, "protocol": "", "custom_data1": "", "custom_data2": "",
         "custom_data3": ""}  # an event's value of a field it does not give
SOURCE_NAMES = {"src_ip": "source", "dst_ip": "destination", "src_port": "source port",
                "dst_port": "destination port", "protocol": "protocol"}


class Unreachable(Exception):
    """No event can reach a stage; the message says why."""

    def __init__(self, stage: int, reason: str):
        super().__init__(f"stage {stage}: {reason}")
        self.stage = stage
        self.reason = reason


@dataclass
class StageEvents:
    """The events of one stage: what they share, and the values that differ per event."""

    stage: int
    shared: dict[str, Any]
    varying: dict[str, list[Any]] = field(default_factory=dict)  # field -> a value an event
    count: int = 1  # 0 for an absence stage: the case lets its timeout pass instead

    def events(self) -> list[dict[str, Any]]:
        return [{**self.shared, **{k: v[i] for k, v in self.varying.items()}}
                for i in range(self.count)]


def walk(directive: DirectiveConfig, assets: Assets, options: EngineOptions
         ) -> list[StageEvents]:
    """Events that take a backlog of `directive` through every stage, a `StageEvents` a
    rule in stage order; `Unreachable` for the first stage that no event can reach."""
    rules = sorted(directive.rules, key=lambda r: r.stage)
    firsts: list[dict[str, Any]] = []
    stages = []
    for rule in rules:
        if rule.absent:  # no reference can point at it: validation made sure
            stages.append(StageEvents(rule.stage, {}, count=0))
            firsts.append({})
            continue
        stage = _stage(rule, rules, firsts, assets, options)
        stages.append(stage)
        firsts.append(stage.events()[0])
    return stages


def _stage(rule: RuleConfig, rules: list[RuleConfig], firsts: list[dict[str, Any]],
           assets: Assets, options: EngineOptions) -> StageEvents:
    n = max(1, rule.occurrence)
    sticky = STICKY_FIELD.get(_varied(rule))
    distinct = sticky[1] if sticky else None
    out = StageEvents(rule.stage, {}, count=n)

    def put(event_field: str, values: Callable[[int], list[Any]]) -> None:
        """One value for every event, or `n` different ones for the sticky field."""
        found = values(n if event_field == distinct else 1)
        if event_field == distinct:
            if len(found) < n:
                raise Unreachable(rule.stage, _too_few(rule, event_field, n, len(found)))
            out.varying[event_field] = found[:n]
        else:
            out.shared[event_field] = found[0]

    if rule.type in PLUGIN_TYPES:  # validation made sure of a plugin id and SIDs
        out.shared["plugin_id"] = rule.plugin_id
        put("plugin_sid", lambda k: list(dict.fromkeys(rule.plugin_sid))[:k])
    else:
        out.shared.update(product=rule.product[0], category=rule.category)
        subcategories = [s for s in rule.subcategory if s != "ANY"]
        if subcategories and "ANY" not in rule.subcategory:
            out.shared["subcategory"] = subcategories[0]
    for attr in ("from_", "to", "port_from", "port_to", "protocol",
                 "custom_data1", "custom_data2", "custom_data3"):
        event_field = REFERENCE_TARGETS[attr]
        spec = _resolve(rule, attr, rules, firsts, options)
        values: Callable[[int], list[Any]]
        if isinstance(spec, _Value):
            values = partial(_same, spec.value)
        elif attr in ("from_", "to"):
            taken = out.shared.get("src_ip") if attr == "to" else None
            values = partial(_addresses, spec, assets, attr, rule.stage, taken)
        elif attr in ("port_from", "port_to"):
            values = partial(_ports, spec, attr, rule.stage)
        elif attr == "protocol":
            values = partial(_same, spec if spec not in ("", "ANY") else "TCP")
        elif spec not in ("", "ANY") or event_field == distinct:
            values = partial(_texts, spec)
        else:
            continue
        put(event_field, values)
    return out


@dataclass(frozen=True)
class _Value:
    """A reference resolved to the value of an earlier stage's first event."""

    value: Any
    reference: str  # for messages: "stage 1's source"


def _varied(rule: RuleConfig) -> str:
    """The sticky-different field whose values the events vary: of several, the first that
    the rule does not pin to a reference (a new value of one field is a new combination)."""
    fields = sticky_fields(rule.sticky_different)
    for name in fields:
        attr = STICKY_FIELD.get(name, ("", ""))[0]
        if attr and (attr == "plugin_sid" or reference_of(attr, getattr(rule, attr)) is None):
            return name
    return fields[0] if fields else ""


def _resolve(rule: RuleConfig, attr: str, rules: list[RuleConfig],
             firsts: list[dict[str, Any]], options: EngineOptions) -> str | _Value:
    """The text a field must match, or, for a reference, the value it stands for: the first
    event's value (`value` mode), or the referenced rule's own text (`rule` mode, Go's). A
    reference `:N.field` reads another field of stage N."""
    text, source = getattr(rule, attr), attr
    for _ in rules:
        n = reference_of(source, text)
        if n is None:
            return text
        if not 1 <= n < rule.stage or n > len(firsts):
            raise Unreachable(rule.stage, f"{NAMES[attr]} {text} refers to stage {n}, which "
                                          f"does not come before it")
        source = reference_source(source, text)
        if options.reference_mode == "value":
            target = REFERENCE_TARGETS[source]
            first = firsts[n - 1]
            return _Value(first[target] if target in first else UNSET[target],
                          f"stage {n}'s {SOURCE_NAMES.get(target, target)}")
        text = getattr(next(r for r in rules if r.stage == n), source)
    raise Unreachable(rule.stage, f"{NAMES[attr]} refers in a circle")


def _too_few(rule: RuleConfig, event_field: str, wanted: int, found: int) -> str:
    attr = STICKY_FIELD[_varied(rule)][0]
    spec = getattr(rule, attr)
    shown = f"plugin_sid {list(rule.plugin_sid)}" if attr == "plugin_sid" else \
        f"{NAMES[attr]} {spec}"
    n = None if attr == "plugin_sid" else reference_of(attr, spec)
    if n is not None:
        target = REFERENCE_TARGETS[attr]
        shown += f" (stage {n}'s {SOURCE_NAMES.get(target, target)})"
    return (f"sticky_different {rule.sticky_different} needs {wanted} events with different "
            f"{event_field} values, but {shown} admits {'only ' if found else ''}{found}")


def _same(value: Any, wanted: int) -> list[Any]:
    return [value]


def _addresses(spec: str, assets: Assets, attr: str, stage: int, taken: str | None,
               wanted: int) -> list[str]:
    """Up to `wanted` addresses that `spec` admits and no asset whitelists; those with the
    highest asset value first (the risk needs one), except for a source of ANY, which is an
    outsider's; `taken` (the source) last."""
    cond = compile_address(spec)
    found: list[str] = []
    whitelisted: list[str] = []
    for ip in _address_candidates(spec, assets, attr == "from_", wanted + 64):
        if cond is not None and not cond(ip, assets):
            continue
        if assets.is_whitelisted(ip):
            whitelisted.append(ip)
            continue
        if ip not in found and ip != taken:
            found.append(ip)
            if len(found) == wanted:
                break
    if len(found) < wanted and taken is not None and (cond is None or cond(taken, assets)):
        found.append(taken)
    if not found:
        why = f"every address it admits is whitelisted ({whitelisted[0]} ...)" if whitelisted \
            else "it admits no address (or none this tool can find)"
        raise Unreachable(stage, f"{NAMES[attr]} {spec}: {why}")
    return found


def _address_candidates(spec: str, assets: Assets, outside_first: bool, per_network: int
                        ) -> Iterator[str]:
    host = canonical_ip(spec)
    if host is not None:
        yield host
        return
    named = [try_parse_cidr(item) for negated, item in list_items(spec) if not negated]
    home = sorted((a for a in assets.assets if not a.whitelisted),
                  key=lambda a: (-a.value, a.network.prefixlen))
    outside = [ipaddress.ip_network(n) for n in EXTERNAL]
    networks = [n for n in named if n is not None]
    if spec in ("ANY", "HOME_NET", "!HOME_NET") or not networks:
        inside = [a.network for a in home]
        networks = outside + inside if outside_first or spec == "!HOME_NET" else \
            inside + outside
    for network in networks:
        yield from (str(ip) for ip in islice(_hosts(network), per_network))


def _hosts(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Iterator[Any]:
    if network.num_addresses <= 2:
        yield from network
    else:
        yield from islice(network.hosts(), 1, None)  # .1 is often a gateway: from .2 on


def _ports(spec: str, attr: str, stage: int, wanted: int) -> list[int]:
    cond = compile_terms(spec)
    named = [int(item) for negated, item in list_items(spec)
             if not negated and item.isdigit() and int(item) <= 65535]
    base = DEFAULT_PORTS[attr]
    candidates = [*named, *range(base, base + 4 * wanted + 64)] if spec != "ANY" else \
        list(range(base, base + wanted))
    found = [p for p in dict.fromkeys(candidates) if cond is None or cond(str(p))]
    if not found:
        raise Unreachable(stage, f"{NAMES[attr]} {spec}: it admits no port (or none this "
                                 f"tool can find)")
    return found[:wanted]


def _texts(spec: str, wanted: int) -> list[str]:
    """Up to `wanted` custom data values that `spec` admits."""
    cond = compile_custom_data(spec)
    named = [item for negated, item in list_items(spec) if not negated] if "," in spec else \
        ([spec] if spec not in ("", "ANY") and not spec.startswith("!") else [])
    candidates = [*named, *(f"value-{i}" for i in islice(count(1), 4 * wanted + 8))]
    return [t for t in dict.fromkeys(candidates) if cond is None or cond(t)][:wanted]


# -- the case --------------------------------------------------------------------------------


def starter_case(directive: DirectiveConfig, config: Config, options: EngineSettings,
                 configs_text: str) -> str:
    """The YAML text of a case that walks `directive` through every stage, with what the
    engine produced as its expectations; `Unreachable` if no events can."""
    stages = walk(directive, config.assets, options.engine_options())
    entries = _entries(directive, stages)
    defaults = _shared(entries)
    events = [_Flow({k: v for k, v in e.items() if k not in defaults or k in ("at", "id")})
              for e in entries]
    start = parse_time(START, 0)
    case = Case(Path("starter.yaml"), "starter", Path(configs_text), (directive.id,), options,
                start, (), Expect())
    steps = _steps_of(events, defaults, start)
    actual = run(dataclasses.replace(case, steps=tuple(steps)), config)
    _check_walk(directive, actual)
    document = {
        "configs": configs_text,
        "directives": [directive.id],
        "start": START,
        **({"options": options.model_dump(exclude_defaults=True)}
           if options.model_dump(exclude_defaults=True) else {}),
        "defaults": defaults,
        "cases": [{
            "name": f"directive {directive.id} walks through its {len(stages)} stages",
            "events": events,
            "expect": _expectations(actual, start),
        }],
    }
    head = (f"# A starter test case for directive {directive.id}, written by dsiem-sql "
            f"test-init:\n#   {directive.name}\n# Its events walk the directive through every "
            f"stage; its expectations are what the engine\n# produced for them, so it passes "
            f"now and fails as soon as the directive behaves otherwise.\n# Run it with: "
            f"dsiem-sql test FILE (`configs` is relative to this file).\n")
    return head + yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                            width=100)


class _Flow(dict):
    """A mapping written on one line: an event of the case."""


class _Dumper(yaml.SafeDumper):
    """Block style, but for `_Flow` mappings and lists of scalars."""


def _list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(_Flow, lambda d, data: d.represent_mapping(
    "tag:yaml.org,2002:map", data, flow_style=True))
_Dumper.add_representer(list, _list)


def _entries(directive: DirectiveConfig, stages: list[StageEvents]) -> list[dict[str, Any]]:
    """The event entries of the case, with times that keep each stage within its timeout,
    and a `repeat` for identical events."""
    rules = {r.stage: r for r in directive.rules}
    entries: list[dict[str, Any]] = []
    now = 0
    for n, stage in enumerate(stages):
        rule = rules[stage.stage]
        if rule.absent:  # a clock step past its deadline, so that it completes
            now += rule.timeout + 1
            entries.append({"at": f"+{now}s"})
            continue
        within = rule.timeout >= (stage.count if n else stage.count - 1)
        step = 1 if within else 0
        if n:
            now += step
        events = stage.events()
        if not stage.varying and stage.count > 1:
            entries.append({"at": f"+{now}s", "id": f"s{stage.stage}", "repeat": stage.count,
                            "every": f"{step}s", **events[0]})
            now += step * (stage.count - 1)
            continue
        for i, fields in enumerate(events):
            if i:
                now += step
            name = f"s{stage.stage}" if stage.count == 1 else f"s{stage.stage}-{i + 1}"
            entries.append({"at": f"+{now}s", "id": name, **fields})
    return entries


def _shared(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The event fields that every entry has with the same value."""
    events = [e for e in entries if e.keys() != {"at"}]  # not the clock steps
    first = events[0]
    return {k: v for k, v in first.items() if k not in ("at", "id", "repeat", "every")
            and all(e.get(k, _MISSING) == v for e in events)}


_MISSING = object()


def _steps_of(events: list[_Flow], defaults: dict[str, Any], start: int) -> list:
    model = CaseModel(name="starter", events=[dict(e) for e in events], expect=Expect())
    return case_steps(model, defaults, start, "starter")


def _check_walk(directive: DirectiveConfig, actual: Actual) -> None:
    """The first backlog went through every stage; else the stage where it stopped."""
    if not actual.backlogs:
        raise Unreachable(1, "the events built for it opened no backlog")
    b = actual.backlogs[0]
    last = len(b.stages)
    if b.state == "finished" and b.current_stage == last:
        return
    stage = b.stages[b.current_stage - 1]
    raise Unreachable(b.current_stage, f"the events built for it left the backlog {b.state} "
                                       f"with {len(stage.event_ids)} of "
                                       f"{stage.rule.occurrence} events")


def _expectations(actual: Actual, start: int) -> dict[str, Any]:
    def fields(b: Backlog, alarm: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"directive": b.definition.id}
        if alarm:
            out.update(title=b.title, risk=b.risk, risk_class=b.risk_class, status=b.status)
        out.update(stage=b.current_stage, state=b.state)
        if any(s.rule.absent for s in b.stages):
            out["stage_status"] = b.current.status
        if b.ended_time is not None:
            out["ended"] = f"+{b.ended_time - start}s"
        if alarm:
            out.update(src_ips=list(b.src_ips), dst_ips=list(b.dst_ips))
        if alarm or b not in actual.alarms:
            out["events"] = {s.number: compress(list(s.event_ids)) for s in b.stages
                             if s.event_ids}
        return out

    return {
        "alarms": [fields(b, True) for b in actual.alarms],
        "alarm_lines": actual.alarm_lines,
        "backlogs": [_Flow(fields(b, False)) if b in actual.alarms else fields(b, False)
                     for b in actual.backlogs],
    }


def write_starter(config: Config, configs: Path, directive_id: int, settings: EngineSettings,
                  output: Path | None) -> str:
    """`dsiem-sql test-init`: the starter case of a directive, written to `output` (its
    `configs` relative to it) or returned (relative to the current directory); KeyError for
    a directive that is not in `configs`."""
    directive = next((d for d in config.directives if d.id == directive_id), None)
    if directive is None:
        raise KeyError(f"directive {directive_id} is not in {configs}")
    base = Path.cwd() if output is None else output.resolve().parent
    text = starter_case(directive, config, settings,
                        os.path.relpath(configs.resolve(), base))
    if output is not None:
        output.write_text(text, encoding="utf-8")
    return text

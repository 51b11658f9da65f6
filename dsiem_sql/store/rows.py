"""Pure conversions between engine state and table rows."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import Any

import orjson

from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.engine.alarm import to_json_line
from dsiem_sql.engine.rules import FirstEvent, Rule
from dsiem_sql.engine.state import LIVE, Backlog, Directive, Stage

RULE_FIELDS = tuple(f.name for f in dataclasses.fields(Rule) if f.init)
_RULE_KEYS = tuple("from" if name == "from_" else name for name in RULE_FIELDS)
_rule_values = attrgetter(*RULE_FIELDS)


def definition_json(d: DirectiveConfig) -> str:
    return d.model_dump_json(by_alias=True)


def definition_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_EXTENSION_DEFAULTS = {"absent": False}  # rule keys of the extensions (docs/extensions.md)


@lru_cache(maxsize=65536)
def rule_json(rule: Rule) -> str:
    """The rule's text fields as JSON (memoised: backlogs share their rule objects)."""
    obj = dict(zip(_RULE_KEYS, _rule_values(rule), strict=True))  # tuples -> arrays
    for key, default in _EXTENSION_DEFAULTS.items():
        if obj[key] == default:
            del obj[key]  # the row of a Dsiem rule stays as it was before the extensions
    return to_json_line(obj)


@lru_cache(maxsize=65536)
def rule_from_json(text: str) -> Rule:
    """The rule of a stored stage (memoised: backlogs share equal rules, as they do live)."""
    obj = orjson.loads(text)
    kwargs = {}
    for name in RULE_FIELDS:
        key = "from" if name == "from_" else name
        value = obj.get(key, _EXTENSION_DEFAULTS[key]) if key in _EXTENSION_DEFAULTS else obj[key]
        kwargs[name] = tuple(value) if isinstance(value, list) else value
    return Rule(**kwargs)


# Rows are tuples in the order of these columns, the tables' own order (store/schema.py; a
# test checks they agree), which the writer inserts as they are. `directive_version` is
# moved last: the writer appends the sha256 of the definition, and the database puts the id
# of that definition's `directive_versions` row in its place.
BACKLOG_COLUMNS = (
    "id", "seq", "directive_id", "state", "title", "status", "tag", "current_stage",
    "highest_stage", "risk", "risk_class", "src_ips", "dst_ips", "networks", "custom_data",
    "created_time", "update_time", "last_srcport", "last_dstport", "deadline", "ended_time",
    "src_sockets", "dst_sockets", "directive_version",
)
STAGE_COLUMNS = (
    "backlog_id", "stage", "rule", "resolved", "status", "start_time", "end_time",
    "first_event", "sticky",
)
# the engine's `EventLink`, field for field
LINK_COLUMNS = (
    "backlog_id", "stage", "event_id", "event_time", "src_ip", "dst_ip", "src_port", "dst_port",
)
ENRICHMENT_COLUMNS = ("backlog_id", "kind", "provider", "term", "result")
OUTBOX_COLUMNS = ("seq", "file", "line")


def backlog_row(b: Backlog) -> tuple:
    """The backlog's row without its last column, `directive_version`. Sets are lists: the
    writer stores each as its JSON text."""
    return (
        b.id, b.seq, b.definition.id, b.state, b.title, b.status, b.tag, b.current_stage,
        b.highest_stage, b.risk, b.risk_class, list(b.src_ips), list(b.dst_ips),
        list(b.networks), [{"label": lb, "content": c} for lb, c in b.custom_data],
        b.created_time, b.update_time, b.last_srcport, b.last_dstport, b.deadline,
        b.ended_time, list(b.src_sockets), list(b.dst_sockets),
    )


def opened(s: Stage) -> bool:
    """Whether a stage differs from its directive's rule: a stage not opened yet (value
    mode) is the directive's rule untouched, and gets no row until it opens."""
    return s.resolved or s.start_time != 0 or bool(s.event_ids)


def stage_mark(s: Stage) -> tuple:
    """Changes whenever a stage's row would (its sticky values only ever grow). The stage's
    event ids are not in its row (they are `stage_events` rows): an event that only adds
    one leaves the row as it was."""
    return (s.resolved, len(s.sticky), s.status, s.start_time, s.end_time,
            s.first_event is None, id(s.rule))


def stage_row(b: Backlog, s: Stage) -> tuple:
    return (
        b.id, s.rule.stage, rule_json(s.rule), s.resolved, s.status, s.start_time, s.end_time,
        None if s.first_event is None else list(s.first_event), list(s.sticky),
    )


def enrichment_rows(b: Backlog) -> list[tuple]:
    return [
        (b.id, kind, p, t, r)
        for kind, records in (("intel", b.intel_hits), ("vuln", b.vulnerabilities))
        for p, t, r in records
    ]


def link_rows(b: Backlog) -> list[tuple]:
    """Every event id of every stage, for a backlog that arrives whole (an import). The
    saved-backlog files hold only the ids: the event's time, addresses and ports are NULL."""
    return [(b.id, s.rule.stage, e, None, None, None, None, None)
            for s in b.stages for e in s.event_ids]


@dataclass
class ImportRows:
    """The rows of backlogs that arrive whole (a legacy file of one directive); backlog rows
    lack their `directive_version`, which the writer appends."""

    directive_id: int
    ids: list[str]
    backlogs: list[tuple]
    stages: list[tuple]
    links: list[tuple]
    enrichments: list[tuple]


def import_rows(imported: list[Backlog]) -> ImportRows:
    return ImportRows(
        directive_id=imported[0].definition.id,
        ids=[b.id for b in imported],
        backlogs=[backlog_row(b) for b in imported],
        stages=[stage_row(b, s) for b in imported for s in b.stages],
        links=[r for b in imported for r in link_rows(b)],
        enrichments=[r for b in imported for r in enrichment_rows(b)],
    )


RowLike = Mapping[str, Any] | sqlite3.Row  # read by column name


def backlog_from_rows(
    row: RowLike,
    stages: list[RowLike],
    events: dict[int, list[str]],
    directive: Directive,
    definition: DirectiveConfig,
    rules: tuple[Rule, ...],
) -> Backlog:
    """`rules` are the compiled rules of `definition`: the stages not opened yet have no row
    (see `stage_row`) and start from them, as in a new backlog."""
    stored = {s["stage"]: s for s in stages}
    built = []
    for number, rule in enumerate(rules, 1):
        s = stored.get(number)
        if s is None:
            built.append(Stage(rule))
            continue
        stage = Stage(
            rule=rule_from_json(s["rule"]),
            resolved=bool(s["resolved"]),
            event_ids=dict.fromkeys(events.get(s["stage"], ())),
            # several sticky-different fields keep tuples, stored as arrays
            sticky=dict.fromkeys(tuple(v) if isinstance(v, list) else v
                                 for v in orjson.loads(s["sticky"])),
            start_time=s["start_time"],
            end_time=s["end_time"],
            status=s["status"],
            first_event=None
            if s["first_event"] is None
            else FirstEvent(*orjson.loads(s["first_event"])),
        )
        built.append(stage)
    b = Backlog(
        id=row["id"],
        seq=row["seq"],
        directive=directive,
        definition=definition,
        title=row["title"],
        status=row["status"],
        tag=row["tag"],
        stages=built,
        current_stage=row["current_stage"],
        risk=row["risk"],
        risk_class=row["risk_class"],
        src_ips=dict.fromkeys(orjson.loads(row["src_ips"])),
        dst_ips=dict.fromkeys(orjson.loads(row["dst_ips"])),
        networks=dict.fromkeys(orjson.loads(row["networks"])),
        custom_data=dict.fromkeys(
            (c["label"], c["content"]) for c in orjson.loads(row["custom_data"])
        ),
        created_time=row["created_time"],
        update_time=row["update_time"],
        last_srcport=row["last_srcport"],
        last_dstport=row["last_dstport"],
        src_sockets=dict.fromkeys(orjson.loads(row["src_sockets"])),
        dst_sockets=dict.fromkeys(orjson.loads(row["dst_sockets"])),
        state=LIVE,
    )
    b.event_ids = {e for ids in events.values() for e in ids}
    return b

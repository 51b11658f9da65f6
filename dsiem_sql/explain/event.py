"""`dsiem-sql explain --configs DIR --directive ID EVENT`: would this event match the stages
of this directive, and if not, why (docs/explain.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from dsiem_sql.config.assets import Assets
from dsiem_sql.config.errors import ConfigError
from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.engine.engine import EngineOptions
from dsiem_sql.engine.event import Event, InvalidEvent, decode_event
from dsiem_sql.engine.explain import describe_rule, explain_event, quoted
from dsiem_sql.engine.rules import Rule
from dsiem_sql.explain import ExplainError

SHOWN_FIELDS = (
    "event_id", "timestamp", "plugin_id", "plugin_sid", "product", "category", "subcategory",
    "src_ip", "dst_ip", "src_port", "dst_port", "protocol", "custom_data1", "custom_data2",
    "custom_data3",
)


def read_event(argument: str, stdin: TextIO | None = None) -> Event:
    """The event of the EVENT argument: a JSON object, `@FILE` or `-` (stdin), decoded and
    checked as serve does (docs/behaviour.md, "Events", "Event validity")."""
    if argument == "-":
        where, text = "stdin", (stdin or sys.stdin).read()
    elif argument.startswith("@"):
        where = argument[1:]
        try:
            text = Path(where).read_text(encoding="utf-8")
        except OSError as exc:
            raise ExplainError(f"{where}: cannot read the event: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ExplainError(f"{where}: the event is not UTF-8: {exc}") from None
    else:
        where, text = "EVENT", argument
    if not text.strip():
        raise ExplainError(f"{where}: no event: give a JSON object")
    try:
        return decode_event(text.strip())
    except InvalidEvent as exc:
        raise ExplainError(f"{where}: {exc}") from None


def explain_event_of(
    configs: Path, directive_id: int, event: Event, options: EngineOptions
) -> dict[str, Any]:
    """The report of `event` against directive `directive_id` of `configs`."""
    from dsiem_sql.config.loader import load_config

    try:
        config = load_config(configs)
    except ConfigError as exc:
        raise ExplainError(str(exc)) from None
    for d in config.directives:
        if d.id == directive_id:
            return event_report(d, event, config.assets, options)
    ids = sorted(d.id for d in config.directives)
    shown = ", ".join(map(str, ids[:20])) + (", ..." if len(ids) > 20 else "")
    raise ExplainError(f"{configs}: no directive {directive_id} among the {len(ids)} enabled "
                       f"directives ({shown})")


def event_report(
    d: DirectiveConfig, e: Event, assets: Assets, options: EngineOptions
) -> dict[str, Any]:
    """Pure: the report of one event against the stages of `d`."""
    whitelisted, stages = explain_event(d, e, assets, options)
    rules = {r.stage: Rule.from_config(r) for r in d.rules}
    entries = [{
        "stage": s.stage, "name": s.name, "matches": s.match.matches, "reason": s.match.reason,
        "field": s.match.field, "notes": list(s.match.notes),
        "rule": describe_rule(rules[s.stage], options=options),
    } for s in stages]
    opens = bool(entries) and entries[0]["matches"]
    if whitelisted is not None:
        summary = (f"the engine drops this event before any directive: its src_ip {e.src_ip} "
                   f"is in the whitelisted asset {quoted(whitelisted.name)} "
                   f"{whitelisted.network}")
    elif opens:
        summary = (f"stage 1 matches: this event opens a backlog of directive {d.id}, unless "
                   "a live backlog of the directive takes it first or already holds its id")
    else:
        later = [str(s["stage"]) for s in entries if s["matches"]]
        summary = "stage 1 does not match: this event opens no backlog"
        if later:
            summary += (f"; a live backlog waiting at stage {' or '.join(later)} would take it"
                        " (if its references and sticky values allow)")
    return {
        "kind": "event",
        "directive": {"id": d.id, "name": d.name, "stages": len(d.rules),
                      "all_rules_always_active": d.all_rules_always_active},
        "event": {name: getattr(e, name) for name in SHOWN_FIELDS},
        "options": {"match_protocol": options.match_protocol,
                    "taxonomy_custom_data": options.taxonomy_custom_data,
                    "reference_mode": options.reference_mode},
        "whitelisted": None if whitelisted is None else {
            "name": whitelisted.name, "cidr": str(whitelisted.network)},
        "opens_backlog": opens and whitelisted is None,
        "summary": summary,
        "stages": entries,
    }

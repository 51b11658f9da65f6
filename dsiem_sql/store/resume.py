"""Resuming: the stored engine state and live backlogs, rebuilt from their rows. The shell
hands the backlogs to the engine (`Engine.resume`)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.engine import Backlog
from dsiem_sql.engine.rules import Rule
from dsiem_sql.engine.state import Directive
from dsiem_sql.store import rows
from dsiem_sql.store.writer import Writer

log = logging.getLogger(__name__)

DirectiveOf = Callable[[int], Directive | None]


@dataclass
class Resumed:
    """The engine clock, backlog counter and input position of the last commit, and the
    live backlogs whose directive is loaded."""

    clock: int = 0
    next_seq: int = 1
    line: int = 0
    offset: int = 0
    backlogs: list[Backlog] = field(default_factory=list)
    skipped: int = 0  # live backlogs of directives that are not loaded
    # id(DirectiveConfig) of a rebuilt backlog -> the sha256 of its directive_versions row
    shas: dict[int, str] = field(default_factory=dict)


async def resume(
    writer: Writer, directive_of: DirectiveOf, source: str | None, with_backlogs: bool
) -> Resumed:
    state = {key: value for key, value in await writer.read("SELECT key, value FROM engine_state")}
    resumed = Resumed(clock=state.get("clock", 0), next_seq=state.get("next_seq", 1))
    if source is not None:
        found = await writer.read(
            'SELECT line, "offset" FROM input_progress WHERE source = ?', (source,)
        )
        if found:
            resumed.line, resumed.offset = found[0]
    if with_backlogs:
        await _rebuild(writer, directive_of, resumed, "b.state = 'live'", ())
    return resumed


async def live_backlogs(writer: Writer, directive_of: DirectiveOf, ids: list[str]) -> Resumed:
    """The stored live backlogs among `ids` (just imported ones)."""
    resumed = Resumed()
    marks = ",".join("?" * len(ids))
    await _rebuild(writer, directive_of, resumed, f"b.state = 'live' AND b.id IN ({marks})", ids)
    return resumed


async def _rebuild(writer: Writer, directive_of: DirectiveOf, resumed: Resumed, where: str,
                   parameters: tuple | list) -> None:
    live = await writer.read(
        "SELECT b.*, v.definition, v.sha256 FROM backlogs b JOIN directive_versions v "
        f"ON v.id = b.directive_version WHERE {where} ORDER BY b.seq",
        parameters,
    )
    if not live:
        return
    selected = f"SELECT b.id FROM backlogs b WHERE {where}"
    stage_rows: dict[str, list] = defaultdict(list)
    for r in await writer.read(
        f"SELECT * FROM stages WHERE backlog_id IN ({selected}) ORDER BY stage", parameters
    ):
        stage_rows[r["backlog_id"]].append(r)
    events: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for backlog_id, stage, event_id in await writer.read(
        "SELECT backlog_id, stage, event_id FROM stage_events "
        f"WHERE backlog_id IN ({selected}) ORDER BY id", parameters
    ):
        events[backlog_id][stage].append(event_id)
    found: dict[str, list] = defaultdict(list)
    for backlog_id, kind, provider, term, result in await writer.read(
        "SELECT backlog_id, kind, provider, term, result FROM enrichments "
        f"WHERE backlog_id IN ({selected})", parameters
    ):
        found[backlog_id].append((kind, provider, term, result))
    definitions: dict[str, tuple[DirectiveConfig, tuple[Rule, ...]]] = {}
    for row in live:
        directive = directive_of(row["directive_id"])
        if directive is None:
            log.warning("backlog %s belongs to directive %d, which is not loaded; leaving it",
                        row["id"], row["directive_id"])
            resumed.skipped += 1
            continue
        text = row["definition"]
        if text not in definitions:
            stored = DirectiveConfig.model_validate_json(text)
            if stored == directive.config:  # share the loaded directive's rules
                definitions[text] = (directive.config, directive.rules)
            else:
                definitions[text] = (stored, Directive.from_config(stored, 0).rules)
        definition, rules = definitions[text]
        resumed.shas[id(definition)] = row["sha256"]
        b = rows.backlog_from_rows(row, stage_rows[row["id"]], events[row["id"]], directive,
                                   definition, rules)
        for kind, provider, term, result in found[row["id"]]:
            records = b.intel_hits if kind == "intel" else b.vulnerabilities
            records[(provider, term, result)] = None
        resumed.backlogs.append(b)

"""What `dsiem-sql explain --db` reads of one backlog, read-only (`mode=ro`), in one read
transaction, so that it sees one commit of a serve that goes on writing (WAL); and, for a
backlog that is no longer there, what the output files still say of it."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from dsiem_sql.store.database import lock_holder
from dsiem_sql.store.errors import StoreError
from dsiem_sql.store.query import read_transaction

COMMAND = "dsiem-sql explain"
# the columns of `stage_events` from revision 0004 (NULL in older rows; absent before)
EVENT_DETAILS = ("event_time", "src_ip", "dst_ip", "src_port", "dst_port")


@dataclass(frozen=True)
class StoredEvent:
    """An event counted in a stage: its `stage_events` row. The details are None where
    they were not recorded (rows older than revision 0004, imported legacy backlogs)."""

    link: int  # the row's id: the order in which the links were written
    event_id: str
    time: int | None
    src_ip: str | None
    dst_ip: str | None
    src_port: int | None
    dst_port: int | None


@dataclass(frozen=True)
class StoredStage:
    """A `stages` row: a stage that opened (value mode) or every stage (rule mode)."""

    stage: int
    rule: str  # the effective rule, JSON
    resolved: bool
    status: str
    start_time: int
    end_time: int
    first_event: list | None
    sticky: list


@dataclass(frozen=True)
class StoredBacklog:
    backlog: dict[str, Any]  # the `backlogs` row, by column
    version: int
    sha256: str
    definition: str  # the directive as the backlog started with it, JSON
    stages: dict[int, StoredStage]
    events: dict[int, list[StoredEvent]]  # by stage, in the order they were written
    clock: int | None  # the engine clock of the last commit
    serve: bool  # a serve holds the database's writer lock
    configs: str | None  # the config directory of serve's last successful load


def read_backlog(path: Path, alarm_id: str) -> tuple[StoredBacklog | None, list[str]]:
    """The backlog `alarm_id` as the last commit left it, or None when the database does
    not hold it; and the output files the database's writer appends to (`output_files`),
    for `find_in_outputs`."""
    with read_transaction(path, COMMAND) as con:
        con.row_factory = sqlite3.Row
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "backlogs" not in tables:
            raise StoreError(f"{path}: no backlogs table: not a dsiem-sql database, or one not "
                             "created yet (dsiem-sql db upgrade --db PATH creates it)")
        row = con.execute(
            "SELECT b.*, v.id AS version_id, v.sha256, v.definition FROM backlogs b "
            "JOIN directive_versions v ON v.id = b.directive_version WHERE b.id = ?",
            (alarm_id,)).fetchone()
        outputs = [r["path"] for r in con.execute("SELECT path FROM output_files ORDER BY file")]
        if row is None:
            return None, outputs
        stages = {
            s["stage"]: StoredStage(
                s["stage"], s["rule"], bool(s["resolved"]), s["status"], s["start_time"],
                s["end_time"],
                None if s["first_event"] is None else orjson.loads(s["first_event"]),
                orjson.loads(s["sticky"]))
            for s in con.execute("SELECT * FROM stages WHERE backlog_id = ? ORDER BY stage",
                                 (alarm_id,))
        }
        present = {r["name"] for r in con.execute("PRAGMA table_info(stage_events)")}
        details = ", ".join(c if c in present else f"NULL AS {c}" for c in EVENT_DETAILS)
        events: dict[int, list[StoredEvent]] = {}
        for e in con.execute(f"SELECT id, stage, event_id, {details} FROM stage_events "
                             "WHERE backlog_id = ? ORDER BY id", (alarm_id,)):
            events.setdefault(e["stage"], []).append(StoredEvent(
                e["id"], e["event_id"], e["event_time"], e["src_ip"], e["dst_ip"],
                e["src_port"], e["dst_port"]))
        clock = con.execute("SELECT value FROM engine_state WHERE key = 'clock'").fetchone()
        configs = None
        if "reloads" in tables:
            last = con.execute("SELECT configs FROM reloads WHERE result = 'success' "
                               "ORDER BY id DESC LIMIT 1").fetchone()
            configs = None if last is None else last["configs"]
    columns = row.keys()  # a Row iterates over its values
    backlog = {k: row[k] for k in columns if k not in ("version_id", "sha256", "definition")}
    holder = lock_holder(path)
    return StoredBacklog(
        backlog, row["version_id"], row["sha256"], row["definition"], stages, events,
        None if clock is None else clock[0], holder is not None and holder.role == "serve",
        configs), outputs


@dataclass(frozen=True)
class OutputTrace:
    """What an output file says of one alarm id: how many lines name it, and its last line."""

    path: str
    lines: int
    last: dict[str, Any] | None


def find_in_outputs(paths: list[str], alarm_id: str) -> list[OutputTrace]:
    """The lines of the output files (`siem_alarms.json`, `siem_alarm_events.json`) that
    name `alarm_id`; files that are gone or unreadable are left out. Reads each file once,
    line by line."""
    needle = b'{"alarm_id":' + orjson.dumps(alarm_id) + b","
    found = []
    for name in paths:
        count, last = 0, None
        try:
            with open(name, "rb") as f:
                for line in f:
                    if line.startswith(needle):
                        count, last = count + 1, line
        except OSError:
            continue
        parsed = None
        if last is not None:
            try:
                parsed = orjson.loads(last)
            except orjson.JSONDecodeError:
                parsed = None
        found.append(OutputTrace(name, count, parsed))
    return found

"""Helpers to compare runs: output files and databases with alarm ids normalised."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from dsiem_sql.store.database import connect_read_only


def normalised_outputs(out: Path) -> tuple[list[dict], list[dict], dict[str, str]]:
    """(alarm lines, alarm-event lines, id map) with alarm ids renamed by first appearance."""
    ids: dict[str, str] = {}

    def rename(alarm_id: str) -> str:
        return ids.setdefault(alarm_id, f"alarm-{len(ids) + 1}")

    links = []
    for line in (out / "siem_alarm_events.json").read_text().splitlines():
        record = json.loads(line)
        record["alarm_id"] = rename(record["alarm_id"])
        links.append(record)
    alarms = []
    for line in (out / "siem_alarms.json").read_text().splitlines():
        record = json.loads(line)
        record["alarm_id"] = rename(record["alarm_id"])
        alarms.append(record)
    return alarms, links, ids


def database_dump(db: Path, ids: dict[str, str] | None = None,
                  drop: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Backlogs, stages and event links in a comparable form; without the backlog columns
    named in `drop`."""
    con = connect_read_only(db)
    try:
        order = {r[0]: r[1] for r in con.execute("SELECT id, seq FROM backlogs")}
        rename = ids or {}

        def key(alarm_id: str) -> str:
            return rename.get(alarm_id, f"seq-{order.get(alarm_id)}")

        backlog_cols = [r[1] for r in con.execute("PRAGMA table_info(backlogs)")]
        backlogs = []
        for row in con.execute("SELECT * FROM backlogs ORDER BY seq"):
            record = dict(zip(backlog_cols, row, strict=True))
            record["id"] = key(record["id"])
            record.pop("directive_version")
            for column in drop:
                record.pop(column)
            backlogs.append(tuple(sorted(record.items())))
        stages = sorted(
            (key(r[0]), *r[1:])
            for r in con.execute(
                "SELECT backlog_id, stage, rule, resolved, status, start_time, end_time,"
                " first_event, sticky FROM stages"
            )
        )
        links = [
            (key(a), s, e)
            for a, s, e in con.execute(
                "SELECT backlog_id, stage, event_id FROM stage_events ORDER BY id"
            )
        ]
        outbox = list(con.execute("SELECT count(*) FROM outbox"))
        return {"backlogs": backlogs, "stages": stages, "links": links, "outbox": outbox}
    finally:
        con.close()


def integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def migrate(db: Path, revision: str, downgrade: bool = False) -> None:
    """Run alembic on `db` up (or down) to `revision`, as an older (or newer) dsiem-sql did."""
    from alembic import command

    from dsiem_sql.store.database import alembic_config, sync_engine

    engine = sync_engine(db)
    try:
        with engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            (command.downgrade if downgrade else command.upgrade)(cfg, revision)
    finally:
        engine.dispose()

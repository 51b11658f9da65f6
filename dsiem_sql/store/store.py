"""The database of one node: opening it (the writer lock, the schema, the writer connection,
the output files), resuming from it, and writing the engine's changes to it.

Each batch of changes is written in one transaction together with its output lines (the
outbox); the lines are then appended to the output files (`store.outbox`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import orjson

from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.engine import Backlog, Changes
from dsiem_sql.engine.state import LIVE
from dsiem_sql.engine.suppressions import Suppression
from dsiem_sql.store import rows, suppressions
from dsiem_sql.store.database import Sync, WriterLock, upgrade
from dsiem_sql.store.errors import StoreError
from dsiem_sql.store.outbox import Appender, Line, Recorded
from dsiem_sql.store.resume import DirectiveOf, Resumed, live_backlogs, resume
from dsiem_sql.store.suppressions import NewSuppression
from dsiem_sql.store.writer import Writer

log = logging.getLogger(__name__)

WAL_LIMIT = 4 * 1024 * 1024  # a WAL above this is truncated once no reader holds it
Progress = tuple[str, int, int]  # (input source, line, byte offset) of `replay --resume`


def insert_sql(table: str, columns: tuple[str, ...], conflict: str = "") -> str:
    """INSERT of a row of `columns`; `conflict` is "" (fail), "nothing", or the key columns
    of an upsert, like "id" or "backlog_id, stage"."""
    if conflict == "nothing":
        conflict = " ON CONFLICT DO NOTHING"
    elif conflict:
        keys = {k.strip() for k in conflict.split(",")}
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in keys)
        conflict = f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    row = f"({', '.join('?' * len(columns))})"
    names = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES {row}{conflict}"


INSERT_RELOAD = insert_sql(
    "reloads", ("started", "seconds", "trigger", "result", "message", "configs"))
INSERT_RELOAD_FILE = insert_sql("reload_files", ("reload_id", "file", "sha256"))

# A commit is one statement: an INSERT of one row into the TEMP view `commit_batch`, whose
# INSTEAD OF trigger writes every table, in this order. Each column but the last holds that
# table's rows as a JSON array of arrays, which SQLite takes apart itself. One statement is
# one trip to the writer's thread and back (each trip waits for the interpreter lock, which
# the engine holds), and SQLite's autocommit makes it one transaction.
COMMIT_TABLES = (  # (view column, table, columns, conflict: see `insert_sql`)
    ("versions", "directive_versions", ("directive_id", "sha256", "definition"), "nothing"),
    ("backlogs", "backlogs", rows.BACKLOG_COLUMNS, "id"),
    ("enrichments", "enrichments", rows.ENRICHMENT_COLUMNS, "nothing"),
    ("stages", "stages", rows.STAGE_COLUMNS, "backlog_id, stage"),
    ("links", "stage_events", rows.LINK_COLUMNS, "nothing"),
    ("outbox", "outbox", rows.OUTBOX_COLUMNS, ""),
    ("state", "engine_state", ("key", "value"), "key"),
    ("progress", "input_progress", ("source", "line", "offset"), "source"),
    ("files", "output_files", ("file", "path", "size", "written_seq"), "file"),
)
# Then a column whose rows update a table: (suppression id, hits, time of the last hit) ...
HITS = ("UPDATE suppression_entries SET hits = hits + h.value->>1, last_hit = h.value->>2 "
        "FROM json_each(NEW.hits) AS h WHERE suppression_entries.id = h.value->>0")
# ... and the last column, `written_upto`: the outbox lines up to it are in the files.
COLUMNS = (*(column for column, *_ in COMMIT_TABLES), "hits", "written_upto")


def insert_rows_sql(table: str, columns: tuple[str, ...], conflict: str, rows_json: str) -> str:
    """INSERT of the rows of the JSON array `rows_json` (an SQL expression). A backlog row
    carries the sha256 of its definition in place of `directive_version`."""
    picks = [f"value->>{i}" for i in range(len(columns))]
    if columns[-1] == "directive_version":
        picks[-1] = f"(SELECT id FROM directive_versions WHERE sha256 = {picks[-1]})"
    select = f"SELECT {', '.join(picks)} FROM json_each({rows_json}) WHERE true ORDER BY key"
    return insert_sql(table, columns, conflict).replace(  # `WHERE true`: see SQLite's upsert
        f"VALUES ({', '.join('?' * len(columns))})", select)


def commit_view() -> list[str]:
    """The statements that create `commit_batch` on the writer's connection."""
    writes = [insert_rows_sql(table, names, conflict, f"NEW.{column}")
              for column, table, names, conflict in COMMIT_TABLES]
    writes.append(HITS)
    writes.append("DELETE FROM outbox WHERE seq <= NEW.written_upto")
    return [
        f"CREATE TEMP VIEW commit_batch ({', '.join(COLUMNS)}) AS "
        f"SELECT {', '.join('NULL' for _ in COLUMNS)}",
        "CREATE TEMP TRIGGER commit_batch INSTEAD OF INSERT ON commit_batch BEGIN "
        + "".join(f"{w}; " for w in writes) + "END",
    ]


COMMIT = f"INSERT INTO commit_batch VALUES ({', '.join('?' * len(COLUMNS))})"


def rows_json(items: list) -> str:
    """Rows as the JSON text `commit_batch` takes (text: SQLite from 3.45 on reads a BLOB as
    its binary JSON). Every string came through pydantic's JSON parser, which rejects the
    lone surrogates orjson cannot encode."""
    return orjson.dumps(items, default=tuple).decode()  # EventLink is a NamedTuple


@dataclass(frozen=True)
class ReloadRecord:
    """One row of `reloads` and its files: (name, sha256)."""

    started: float  # Unix time
    seconds: float
    trigger: str
    result: str  # success or failure
    message: str
    configs: str
    files: tuple[tuple[str, str], ...] = ()


@dataclass
class Batch:
    """The rows of one commit, taken when it was handed over (the engine goes on)."""

    tables: dict[str, str]  # `commit_batch` column -> its rows as JSON
    lines: list[Line]
    shas: list[str]  # of the definitions this batch stores first


class Store:
    def __init__(
        self,
        path: Path | str,
        out_dir: Path | str | None,
        sync: Sync = "normal",
        retry_window: float = 0.0,
        role: str = "",
    ):
        """`out_dir` holds the output files; None for tools that write no output line
        (they then leave the outbox alone). A write that fails with a fault that can pass
        is retried with backoff for `retry_window` seconds before its error is raised.
        `role` ("serve") is written in the lock file, for `dsiem-sql reload`."""
        self.path = Path(path)
        self.sync = sync
        self.retry_window = retry_window
        self.out = None if out_dir is None else Appender(out_dir, fsync=sync == "full")
        self.last_commit = 0.0  # wall-clock time of the last successful commit
        self._writer: Writer | None = None
        self._lock = WriterLock(self.path, role)
        self._stored: set[str] = set()  # sha256 of the definitions in directive_versions
        self._sha_of = ShaOf()
        # (backlog id, stage) -> rows.stage_mark of the row last written, to skip unchanged ones
        self._stage_marks: dict[tuple[str, int], tuple] = {}
        self._unconfirmed = False  # output lines appended since positions were recorded

    @property
    def writer(self) -> Writer:
        assert self._writer is not None, "open the store first"
        return self._writer

    @property
    def failing(self) -> bool:
        return self._writer is not None and self._writer.failing

    @property
    def retries(self) -> int:
        return 0 if self._writer is None else self._writer.retries

    # -- opening and resuming ------------------------------------------------------------

    async def open(self) -> None:
        """Lock, upgrade, connect, and write the output lines a crash left in the outbox."""
        self._lock.acquire(self.path)
        try:
            upgrade(self.path, self.sync)
            self._writer = await Writer.open(self.path, self.sync, self.retry_window)
            await self.writer.run(_create_commit_view)
            self._stored = {
                sha for (sha,) in await self.writer.read("SELECT sha256 FROM directive_versions")
            }
            if self.out is not None:
                self.out.open()
                recorded = {
                    r["file"]: Recorded(r["path"], r["size"], r["written_seq"])
                    for r in await self.writer.read("SELECT * FROM output_files")
                }
                pending = [tuple(r) for r in await self.writer.read(
                    "SELECT seq, file, line FROM outbox ORDER BY seq")]
                written = self.out.recover(recorded, pending)
                if pending:
                    log.info("wrote %d output lines committed before a crash", written)
                self._unconfirmed = True
                await self._confirm()
        except BaseException:
            await self.close()
            raise

    async def resume(
        self, directive_of: DirectiveOf, source: str | None = None, with_backlogs: bool = True
    ) -> Resumed:
        """The engine state of the last commit, the position reached in `source`, and (unless
        `with_backlogs` is false) the live backlogs of the loaded directives."""
        resumed = await resume(self.writer, directive_of, source, with_backlogs)
        self._resumed(resumed.backlogs, resumed.shas)
        return resumed

    async def live_backlogs(self, directive_of: DirectiveOf, ids: list[str]) -> list[Backlog]:
        """The stored live backlogs among `ids` (just imported), rebuilt as `resume` does."""
        found = await live_backlogs(self.writer, directive_of, ids)
        self._resumed(found.backlogs, found.shas)
        return found.backlogs

    def _resumed(self, backlogs: list[Backlog], shas: dict[int, str]) -> None:
        definitions = {id(b.definition): b.definition for b in backlogs}
        for key, definition in definitions.items():
            self._sha_of.remember(definition, shas[key])
        for b in backlogs:
            for stage in b.stages:
                self._stage_marks[(b.id, stage.number)] = rows.stage_mark(stage)

    # -- writing --------------------------------------------------------------------------

    def snapshot(self, changes: Changes, clock: int, progress: Progress | None = None) -> Batch:
        """The rows of `changes`, taken now: the engine goes on changing its backlogs while
        the batch is written."""
        assert self.out is not None or not (changes.links or changes.alarms), (
            "this store writes no output lines"
        )
        state = [("clock", clock)]
        if changes.next_seq:
            state.append(("next_seq", changes.next_seq))
        lines = self.out.number(changes) if self.out is not None else []
        backlogs, stages, enrichments = [], [], []
        versions: dict[str, tuple] = {}
        marks, stored = self._stage_marks, self._stored
        for b in changes.backlogs.values():
            sha = self._sha_of(b.definition)
            backlogs.append((*rows.backlog_row(b), sha))
            if sha not in stored and sha not in versions:
                versions[sha] = (b.definition.id, sha, rows.definition_json(b.definition))
            if b.intel_hits or b.vulnerabilities:
                enrichments.extend(rows.enrichment_rows(b))
            live = b.state == LIVE
            for stage in b.stages:
                if not rows.opened(stage):
                    continue
                key, mark = (b.id, stage.rule.stage), rows.stage_mark(stage)
                if marks.get(key) != mark:
                    stages.append(rows.stage_row(b, stage))
                    if live:
                        marks[key] = mark
                if not live:
                    marks.pop(key, None)
        tables: dict[str, list] = {
            "versions": list(versions.values()), "backlogs": backlogs,
            "enrichments": enrichments, "stages": stages, "links": changes.links,
            "outbox": lines, "state": state, "progress": [progress] if progress else [],
            "hits": [(i, hits, last) for i, (hits, last) in changes.suppression_hits.items()],
        }
        return Batch({k: rows_json(v) for k, v in tables.items() if v}, lines, list(versions))

    async def write(self, batch: Batch) -> None:
        """Commit `batch` in one transaction, then append its output lines to the files."""
        confirming = self._unconfirmed
        await self.writer.execute("commit", COMMIT, self._commit_parameters(batch.tables))
        self._stored.update(batch.shas)
        self.last_commit = time.time()
        if confirming:
            self._unconfirmed = False
        if self.out is not None and batch.lines:
            out = self.out

            async def append() -> None:
                out.append(batch.lines)

            await self.writer.retrying("append the output lines", append)
            self._unconfirmed = True

    def _commit_parameters(self, tables: dict[str, str]) -> tuple:
        """The `commit_batch` row of `tables`; it also records how far the output files are
        written, when lines were appended since that was last recorded."""
        written_upto = None
        if self._unconfirmed and self.out is not None:
            tables = {**tables, "files": rows_json(self.out.positions())}
            written_upto = self.out.written_upto
        return (*(tables.get(column, "[]") for column in COLUMNS[:-1]), written_upto)

    async def _confirm(self) -> None:
        """Record how far the output files are written, and drop those outbox lines."""
        await self.writer.execute("record the output files", COMMIT, self._commit_parameters({}))
        self._unconfirmed = False

    async def insert_import(
        self, found: rows.ImportRows, definition: DirectiveConfig, next_seq: int
    ) -> set[str]:
        """Insert a legacy file's rows in one transaction; returns the alarm ids that were
        already present and so were left alone. No output line is written."""
        sha = self._sha_of(definition)

        def job(con: sqlite3.Connection) -> set[str]:
            present = {
                r[0] for r in con.execute(
                    "SELECT id FROM backlogs WHERE id IN (SELECT value FROM json_each(?))",
                    (rows_json(found.ids),),
                )
            }
            if len(present) == len(found.ids):
                return present

            def new(items: list[tuple]) -> str:  # every row's first column is its backlog's id
                return rows_json([r for r in items if r[0] not in present])

            con.execute(COMMIT, self._commit_parameters({
                "versions": rows_json([(definition.id, sha, rows.definition_json(definition))]),
                "backlogs": new([(*r, sha) for r in found.backlogs]),
                "stages": new(found.stages),
                "links": new(found.links),
                "enrichments": new(found.enrichments),
                "state": rows_json([("next_seq", next_seq)]),
            }))
            return present

        present = await self.writer.transaction(
            f"import the backlogs of directive {definition.id}", job)
        self._stored.add(sha)
        return present

    async def record_reload(self, reload: ReloadRecord) -> int:
        """Record a config load or reload, with the sha256 of each file; returns its id."""

        def job(con: sqlite3.Connection) -> int:
            cursor = con.execute(INSERT_RELOAD, (
                reload.started, reload.seconds, reload.trigger, reload.result,
                reload.message, reload.configs,
            ))
            assert cursor.lastrowid is not None
            con.executemany(INSERT_RELOAD_FILE,
                            [(cursor.lastrowid, f, sha) for f, sha in reload.files])
            return cursor.lastrowid

        return await self.writer.transaction("record the config reload", job)

    async def suppressions(self) -> list[Suppression]:
        """The suppressions not removed, for the engine."""
        try:
            return suppressions.in_force(await self.writer.read(suppressions.IN_FORCE))
        except ValueError as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    async def add_suppression(self, new: NewSuppression, created: int) -> int:
        """Record a suppression; its id."""
        return await self.writer.transaction(
            "add a suppression", lambda con: suppressions.insert(con, new, created))

    async def remove_suppression(self, suppression_id: int, now: int) -> bool:
        """Mark a suppression removed; False if none is in force with that id."""
        return await self.writer.transaction(
            "remove a suppression", lambda con: suppressions.remove(con, suppression_id, now))

    async def prune(self, before: int) -> int:
        """Delete ended backlogs (and their stages and event links) ended before `before`."""

        def job(con: sqlite3.Connection) -> int:
            cursor = con.execute(
                "DELETE FROM backlogs WHERE state != 'live' AND ended_time < ?", (before,)
            )
            return cursor.rowcount

        return await self.writer.transaction("delete ended backlogs", job)

    async def checkpoint(self) -> bool:
        """Truncate a WAL that grew past `WAL_LIMIT` while a long reader held an old
        snapshot, once no reader needs it; returns whether it was truncated."""
        try:
            if os.stat(f"{self.path}-wal").st_size <= WAL_LIMIT:
                return False
        except FileNotFoundError:
            return False
        return await self.writer.checkpoint()

    async def close(self, abort: bool = False) -> None:
        """Record how far the output files are written, and close. A write under way must
        be finished or cancelled first; what it committed is recovered at the next start.
        With `abort` (the service is failing) nothing more is written."""
        try:
            if self._writer is not None:
                try:
                    if self._unconfirmed and not abort:
                        await self._confirm()
                finally:
                    await self._writer.close()
                    self._writer = None
        finally:
            self._lock.release()


class ShaOf:
    """The sha256 of each definition's JSON, by the definition object's `id()` for as long as
    the object lives: an entry goes when its definition is freed (a reload lets old
    definitions go), before another object can get the same `id()`."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[DirectiveConfig], str]] = {}

    def __call__(self, definition: DirectiveConfig) -> str:
        entry = self._entries.get(id(definition))
        if entry is not None:
            return entry[1]
        sha = rows.definition_sha(rows.definition_json(definition))
        self.remember(definition, sha)
        return sha

    def remember(self, definition: DirectiveConfig, sha: str) -> None:
        key, entries = id(definition), self._entries

        def gone(ref: weakref.ref[DirectiveConfig]) -> None:
            if entries.get(key, ("", ""))[0] is ref:
                del entries[key]

        entries[key] = (weakref.ref(definition, gone), sha)

    def __len__(self) -> int:
        return len(self._entries)


def _create_commit_view(con: sqlite3.Connection) -> None:
    for statement in commit_view():
        con.execute(statement)


__all__ = ["Batch", "ReloadRecord", "Resumed", "Store"]

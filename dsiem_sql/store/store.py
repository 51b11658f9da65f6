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
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import orjson

from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.engine import Backlog, Changes
from dsiem_sql.store import rows
from dsiem_sql.store.database import Sync, WriterLock, upgrade
from dsiem_sql.store.outbox import Appender, Line, Recorded
from dsiem_sql.store.resume import DirectiveOf, Resumed, live_backlogs, resume
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


UPSERT_STATE = insert_sql("engine_state", ("key", "value"), "key")
UPSERT_PROGRESS = insert_sql("input_progress", ("source", "line", "offset"), "source")
UPSERT_OUTPUT = insert_sql("output_files", ("file", "path", "size", "written_seq"), "file")
INSERT_RELOAD = insert_sql(
    "reloads", ("started", "seconds", "trigger", "result", "message", "configs"))
INSERT_RELOAD_FILE = insert_sql("reload_files", ("reload_id", "file", "sha256"))


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

    lines: list[Line]
    links: list[tuple]
    state: list[tuple[str, int]]
    progress: Progress | None
    backlogs: list[tuple] = field(default_factory=list)  # without their directive_version
    definitions: list[DirectiveConfig] = field(default_factory=list)
    enrichments: list[tuple] = field(default_factory=list)
    stages: list[tuple] = field(default_factory=list)


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
        self._versions: dict[str, int] = {}  # definition sha -> directive_versions.id
        # id(DirectiveConfig) -> its directive_versions.id, while that definition lives (a
        # reload lets old definitions go, and a new one may then get the same id)
        self._version_of = VersionOf()
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
            self._versions = dict(
                (sha, id_) for sha, id_ in
                await self.writer.read("SELECT sha256, id FROM directive_versions")
            )
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
                await self.writer.transaction("record the output files", self._confirm)
                self._unconfirmed = False
        except BaseException:
            await self.close()
            raise

    async def resume(
        self, directive_of: DirectiveOf, source: str | None = None, with_backlogs: bool = True
    ) -> Resumed:
        """The engine state of the last commit, the position reached in `source`, and (unless
        `with_backlogs` is false) the live backlogs of the loaded directives."""
        resumed = await resume(self.writer, directive_of, source, with_backlogs)
        self._resumed(resumed.backlogs, resumed.versions)
        return resumed

    async def live_backlogs(self, directive_of: DirectiveOf, ids: list[str]) -> list[Backlog]:
        """The stored live backlogs among `ids` (just imported), rebuilt as `resume` does."""
        found = await live_backlogs(self.writer, directive_of, ids)
        self._resumed(found.backlogs, found.versions)
        return found.backlogs

    def _resumed(self, backlogs: list[Backlog], versions: dict[int, int]) -> None:
        definitions = {id(b.definition): b.definition for b in backlogs}
        for key, definition in definitions.items():
            self._version_of.remember(definition, versions[key])
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
        batch = Batch(
            lines=self.out.number(changes) if self.out is not None else [],
            links=list(changes.links),
            state=state,
            progress=progress,
        )
        for b in changes.backlogs.values():
            batch.backlogs.append(rows.backlog_row(b))
            batch.definitions.append(b.definition)
            batch.enrichments.extend(rows.enrichment_rows(b))
            for stage in b.stages:
                if not rows.opened(stage):
                    continue
                key, mark = (b.id, stage.number), rows.stage_mark(stage)
                if self._stage_marks.get(key) != mark:
                    batch.stages.append(rows.stage_row(b, stage))
                    if b.state == "live":
                        self._stage_marks[key] = mark
                if b.state != "live":
                    self._stage_marks.pop(key, None)
        return batch

    async def write(self, batch: Batch) -> None:
        """Commit `batch` in one transaction, then append its output lines to the files."""

        def job(con: sqlite3.Connection) -> Versions:
            versions = Versions(self)
            if batch.backlogs:
                versioned = [
                    (*row, versions.of(con, definition))
                    for row, definition in zip(batch.backlogs, batch.definitions, strict=True)
                ]
                _insert_rows(con, "backlogs", rows.BACKLOG_COLUMNS, versioned, "id")
            _insert_rows(con, "enrichments", rows.ENRICHMENT_COLUMNS, batch.enrichments,
                         "nothing")
            _insert_rows(con, "stages", rows.STAGE_COLUMNS, batch.stages, "backlog_id, stage")
            _insert_rows(con, "stage_events", rows.LINK_COLUMNS, batch.links, "nothing")
            _insert_rows(con, "outbox", rows.OUTBOX_COLUMNS, batch.lines, "")
            con.executemany(UPSERT_STATE, batch.state)
            if batch.progress is not None:
                con.execute(UPSERT_PROGRESS, batch.progress)
            self._confirm(con)
            return versions

        confirming = self._unconfirmed
        (await self.writer.transaction("commit", job)).keep()
        self.last_commit = time.time()
        if confirming:
            self._unconfirmed = False
        if self.out is not None and batch.lines:
            out = self.out

            async def append() -> None:
                out.append(batch.lines)

            await self.writer.retrying("append the output lines", append)
            self._unconfirmed = True

    def _confirm(self, con: sqlite3.Connection) -> None:
        """Record how far the output files are written, and drop those outbox lines."""
        if self._unconfirmed and self.out is not None:
            con.executemany(UPSERT_OUTPUT, self.out.positions())
            con.execute("DELETE FROM outbox WHERE seq <= ?", (self.out.written_upto,))

    async def insert_import(
        self, found: rows.ImportRows, definition: DirectiveConfig, next_seq: int
    ) -> set[str]:
        """Insert a legacy file's rows in one transaction; returns the alarm ids that were
        already present and so were left alone. No output line is written."""

        def job(con: sqlite3.Connection) -> tuple[set[str], Versions]:
            versions = Versions(self)
            present = {
                r[0] for r in con.execute(
                    "SELECT id FROM backlogs WHERE id IN (SELECT value FROM json_each(?))",
                    (orjson.dumps(found.ids).decode(),),
                )
            }
            if len(present) == len(found.ids):
                return present, versions
            version = versions.of(con, definition)
            tables = [
                ("backlogs", rows.BACKLOG_COLUMNS, [(*r, version) for r in found.backlogs], ""),
                ("stages", rows.STAGE_COLUMNS, found.stages, ""),
                ("stage_events", rows.LINK_COLUMNS, found.links, "nothing"),
                ("enrichments", rows.ENRICHMENT_COLUMNS, found.enrichments, "nothing"),
            ]
            for table, columns, items, conflict in tables:
                if present:  # every row's first column is its backlog's id
                    items = [r for r in items if r[0] not in present]
                _insert_rows(con, table, columns, items, conflict)
            con.execute(UPSERT_STATE, ("next_seq", next_seq))
            return present, versions

        present, versions = await self.writer.transaction(
            f"import the backlogs of directive {definition.id}", job)
        versions.keep()
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
                        await self._writer.transaction("record the output files", self._confirm)
                        self._unconfirmed = False
                finally:
                    await self._writer.close()
                    self._writer = None
        finally:
            self._lock.release()


class VersionOf:
    """The `directive_versions` id of each definition object, by its `id()`, for as long as
    the object lives: an entry goes when its definition is freed, before another object
    can get the same `id()`."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[DirectiveConfig], int]] = {}

    def get(self, definition: DirectiveConfig) -> int | None:
        entry = self._entries.get(id(definition))
        return None if entry is None else entry[1]

    def remember(self, definition: DirectiveConfig, version: int) -> None:
        key, entries = id(definition), self._entries

        def gone(ref: weakref.ref[DirectiveConfig]) -> None:
            if entries.get(key, (None, 0))[0] is ref:
                del entries[key]

        entries[key] = (weakref.ref(definition, gone), version)

    def __len__(self) -> int:
        return len(self._entries)


class Versions:
    """The `directive_versions` ids of one transaction's definitions. New rows become known
    to the store (`keep`) only once their transaction committed."""

    def __init__(self, store: Store):
        self.by_sha, self.by_object = store._versions, store._version_of
        self.new_by_sha: dict[str, int] = {}
        # id(definition) -> (the definition, kept alive until `keep`, its version id)
        self.new_by_object: dict[int, tuple[DirectiveConfig, int]] = {}

    def of(self, con: sqlite3.Connection, definition: DirectiveConfig) -> int:
        known = self.by_object.get(definition)
        if known is not None:
            return known
        key = id(definition)
        if key in self.new_by_object:
            return self.new_by_object[key][1]
        text = rows.definition_json(definition)
        sha = rows.definition_sha(text)
        version = self.by_sha.get(sha) or self.new_by_sha.get(sha)
        if version is None:
            cursor = con.execute(
                "INSERT INTO directive_versions (directive_id, sha256, definition) "
                "VALUES (?, ?, ?)", (definition.id, sha, text),
            )
            assert cursor.lastrowid is not None
            version = self.new_by_sha[sha] = cursor.lastrowid
        self.new_by_object[key] = (definition, version)
        return version

    def keep(self) -> None:
        self.by_sha.update(self.new_by_sha)
        for definition, version in self.new_by_object.values():
            self.by_object.remember(definition, version)


@lru_cache(maxsize=64)
def insert_rows_sql(table: str, columns: tuple[str, ...], conflict: str) -> str:
    """INSERT of the rows of a JSON array of arrays, the one parameter."""
    picks = ", ".join(f"value->>{i}" for i in range(len(columns)))
    select = f"SELECT {picks} FROM json_each(?) WHERE true ORDER BY key"  # `true`: see upsert
    return insert_sql(table, columns, conflict).replace(
        f"VALUES ({', '.join('?' * len(columns))})", select)


def _insert_rows(
    con: sqlite3.Connection, table: str, columns: tuple[str, ...], items: list[tuple],
    conflict: str,
) -> None:
    """All `items` in one statement, as one JSON parameter that SQLite takes apart itself:
    binding a parameter at a time would hold the interpreter lock, which the engine's thread
    needs, for every value."""
    if items:
        rows_json = orjson.dumps(items, default=tuple)  # EventLink is a NamedTuple
        con.execute(insert_rows_sql(table, columns, conflict), (rows_json,))


__all__ = ["Batch", "ReloadRecord", "Resumed", "Store"]

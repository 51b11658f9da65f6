"""The single writer of the database, and the transactional outbox for the output files.

Each `commit` applies a batch of engine changes in one transaction (Core `executemany`), and
stores the output lines it caused in the `outbox` table of the same transaction. After the
commit the lines are appended to `siem_alarms.json` / `siem_alarm_events.json`; the next
transaction records how far the files were written and deletes those outbox rows. After a
crash, `open` writes the committed lines that did not reach the files, exactly once and in
commit order.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.engine import Changes, Engine
from dsiem_sql.output import ALARM_EVENTS_FILE, ALARMS_FILE
from dsiem_sql.store import rows
from dsiem_sql.store.database import (
    BUSY_TIMEOUT_MS,
    StoreError,
    Sync,
    WriterLock,
    async_engine,
    connect,
    describe_error,
    upgrade,
)
from dsiem_sql.store.errors import cannot_write
from dsiem_sql.store.schema import (
    backlogs,
    directive_versions,
    engine_state,
    enrichments,
    input_progress,
    outbox,
    output_files,
    stage_events,
    stages,
)

log = logging.getLogger(__name__)

FILES = {rows.ALARMS: ALARMS_FILE, rows.ALARM_EVENTS: ALARM_EVENTS_FILE}
# Faults that pass by themselves: a full disk, a lock held too long, a failing write.
TRANSIENT_SQLITE = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
                    sqlite3.SQLITE_IOERR}
TRANSIENT_OS = {errno.ENOSPC, errno.EDQUOT, errno.EIO}
WAL_LIMIT = 4 * 1024 * 1024  # a WAL above this is truncated once no reader holds it


def _upsert(table, keys: list[str]):
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: stmt.excluded[c.name] for c in table.c if c.name not in keys},
    )


UPSERT_STATE = _upsert(engine_state, ["key"])
UPSERT_PROGRESS = _upsert(input_progress, ["source"])
UPSERT_OUTPUT = _upsert(output_files, ["file"])


@dataclass
class Resumed:
    """What `load` found: the engine clock and the input position of the last commit."""

    clock: int = 0
    line: int = 0
    offset: int = 0
    backlogs: int = 0
    skipped: int = 0


@dataclass
class _Batch:
    """The rows of one commit, taken when it was handed over (the engine goes on)."""

    outbox: list[tuple[int, str, str]]  # rows.OUTBOX_COLUMNS
    links: list[tuple]
    state: list[dict[str, Any]]
    progress: tuple[str, int, int] | None
    backlogs: list[tuple] = field(default_factory=list)  # without their directive_version
    definitions: list[DirectiveConfig] = field(default_factory=list)
    enrichments: list[tuple] = field(default_factory=list)
    stages: list[tuple] = field(default_factory=list)


@dataclass
class _OutputFile:
    path: Path
    size: int
    written_seq: int


class Store:
    def __init__(
        self,
        path: Path | str,
        out_dir: Path | str | None,
        sync: Sync = "normal",
        retry_window: float = 0.0,
    ):
        """`out_dir` holds the output files; None for tools that write no output line
        (they then leave the outbox alone). A write that fails with a transient fault is
        retried with backoff for `retry_window` seconds before its error is raised."""
        self.path = Path(path)
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.sync = sync
        self.retry_window = retry_window
        self.failing_since: float | None = None  # monotonic time of the first failed try
        self.retries = 0
        self.last_commit = 0.0  # wall-clock time of the last successful commit
        self.engine: AsyncEngine | None = None
        self._lock = WriterLock(self.path)
        self._versions: dict[str, int] = {}  # definition sha -> directive_versions.id
        self._version_of: dict[int, int] = {}  # id(DirectiveConfig) -> directive_versions.id
        self._files: dict[str, _OutputFile] = {}
        # (backlog id, stage) -> rows.stage_mark of the row last written, to skip unchanged ones
        self._stage_marks: dict[tuple[str, int], tuple] = {}
        self._next_outbox = 1
        self._written_upto = 0  # every outbox line up to this seq is in its file
        self._unconfirmed = False
        self._writer: asyncio.Task[None] | None = None
        self._importer: _ImportThread | None = None

    # -- opening and loading ------------------------------------------------------------

    async def open(self) -> None:
        """Lock, upgrade, connect, and write the output lines a crash left in the outbox."""
        self._lock.acquire(self.path)
        try:
            upgrade(self.path, self.sync)
            self.engine = async_engine(self.path, self.sync)
            async with self.engine.begin() as conn:
                if self.out_dir is not None:
                    _open_output_files(self.out_dir)
                    await self._recover_outbox(conn)
                result = await conn.execute(
                    select(directive_versions.c.sha256, directive_versions.c.id)
                )
                self._versions = dict(result.all())
        except BaseException:
            await self.close()
            raise

    async def load(
        self, engine: Engine, source: str | None = None, with_backlogs: bool = True
    ) -> Resumed:
        """Give the engine back its clock, backlog counter and (unless `with_backlogs` is false)
        its live backlogs."""
        assert self.engine is not None
        await self.flush()
        resumed = Resumed()
        async with self.engine.connect() as conn:
            state = dict((await conn.execute(select(engine_state))).all())
            resumed.clock = state.get("clock", 0)
            engine.next_seq = max(engine.next_seq, state.get("next_seq", 1))
            if source is not None:
                row = (
                    await conn.execute(
                        select(input_progress).where(input_progress.c.source == source)
                    )
                ).first()
                if row is not None:
                    resumed.line, resumed.offset = row.line, row.offset
            if not with_backlogs:
                return resumed
            live = await self._live_rows(conn, backlogs.c.state == "live")
            resumed.backlogs, resumed.skipped = await self._restore(conn, engine, live)
        return resumed

    async def restore(self, engine: Engine, ids: list[str]) -> int:
        """Make stored live backlogs (just imported ones) live in `engine` too, exactly as
        `load` resumes them; returns how many."""
        assert self.engine is not None
        async with self.engine.connect() as conn:
            where = backlogs.c.id.in_(ids) & (backlogs.c.state == "live")
            restored, _ = await self._restore(conn, engine, await self._live_rows(conn, where))
        return restored

    @staticmethod
    async def _live_rows(conn: AsyncConnection, where) -> list:
        query = (
            select(backlogs, directive_versions.c.definition)
            .join(directive_versions)
            .where(where)
            .order_by(backlogs.c.seq)
        )
        return list((await conn.execute(query)).mappings().all())

    async def _restore(self, conn: AsyncConnection, engine: Engine, live: list) -> tuple[int, int]:
        """Rebuild the backlogs of `live` rows and restore them into `engine`; returns how
        many were restored and how many skipped (their directive is not loaded)."""
        if not live:
            return 0, 0
        ids = [r["id"] for r in live]
        stage_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in (
            await conn.execute(
                select(stages).where(stages.c.backlog_id.in_(ids)).order_by(stages.c.stage)
            )
        ).mappings():
            stage_rows[r["backlog_id"]].append(dict(r))
        events: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
        for backlog_id, stage, event_id in await conn.execute(
            select(stage_events.c.backlog_id, stage_events.c.stage, stage_events.c.event_id)
            .where(stage_events.c.backlog_id.in_(ids))
            .order_by(stage_events.c.id)
        ):
            events[backlog_id][stage].append(event_id)
        found: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
        for backlog_id, kind, provider, term, result in await conn.execute(
            select(enrichments).where(enrichments.c.backlog_id.in_(ids))
        ):
            found[backlog_id].append((kind, provider, term, result))
        restored = skipped = 0
        definitions: dict[str, DirectiveConfig] = {}
        for row in live:
            directive = engine.directive(row["directive_id"])
            if directive is None:
                log.warning(
                    "backlog %s belongs to directive %d, which is not loaded; leaving it",
                    row["id"],
                    row["directive_id"],
                )
                skipped += 1
                continue
            text = row["definition"]
            if text not in definitions:
                definitions[text] = DirectiveConfig.model_validate_json(text)
            definition = definitions[text]
            self._version_of[id(definition)] = row["directive_version"]
            b = rows.backlog_from_rows(
                dict(row), stage_rows[row["id"]], events[row["id"]], directive, definition
            )
            for kind, provider, term, result in found[row["id"]]:
                records = b.intel_hits if kind == "intel" else b.vulnerabilities
                records[(provider, term, result)] = None
            engine.restore(b)
            for stage in b.stages:
                self._stage_marks[(b.id, stage.number)] = rows.stage_mark(stage)
            restored += 1
        return restored, skipped

    # -- writing ------------------------------------------------------------------------

    async def commit(
        self,
        changes: Changes,
        engine: Engine,
        clock: int,
        progress: tuple[str, int, int] | None = None,
    ) -> None:
        """Snapshot one batch of changes and hand it to the writer, which applies it in one
        transaction and then appends its output lines. The writer works while the engine
        goes on; batches are written one at a time, in order."""
        assert self.engine is not None
        batch = self._snapshot(changes, engine, clock, progress)
        await self.flush()
        self._writer = asyncio.get_running_loop().create_task(self._write(batch))

    async def flush(self) -> None:
        """Wait until every batch handed to `commit` is committed and written out; raise
        the writer's error if it failed."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer

    @property
    def writing(self) -> bool:
        """A batch is being written."""
        return self._writer is not None and not self._writer.done()

    @property
    def failing(self) -> bool:
        """The current write has failed at least once and is being retried."""
        return self.failing_since is not None

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[None]]) -> None:
        """Run `attempt`; retry it with backoff while it fails with a transient fault, for
        at most `retry_window` seconds from the first failure."""
        delay = 0.1
        while True:
            try:
                await attempt()
            except Exception as exc:
                cause = transient_cause(exc)
                if cause is None:
                    if isinstance(getattr(exc, "orig", exc), sqlite3.Error):
                        error = describe_error(exc, self.path)
                        raise StoreError(f"cannot {what}: {error}") from exc
                    raise
                now = time.monotonic()
                if self.failing_since is None:
                    self.failing_since = now
                failing = now - self.failing_since
                if failing >= self.retry_window:
                    raise StoreError(
                        f"{self.path}: cannot {what} for {failing:.0f} s: {cause}"
                    ) from None
                self.retries += 1
                log.warning(
                    "cannot %s: %s; retry %d in %.1f s (failing for %.0f s, giving up after "
                    "%.0f s)", what, cause, self.retries, delay, failing, self.retry_window,
                )
                await asyncio.sleep(min(delay, self.retry_window - failing))
                delay = min(delay * 2, 5.0)
            else:
                if self.failing_since is not None:
                    log.warning("%s: writing again after %.1f s of failures", self.path,
                                time.monotonic() - self.failing_since)
                    self.failing_since = None
                return

    def _snapshot(
        self,
        changes: Changes,
        engine: Engine,
        clock: int,
        progress: tuple[str, int, int] | None,
    ) -> _Batch:
        lines = rows.outbox_lines(changes)
        assert self.out_dir is not None or not lines, "this store writes no output lines"
        first = self._next_outbox
        self._next_outbox += len(lines)
        batch = _Batch(
            outbox=[(first + i, file, line) for i, (file, line) in enumerate(lines)],
            links=list(changes.links),
            state=[{"key": "clock", "value": clock}, {"key": "next_seq", "value": engine.next_seq}],
            progress=progress,
        )
        for b in changes.backlogs.values():
            batch.backlogs.append(rows.backlog_row(b))
            batch.definitions.append(b.definition)
            batch.enrichments.extend(rows.enrichment_rows(b))
            for stage in b.stages:
                key, mark = (b.id, stage.number), rows.stage_mark(stage)
                if self._stage_marks.get(key) != mark:
                    batch.stages.append(rows.stage_row(b, stage))
                    if b.state == "live":
                        self._stage_marks[key] = mark
                if b.state != "live":
                    self._stage_marks.pop(key, None)
        return batch

    async def _write(self, batch: _Batch) -> None:
        await self._retrying("commit", lambda: self._transaction(batch))
        self.last_commit = time.time()

        async def append() -> None:
            self._append(batch.outbox)

        await self._retrying("append the output lines", append)

    async def _transaction(self, batch: _Batch) -> None:
        assert self.engine is not None
        async with self.engine.begin() as conn:
            if batch.backlogs:
                versioned = [
                    (*row, await self._version(conn, definition))
                    for row, definition in zip(batch.backlogs, batch.definitions, strict=True)
                ]
                await _insert_many(conn, backlogs, versioned, upsert=("id",))
            if batch.enrichments:
                await _insert_many(conn, enrichments, batch.enrichments, or_nothing=True)
            if batch.stages:
                await _insert_many(conn, stages, batch.stages, upsert=("backlog_id", "stage"))
            if batch.links:
                await _insert_many(conn, stage_events, batch.links, or_nothing=True)
            if batch.outbox:
                await _insert_many(conn, outbox, batch.outbox)
            await conn.execute(UPSERT_STATE, batch.state)
            if batch.progress is not None:
                source, line, offset = batch.progress
                await conn.execute(
                    UPSERT_PROGRESS, {"source": source, "line": line, "offset": offset}
                )
            confirmed = self._unconfirmed
            await self._confirm_written(conn)
        if confirmed:
            self._unconfirmed = False

    async def start_import(
        self, found: rows.ImportRows, definition: DirectiveConfig, next_seq: int
    ) -> asyncio.Future[set[str]]:
        """Hand a legacy file's rows to the import thread, which inserts them in one
        transaction, and return at once, so that the caller can go on with the next file.
        The future gives the alarm ids that were already present and so were left alone.
        No output line is written; one import runs at a time."""
        assert self.engine is not None
        await self.flush()
        if id(definition) not in self._version_of:
            async with self.engine.begin() as conn:
                await self._version(conn, definition)
        version = self._version_of[id(definition)]
        tables = [
            (backlogs, [(*row, version) for row in found.backlogs]),
            (stages, found.stages),
            (stage_events, found.links),
            (enrichments, found.enrichments),
        ]
        if self._importer is None:
            self._importer = _ImportThread(self.path, self.sync)
        return self._importer.insert(found.ids, tables, next_seq)

    async def prune(self, before: int) -> int:
        """Delete ended backlogs (and their stages and event links) ended before `before`."""
        await self.flush()
        deleted = 0

        async def attempt() -> None:
            nonlocal deleted
            assert self.engine is not None
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    delete(backlogs).where(
                        backlogs.c.state != "live", backlogs.c.ended_time < before
                    )
                )
            deleted = result.rowcount or 0

        await self._retrying("delete ended backlogs", attempt)
        return deleted

    async def checkpoint(self) -> bool:
        """Truncate a WAL that grew past `WAL_LIMIT` (while a long reader held an old
        snapshot) once no reader needs it; returns whether it was truncated. Never waits
        for a reader."""
        assert self.engine is not None
        try:
            if os.stat(f"{self.path}-wal").st_size <= WAL_LIMIT:
                return False
        except FileNotFoundError:
            return False
        await self.flush()
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA busy_timeout = 0")
            try:
                busy, _, _ = (
                    await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                ).one()
            finally:
                await conn.exec_driver_sql(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return not busy

    async def close(self, abort: bool = False) -> None:
        """Finish the writes under way and close. With `abort` (the service is failing),
        stop the write under way instead: what it committed is recovered at the next
        start."""
        try:
            if self._importer is not None:
                self._importer.close()  # after its running transaction, if any
                self._importer = None
            if self.engine is not None and abort:
                if self._writer is not None:
                    self._writer.cancel()
                    await asyncio.gather(self._writer, return_exceptions=True)
                    self._writer = None
                await self.engine.dispose()
                self.engine = None
            if self.engine is not None:
                await self.flush()
                if self._unconfirmed:
                    async with self.engine.begin() as conn:
                        await self._confirm_written(conn)
                await self.engine.dispose()
                self.engine = None
        finally:
            self._lock.release()

    async def _version(self, conn: AsyncConnection, definition: DirectiveConfig) -> int:
        version = self._version_of.get(id(definition))
        if version is not None:
            return version
        text = rows.definition_json(definition)
        sha = rows.definition_sha(text)
        if sha not in self._versions:
            result = await conn.execute(
                insert(directive_versions).values(
                    directive_id=definition.id, sha256=sha, definition=text
                )
            )
            self._versions[sha] = result.inserted_primary_key[0]
        self._version_of[id(definition)] = self._versions[sha]
        return self._versions[sha]

    # -- output files -------------------------------------------------------------------

    def _append(self, outbox_rows: list[tuple[int, str, str]]) -> None:
        by_file: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        for r in outbox_rows:
            by_file[r[1]].append(r)
        for file, items in by_file.items():
            state = self._files[file]
            if state.written_seq >= items[-1][0]:
                continue  # an earlier try of this batch wrote them
            with state.path.open("ab") as f:
                if os.fstat(f.fileno()).st_size > state.size:
                    f.truncate(state.size)  # what a failed try left of its lines
                f.write("".join(line + "\n" for _, _, line in items).encode())
                f.flush()
                if self.sync == "full":
                    os.fsync(f.fileno())
                state.size = f.tell()
            state.written_seq = items[-1][0]
            self._written_upto = max(self._written_upto, items[-1][0])
            self._unconfirmed = True

    async def _confirm_written(self, conn: AsyncConnection) -> None:
        if not self._unconfirmed:
            return
        await conn.execute(
            UPSERT_OUTPUT,
            [
                {"file": file, "path": str(s.path), "size": s.size, "written_seq": s.written_seq}
                for file, s in self._files.items()
            ],
        )
        await conn.execute(delete(outbox).where(outbox.c.seq <= self._written_upto))

    async def _recover_outbox(self, conn: AsyncConnection) -> None:
        recorded = {r.file: r for r in (await conn.execute(select(output_files))).all()}
        pending = (await conn.execute(select(outbox).order_by(outbox.c.seq))).all()
        last_seq = (
            pending[-1].seq
            if pending
            else max((r.written_seq for r in recorded.values()), default=0)
        )
        written = 0
        for file, name in FILES.items():
            path = (self.out_dir / name).resolve()
            lines = [r.line for r in pending if r.file == file]
            skip = _lines_already_written(path, recorded.get(file), lines)
            if lines[skip:]:
                with path.open("ab") as f:
                    f.write("".join(line + "\n" for line in lines[skip:]).encode())
            written += len(lines) - skip
            size = path.stat().st_size if path.exists() else 0
            self._files[file] = _OutputFile(path, size, last_seq)
        if pending:
            log.info("wrote %d output lines committed before a crash", written)
        self._next_outbox = last_seq + 1
        self._written_upto = last_seq
        self._unconfirmed = True
        await self._confirm_written(conn)


def _open_output_files(directory: Path) -> None:
    """Create the directory and both files if needed: a directory that cannot be written
    stops the start, not the first alarm."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_write(directory, "create directory", exc) from None
    for name in FILES.values():
        try:
            (directory / name).open("ab").close()
        except OSError as exc:
            raise cannot_write(directory / name, "open for appending", exc) from None


class _ImportThread:
    """A second connection, used from its own thread, for the bulk inserts of an import.

    Each file is one transaction of a few multi-row INSERTs: SQLite then works through
    thousands of rows per call without the GIL, while the event loop's thread parses the
    next file. (`executemany` would wait for the GIL again after every row.)"""

    def __init__(self, path: Path, sync: Sync):
        self.path = path
        # few statements cached: each multi-row INSERT of another row count is a new one
        self.con = connect(path, sync, cached_statements=16)
        self.max_variables = self.con.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="dsiem-sql-import")

    def insert(
        self, ids: list[str], tables: list[tuple[Any, list[tuple]]], next_seq: int
    ) -> asyncio.Future[set[str]]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self.thread, self._insert, ids, tables, next_seq)

    def _insert(self, ids: list[str], tables: list[tuple[Any, list[tuple]]], next_seq: int):
        con = self.con
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                present = {
                    r[0]
                    for r in con.execute(
                        "SELECT id FROM backlogs WHERE id IN (SELECT value FROM json_each(?))",
                        (orjson.dumps(ids).decode(),),
                    )
                }
                if len(present) < len(ids):
                    for table, items in tables:
                        if present:  # every row's first column is its backlog's id
                            items = [r for r in items if r[0] not in present]
                        linked = table in (stage_events, enrichments)  # as the writer does
                        self._insert_rows(table.name, items, or_nothing=linked)
                    con.execute(
                        "INSERT INTO engine_state (key, value) VALUES ('next_seq', ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (next_seq,),
                    )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise describe_error(exc, self.path) from None
        return present

    def _insert_rows(self, table: str, items: list[tuple], or_nothing: bool) -> None:
        columns = COLUMNS[table]
        row = f"({', '.join('?' * len(columns))})"
        conflict = " ON CONFLICT DO NOTHING" if or_nothing else ""
        per = max(1, self.max_variables // len(columns))
        for i in range(0, len(items), per):
            chunk = items[i : i + per]
            values = ", ".join([row] * len(chunk))
            self.con.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{conflict}",
                list(chain.from_iterable(chunk)),
            )

    def close(self) -> None:
        self.thread.shutdown(wait=True)
        self.con.close()


COLUMNS = {
    backlogs.name: rows.BACKLOG_COLUMNS,
    stages.name: rows.STAGE_COLUMNS,
    stage_events.name: rows.LINK_COLUMNS,
    enrichments.name: rows.ENRICHMENT_COLUMNS,
    outbox.name: rows.OUTBOX_COLUMNS,
}


async def _insert_many(
    conn: AsyncConnection,
    table,
    items: list[tuple],
    or_nothing: bool = False,
    upsert: tuple[str, ...] = (),
) -> None:
    """executemany straight to the driver: for large batches, SQLAlchemy's per-row
    parameter processing costs more than SQLite's own work. `items` are tuples in the
    order of the table's `COLUMNS`. With `upsert` (the key columns) a conflicting row is
    updated; with `or_nothing` it is left alone."""
    keys = COLUMNS[table.name]
    conflict = " ON CONFLICT DO NOTHING" if or_nothing else ""
    if upsert:
        updates = ", ".join(f"{k} = excluded.{k}" for k in keys if k not in upsert)
        conflict = f" ON CONFLICT ({', '.join(upsert)}) DO UPDATE SET {updates}"
    await conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(keys)}) "
        f"VALUES ({', '.join('?' * len(keys))}){conflict}",
        items,
    )


def transient_cause(exc: BaseException) -> str | None:
    """What went wrong, if `exc` is a fault that can pass by itself; else None."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", 0) & 0xFF
        return str(orig) if code in TRANSIENT_SQLITE else None
    if isinstance(orig, OSError) and orig.errno in TRANSIENT_OS:
        return f"{orig.filename}: {orig.strerror}" if orig.filename else str(orig.strerror)
    return None


def _lines_already_written(path: Path, recorded: Any, lines: list[str]) -> int:
    """How many of the pending `lines` the file already holds after its recorded size.

    A partly written last line (no newline) is cut off, so it can be written again whole.
    """
    if recorded is None or recorded.path != str(path) or not path.exists():
        return 0
    size = path.stat().st_size
    if size < recorded.size:
        log.warning("%s is shorter than when it was last written; appending", path)
        return 0
    with path.open("rb+") as f:
        f.seek(recorded.size)
        tail = f.read()
        *complete, partial = tail.split(b"\n")
        skip = 0
        for written, line in zip(complete, lines, strict=False):
            if written != line.encode():
                break
            skip += 1
        if partial and skip == len(complete):
            f.truncate(size - len(partial))
    return skip


__all__ = ["Resumed", "Store", "StoreError"]

"""`dsiem-sql import-backlogs`: legacy saved backlog files into the database
(docs/behaviour.md, "Saved backlogs").

Each file is all or nothing: if it does not parse or validate, nothing of it is imported.
Backlogs that cannot be matched to a loaded directive are skipped with a reason; alarm ids
already in the database are left alone, so re-running an import changes nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections import Counter, deque
from collections.abc import AsyncGenerator, Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from dsiem_sql.engine import Backlog, Engine
from dsiem_sql.legacy.formats import SAVED_FILE, Skip, to_backlog
from dsiem_sql.logtext import shown
from dsiem_sql.store import rows
from dsiem_sql.store.rows import ImportRows

if TYPE_CHECKING:
    from dsiem_sql.store.store import Store

log = logging.getLogger(__name__)
MAX_WORKERS = 4  # processes reading files; the database thread takes a core as well


@dataclass
class FileResult:
    path: Path
    backlogs: int = 0
    imported: int = 0
    present: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    error: str | None = None

    @property
    def complete(self) -> bool:
        """Every backlog of the file is in the database now."""
        return self.error is None and not self.skipped


def backlog_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    return files


def describe(exc: ValidationError) -> str:
    """Where a saved file is wrong: line and column for bad JSON, else backlog and field."""
    err = exc.errors(include_url=False)[0]
    if err["type"] == "json_invalid":
        return f"invalid JSON: {err['ctx']['error']}"
    loc = list(err["loc"])
    where = f"backlog {loc[0]}" if loc and isinstance(loc[0], int) else "file"
    path = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc[1:]).replace(".[", "[")
    return f"{where}: {path}: {err['msg']}" if path else f"{where}: {err['msg']}"


def read_file(path: Path, engine: Engine) -> tuple[FileResult, list[Backlog]]:
    """Parse and convert one file; nothing is written. The backlogs' `seq` is left 0: the
    importer numbers them in file order."""
    result = FileResult(path)
    if not path.stem.isdigit():
        result.error = "the file name must be a directive id, like 1001.json"
        return result, []
    try:
        saved = SAVED_FILE.validate_json(path.read_bytes())
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror}"
        return result, []
    except ValidationError as exc:
        result.error = describe(exc)
        return result, []
    result.backlogs = len(saved)
    directive = engine.directive(int(path.stem))
    converted: list[Backlog] = []
    seen: set[str] = set()
    for item in saved:
        if directive is None:
            result.skipped[f"directive {path.stem} is not loaded"] += 1
            continue
        if item["alarm_id"] in seen:  # would break the single-transaction insert of the file
            result.skipped["alarm id repeated in the file"] += 1
            continue
        seen.add(item["alarm_id"])
        try:
            converted.append(to_backlog(item, directive, engine.options))
        except Skip as reason:
            log.warning("%s: skipping backlog %s: %s", path, shown(item["alarm_id"]), reason)
            result.skipped[str(reason)] += 1
    return result, converted


def read_rows(path: Path, engine: Engine) -> tuple[FileResult, ImportRows | None]:
    """`read_file`, and its backlogs as table rows."""
    result, backlogs = read_file(path, engine)
    return result, (rows.import_rows(backlogs) if backlogs else None)


_worker_engine: Engine | None = None


def _start_worker(engine: Engine) -> None:
    global _worker_engine
    _worker_engine = engine


def _read_rows_in_worker(path: Path) -> tuple[FileResult, ImportRows | None]:
    assert _worker_engine is not None
    return read_rows(path, _worker_engine)


async def _files_read(
    files: list[Path], engine: Engine
) -> AsyncGenerator[tuple[FileResult, ImportRows | None], None]:
    """`read_rows` of each file, in order. Parsing and converting is pure Python, so with
    several files it runs in forked worker processes, which inherit the loaded engine. A
    worker only reads files and converts: it uses no inherited connection or thread, and the
    one lock it may take, logging's, Python renews at each fork."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(len(files), cpus or 1, MAX_WORKERS)
    if workers < 2 or sys.platform != "linux":  # fork is safe enough only there
        for path in files:
            yield read_rows(path, engine)
        return
    with ProcessPoolExecutor(
        workers, mp_context=get_context("fork"), initializer=_start_worker, initargs=(engine,)
    ) as pool:
        # a few files ahead of the one being written, so that a large directory's rows do
        # not pile up in memory
        waiting = iter(files)
        reading = deque(
            pool.submit(_read_rows_in_worker, path) for path in islice(waiting, 2 * workers)
        )
        try:
            while reading:
                read = await asyncio.wrap_future(reading.popleft())
                for path in islice(waiting, 1):
                    reading.append(pool.submit(_read_rows_in_worker, path))
                yield read
        finally:
            for future in reading:
                future.cancel()


async def import_files(
    files: list[Path],
    engine: Engine,
    store,
    *,
    remove: bool = False,
    restore: bool = False,
    on_file: Callable[[FileResult], None] | None = None,
    present_ids: Callable[[list[str]], set[str]] | None = None,
) -> list[FileResult]:
    """Import each file in one transaction; with `restore`, the new backlogs also go live in
    `engine` (as `Store.resume` resumes stored ones).

    With `store` None it is a dry run: files are read and checked, and `present_ids` (if
    given) tells which alarm ids the database already has; nothing is written.
    """
    # the imported backlogs are many small containers that all stay alive: the cyclic
    # garbage collector would only rescan them over and over
    collecting = gc.isenabled()
    gc.disable()
    try:
        return await _import(files, engine, store, remove, restore, on_file, present_ids)
    finally:
        if collecting:
            gc.enable()


async def _import(files, engine, store, remove, restore, on_file, present_ids):
    results: list[FileResult] = []

    def done(result: FileResult) -> None:
        if remove and store is not None and result.complete:
            result.path.unlink()
        results.append(result)
        if on_file is not None:
            on_file(result)

    async def finish(result: FileResult, ids: list[str], inserting) -> None:
        present = await inserting
        new = [i for i in ids if i not in present]
        if restore:
            engine.resume(await store.live_backlogs(engine.directive, new), 0)
        result.present = len(present)
        result.imported = len(new)
        done(result)

    # while one file is inserted, the next ones are read
    async with asyncio.TaskGroup() as tasks, aclosing(_files_read(files, engine)) as files_read:
        inserting: tuple | None = None
        async for result, found in files_read:
            if inserting is not None:
                await finish(*inserting)
                inserting = None
            if found is None:
                done(result)
            elif store is None:
                present = present_ids(found.ids) if present_ids else set()
                result.present = len(present)
                result.imported = len(found.ids) - len(present)
                done(result)
            else:
                for n, row in enumerate(found.backlogs):  # numbered in file order
                    found.backlogs[n] = (row[0], engine.next_seq, *row[2:])
                    engine.next_seq += 1
                definition = engine.directive(found.directive_id).config
                insert = store.insert_import(found, definition, engine.next_seq)
                inserting = (result, found.ids, tasks.create_task(insert))
        if inserting is not None:
            await finish(*inserting)
    return results


async def import_saved_backlogs(directory: Path, engine: Engine, store: Store) -> None:
    """A swapped-in legacy deployment: at the start of serve, import the saved backlogs of
    `<logs>/backlogs/*.json` as live ones, and remove each file that was fully imported."""
    files = backlog_files([directory]) if directory.is_dir() else []
    for r in await import_files(files, engine, store, remove=True, restore=True):
        if r.error:
            log.error("cannot import saved backlogs from %s: %s", r.path, r.error)
        else:
            log.info(
                "imported %d saved backlogs from %s (%d already present, %d skipped)",
                r.imported, r.path, r.present, sum(r.skipped.values()),
            )


async def import_into(
    db: Path, files: list[Path], engine: Engine, *, dry_run: bool = False, remove: bool = False,
    on_file: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """`dsiem-sql import-backlogs`: import `files` into the database `db`, after the live
    backlogs it holds (so that sequence numbers go on); a dry run only reads the database."""
    from dsiem_sql.store.query import present_backlog_ids
    from dsiem_sql.store.store import Store

    if dry_run:
        return await import_files(files, engine, None, on_file=on_file,
                                  present_ids=lambda ids: present_backlog_ids(db, ids))
    store = Store(db, None)
    await store.open()
    try:
        resumed = await store.resume(engine.directive)
        engine.resume(resumed.backlogs, resumed.next_seq)
        return await import_files(files, engine, store, remove=remove, on_file=on_file)
    finally:
        await store.close()

"""`dsiem-sql import-backlogs`: legacy saved backlog files into the database (SPEC §11).

Each file is all or nothing: if it does not parse or validate, nothing of it is imported.
Backlogs that cannot be matched to a loaded directive are skipped with a reason; alarm ids
already in the database are left alone, so re-running an import changes nothing.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from dsiem_sql.engine import Backlog, Engine
from dsiem_sql.legacy import SAVED_FILE, Skip, to_backlog

log = logging.getLogger(__name__)


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


def read_file(
    path: Path, engine: Engine, next_seq: Callable[[], int]
) -> tuple[FileResult, list[Backlog]]:
    """Parse and convert one file; nothing is written."""
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
            converted.append(to_backlog(item, directive, engine.options, next_seq()).backlog)
        except Skip as reason:
            log.warning("%s: skipping backlog %s: %s", path, item["alarm_id"], reason)
            result.skipped[str(reason)] += 1
    return result, converted


async def import_files(
    files: list[Path],
    engine: Engine,
    store,
    *,
    remove: bool = False,
    on_file: Callable[[FileResult], None] | None = None,
    present_ids: Callable[[list[str]], set[str]] | None = None,
) -> list[FileResult]:
    """Import each file in one transaction; restore the new backlogs into `engine`.

    With `store` None it is a dry run: files are read and checked, and `present_ids` (if
    given) tells which alarm ids the database already has; nothing is written.
    """

    def next_seq() -> int:
        seq = engine.next_seq
        engine.next_seq += 1
        return seq

    # the imported backlogs are many small containers that all stay alive: the cyclic
    # garbage collector would only rescan them over and over
    collecting = gc.isenabled()
    gc.disable()
    # the database thread needs the GIL back briefly after each statement; by default it
    # waits up to 5 ms for this thread to hand it over
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, 0.001))
    try:
        return await _import(files, engine, store, remove, on_file, present_ids, next_seq)
    finally:
        sys.setswitchinterval(switch_interval)
        if collecting:
            gc.enable()


async def _import(files, engine, store, remove, on_file, present_ids, next_seq):
    results: list[FileResult] = []

    def done(result: FileResult) -> None:
        if remove and store is not None and result.complete:
            result.path.unlink()
        results.append(result)
        if on_file is not None:
            on_file(result)

    async def finish(result: FileResult, backlogs: list[Backlog], inserted) -> None:
        present = set(await inserted)
        for b in backlogs:
            if b.id not in present:
                engine.restore(b)
        result.present = len(present)
        result.imported = len(backlogs) - len(present)
        done(result)

    # while the database thread inserts one file, the next one is read
    inserting: tuple | None = None
    for path in files:
        result, backlogs = read_file(path, engine, next_seq)
        if inserting is not None:
            await finish(*inserting)
            inserting = None
        if backlogs and store is not None:
            inserting = (result, backlogs, await store.start_import(backlogs, engine))
            continue
        if backlogs:
            present = present_ids([b.id for b in backlogs]) if present_ids else set()
            result.present = len(present)
            result.imported = len(backlogs) - len(present)
        done(result)
    if inserting is not None:
        await finish(*inserting)
    return results

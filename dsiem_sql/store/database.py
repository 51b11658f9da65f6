"""Opening the database: checks, connection settings, migrations, and the writer lock.

Settings on every connection: WAL journal (readers never block the writer), `busy_timeout`
5 s, `foreign_keys` on, and `synchronous` NORMAL (default) or FULL (`--db-sync full`).
See docs/schema.md for what each guarantees on a process crash and on power loss.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

import dsiem_sql.migrations
from dsiem_sql.store.errors import StoreError, cannot_write

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import Engine

# `migrations/` of the repository, installed as the package dsiem_sql.migrations
MIGRATIONS = Path(dsiem_sql.migrations.__file__).parent
# The newest migration (a test checks it against alembic's head). A database already at it
# opens without loading alembic and SQLAlchemy.
HEAD_REVISION = "0005"
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5000
Sync = Literal["normal", "full"]


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def check_database_file(path: Path, must_exist: bool = False) -> None:
    """Refuse anything that is not an SQLite database we can use, before touching it."""
    if path.exists():
        if not path.is_file():
            raise StoreError(f"{path}: not a regular file")
        try:
            with path.open("rb") as f:
                header = f.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise StoreError(f"{path}: cannot read: {exc.strerror}") from None
        if header and header != SQLITE_HEADER:
            raise StoreError(f"{path}: not an SQLite database")
    elif must_exist:
        raise StoreError(f"{path}: no such database")
    elif not path.parent.is_dir():
        raise StoreError(f"{path}: directory {path.parent} does not exist")


def filename(path: Path | str) -> str:
    """`path` as a plain file name for SQLite: absolute. A relative `file:...` would be read as
    a URI where SQLite is built with SQLITE_USE_URI (as Debian's is), even without `uri=True`:
    `file:a#b.db` would open `a`."""
    return os.path.abspath(path)


def read_only_uri(path: Path | str) -> str:
    """The URI that opens `path` read-only. Its characters that mean something in a URI
    (`?`, `#`, `%`) are escaped, with spaces and non-ASCII ones: unescaped, `a#b.db` would
    open (and create) `a`."""
    return f"file:{quote(str(Path(path).resolve()))}?mode=ro"


def connect_read_only(path: Path | str, timeout: float = 5.0) -> sqlite3.Connection:
    """A read-only connection to `path` (which must exist)."""
    return sqlite3.connect(read_only_uri(path), uri=True, timeout=timeout)


def pragmas(sync: Sync) -> list[str]:
    return [
        f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
        "PRAGMA journal_mode = WAL",
        f"PRAGMA synchronous = {sync.upper()}",
        "PRAGMA foreign_keys = ON",
    ]


def sync_engine(path: Path, sync: Sync = "normal") -> Engine:
    """For the migrations, which run on their own short-lived connection at start."""
    from sqlalchemy import create_engine, event

    # a creator, not a URL: a path holding `?` or `#` is not a URL's
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(filename(path)))

    def on_connect(dbapi_connection, _record) -> None:
        for pragma in pragmas(sync):
            dbapi_connection.execute(pragma)

    event.listen(engine, "connect", on_connect)
    return engine


def describe_error(exc: BaseException, path: Path) -> StoreError:
    text = str(getattr(exc, "orig", exc))
    if "locked" in text or "busy" in text:
        return StoreError(f"{path}: database is locked by another process")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreError(f"{path}: cannot write the database (read-only file or directory)")
    if "not a database" in text or "malformed" in text:
        return StoreError(f"{path}: not a usable SQLite database ({text})")
    return StoreError(f"{path}: {text}")


def current_revision(path: Path) -> str | None:
    """The schema revision of an existing database, read without changing it."""
    check_database_file(path, must_exist=True)
    try:
        con = connect_read_only(path)
        try:
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            if "alembic_version" not in tables:
                return None
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise describe_error(exc, path) from None


def upgrade(path: Path, sync: Sync = "normal") -> str:
    """Create or upgrade the schema to the newest revision; returns it."""
    path = Path(path)
    check_database_file(path)
    if not path.exists() or path.stat().st_size == 0:
        create(path, sync)
        return HEAD_REVISION
    revision = current_revision(path)
    if revision == HEAD_REVISION and os.access(path, os.W_OK):
        return revision  # one cheap query: nothing to migrate
    if revision is not None and revision not in known_revisions():
        raise StoreError(
            f"{path}: schema revision {revision} is newer than this dsiem-sql "
            f"(it knows up to {head_revision()}); upgrade dsiem-sql"
        )
    if not os.access(path, os.W_OK):
        raise StoreError(f"{path}: cannot write the database (read-only file)")
    return migrate(path, sync)


def create(path: Path, sync: Sync = "normal") -> None:
    """A new database at the newest revision, in one transaction: the statements that the
    migrations leave in sqlite_master (`schema_at_head.py`), without loading alembic and
    SQLAlchemy, which take longer than the rest of `replay --db`'s start."""
    from dsiem_sql.store.schema_at_head import REVISION, STATEMENTS

    assert REVISION == HEAD_REVISION, "run scripts/schema-at-head"
    try:
        # absolute: SQLite may read a relative name that starts with "file:" as a URI
        con = sqlite3.connect(Path(path).resolve(), isolation_level=None)
        try:
            for pragma in pragmas(sync):
                con.execute(pragma)
            con.execute("BEGIN IMMEDIATE")
            for statement in STATEMENTS:
                con.execute(statement)
            con.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (REVISION,))
            con.execute("COMMIT")
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise describe_error(exc, path) from None


def migrate(path: Path, sync: Sync = "normal") -> str:
    """Run the migrations (alembic) up to the newest revision; returns it."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import DBAPIError

    engine = sync_engine(path, sync)
    try:
        with engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            if MigrationContext.configure(connection).get_current_revision() != head_revision():
                command.upgrade(cfg, "head")
    except (DBAPIError, sqlite3.Error) as exc:
        raise describe_error(exc, path) from None
    finally:
        engine.dispose()
    return head_revision()


def describe_revision(path: Path) -> str:
    """`<revision> (newest)`, or how it stands against the newest this dsiem-sql knows."""
    revision = current_revision(path)
    head = head_revision()
    if revision == head:
        state = "newest"
    elif revision is not None and revision not in known_revisions():
        state = f"newer than this dsiem-sql, which knows up to {head}"
    else:
        state = f"newest is {head}"
    return f"{revision or 'none'} ({state})"


def upgrade_alone(path: Path) -> str:
    """`upgrade`, holding the writer lock: a migration is a write, not while a writer runs."""
    lock = WriterLock(path)
    lock.acquire(path)
    try:
        return upgrade(path)
    finally:
        lock.release()


class WriterLock:
    """An exclusive lock that makes one process the only writer of a database.

    While held, the lock file says who holds it: `<pid> <start time> <role>` (the start time
    of the process, from /proc, tells a live holder from a reused pid), so that `dsiem-sql
    reload` can find the `serve` of a database."""

    def __init__(self, path: Path, role: str = ""):
        self.path = Path(f"{path}.lock")
        self.role = role
        self._fd: int | None = None

    def acquire(self, database: Path) -> None:
        check_database_file(Path(database))  # before creating a lock file beside it
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise cannot_write(Path(database), f"create lock file {self.path}", exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(
                f"{database}: database is locked by another dsiem-sql writer"
            ) from None
        self._fd = fd
        pid = os.getpid()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{pid} {process_start(pid)} {self.role}\n".encode(), 0)
        except OSError as exc:
            self.release()
            raise cannot_write(Path(database), f"write lock file {self.path}", exc) from None

    def release(self) -> None:
        if self._fd is not None:
            # nobody holds it any more (if this fails, `lock_holder` checks the process)
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True)
class LockHolder:
    pid: int
    role: str  # "serve", ... ("" for the other writers)


def lock_holder(database: Path) -> LockHolder | None:
    """The process that holds the writer lock of `database`, as its lock file names it, if
    that process is still running here (same pid and start time); else None."""
    path = Path(f"{database}.lock")
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read: {exc.strerror}") from None
    fields = text.split(maxsplit=2)
    if len(fields) < 2 or not fields[0].isdigit():
        return None  # released, or being written
    pid, started = int(fields[0]), fields[1]
    if started == "-":  # written where there is no /proc: only ask whether the pid lives
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    elif process_start(pid) != started:
        return None  # gone (its pid may be another process's now), or in another container
    return LockHolder(pid, fields[2].strip() if len(fields) > 2 else "")


def process_start(pid: int) -> str:
    """When process `pid` started, in clock ticks since boot (/proc/PID/stat); "" when
    there is no such process, "-" when this system has no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "" if Path("/proc/self/stat").exists() else "-"
    return stat.rpartition(")")[2].split()[19]

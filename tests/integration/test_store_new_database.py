"""A new database is made from the statements of dsiem_sql/store/schema_at_head.py, without
the migrations: they must leave the same schema as the migrations do."""

from __future__ import annotations

import runpy
import sqlite3
from pathlib import Path

from kit import ROOT

from dsiem_sql.store import schema_at_head
from dsiem_sql.store.database import HEAD_REVISION, migrate, upgrade


def master(db: Path) -> list[tuple]:
    """sqlite_master (but the root pages) in its order, and the stored revision."""
    con = sqlite3.connect(db)
    try:
        return [
            *con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"),
            *con.execute("SELECT version_num FROM alembic_version"),
            *con.execute("PRAGMA journal_mode"),
        ]
    finally:
        con.close()


def test_a_new_database_has_the_schema_the_migrations_make(tmp_path):
    migrated, new = tmp_path / "migrated.db", tmp_path / "new.db"
    assert migrate(migrated) == HEAD_REVISION
    assert upgrade(new) == HEAD_REVISION
    assert master(new) == master(migrated), "run scripts/schema-at-head"
    assert schema_at_head.REVISION == HEAD_REVISION


def test_the_statements_are_as_the_script_writes_them(tmp_path):
    script = runpy.run_path(str(ROOT / "scripts" / "schema-at-head"))
    migrated = tmp_path / "migrated.db"
    migrate(migrated)
    written = script["module_text"](*script["statements"](migrated))
    assert written == (ROOT / "dsiem_sql" / "store" / "schema_at_head.py").read_text(), (
        "run scripts/schema-at-head")


def test_an_empty_file_becomes_a_new_database(tmp_path):
    empty, migrated = tmp_path / "empty.db", tmp_path / "migrated.db"
    empty.touch()
    migrate(migrated)
    assert upgrade(empty) == HEAD_REVISION
    assert master(empty) == master(migrated)

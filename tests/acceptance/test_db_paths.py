"""A database path is a file name, whatever it holds (issue 18, item 6): SQLite reads `?` and
`#` in a URI as the start of the query and the fragment, and `%` as an escape, so a path put
into a `file:` URI or an SQLAlchemy URL unescaped named another file. With `--db 'a#b.db'`,
`db current` said "revision none" after `db upgrade`, `sql` failed with "no such table", and an
empty file `a` appeared beside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kit import CONFIGS, EXAMPLES, cli, ok

# each character that means something in a URI, a space, an escape that decodes, non-ASCII
STRANGE_DIR = "dir #1 ?x=%41 é"
STRANGE_NAME = "a#b ?c%20é.db"


def database_files(directory: Path, name: str) -> set[str]:
    """The files of `directory`, which must be those of the database `name` only: no stray
    file opened by a misread path."""
    listing = set(os.listdir(directory))
    assert name in listing, sorted(listing)
    strays = listing - {name + suffix for suffix in ("", "-wal", "-shm", ".lock")}
    assert not strays, f"stray files beside {name!r}: {sorted(strays)}"
    return listing


@pytest.mark.parametrize("name, relative", [
    (STRANGE_NAME, False), (STRANGE_NAME, True),
    # SQLite built with SQLITE_USE_URI (Debian's is) reads any name that starts with `file:`
    # as a URI, even where no URI was asked for
    (f"file:{STRANGE_NAME}", True),
], ids=["absolute", "relative", "relative-file-prefix"])
def test_a_database_path_with_uri_characters_is_one_file(tmp_path, name, relative):
    directory = tmp_path / STRANGE_DIR
    directory.mkdir()
    db = Path(name) if relative else directory / name

    def run(*args: str | Path):
        return cli(*args, cwd=directory)

    upgraded = ok(run("db", "upgrade", "--db", db))
    assert upgraded.stdout.startswith(f"{db}: schema at revision ")
    assert upgraded.stdout.endswith(" (newest)\n")
    assert f"{db}: schema at revision none" not in upgraded.stdout
    assert ok(run("db", "current", "--db", db)).stdout == upgraded.stdout
    count = ok(run("sql", "--db", db, "--format", "csv", "SELECT count(*) AS n FROM backlogs"))
    assert count.stdout.split() == ["n", "0"]
    database_files(directory, name)

    ok(run("replay", "--configs", CONFIGS, "--out", tmp_path / "out", "--db", db,
           EXAMPLES / "events.jsonl"))
    alarms = ok(run("sql", "--db", db, "--format", "csv", "SELECT count(*) AS n FROM alarms"))
    assert alarms.stdout.split() == ["n", "4"]
    assert ok(run("db", "current", "--db", db)).stdout == upgraded.stdout

    reload = run("reload", "--db", db)
    assert reload.returncode == 1
    assert reload.stderr.startswith(
        f"error: {db}: no dsiem-sql serve is running with this database here"), reload.stderr

    database_files(directory, name)
    assert sorted(os.listdir(tmp_path)) == sorted([STRANGE_DIR, "out"])


def test_sql_on_a_missing_database_with_uri_characters_creates_nothing(tmp_path):
    directory = tmp_path / STRANGE_DIR
    directory.mkdir()
    missing = directory / STRANGE_NAME
    for args in (["sql", "--db", missing, "SELECT 1"], ["db", "current", "--db", missing]):
        run = cli(*args)
        assert run.returncode == 1
        assert run.stderr.startswith(f"error: {missing}: no such database"), run.stderr
    assert os.listdir(directory) == []
    assert os.listdir(tmp_path) == [STRANGE_DIR]

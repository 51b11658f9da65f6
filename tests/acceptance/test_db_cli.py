"""`dsiem-sql db` and `replay --db` as a user runs them: the migrations are found wherever
dsiem-sql is installed (scripts/test-wheel runs these against the built wheel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clikit import EXAMPLES, INSTALLED_CLI, ROOT, dsiem_sql


def test_db_upgrade_then_replay_into_the_database(tmp_path):
    db = tmp_path / "dsiem.db"
    upgraded = dsiem_sql("db", "upgrade", "--db", str(db))
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.decode().startswith(f"{db}: schema at revision ")
    assert upgraded.stdout.decode().endswith(" (newest)\n")
    current = dsiem_sql("db", "current", "--db", str(db))
    assert current.stdout == upgraded.stdout, current.stderr

    run = dsiem_sql("replay", "--configs", str(EXAMPLES / "configs"), "--out",
                    str(tmp_path / "out"), "--db", str(db), str(EXAMPLES / "events.jsonl"))
    assert run.returncode == 0, run.stderr
    alarms = dsiem_sql("sql", "--db", str(db), "--format", "csv",
                       "SELECT count(*) AS n FROM alarms")
    assert alarms.returncode == 0, alarms.stderr
    assert alarms.stdout.decode().split() == ["n", "4"]
    assert (tmp_path / "out" / "siem_alarms.json").stat().st_size > 0


@pytest.mark.skipif(INSTALLED_CLI is None, reason="runs against an installed wheel only "
                    "(scripts/test-wheel sets DSIEM_SQL_TEST_CLI)")
def test_the_installed_wheel_is_what_is_tested():
    import dsiem_sql

    assert not Path(dsiem_sql.__file__).resolve().is_relative_to(ROOT), dsiem_sql.__file__
    assert Path(INSTALLED_CLI).parent == Path(sys.executable).parent  # the same venv
    where = subprocess.run(
        [sys.executable, "-c", "import dsiem_sql.store.database as d; print(d.MIGRATIONS)"],
        capture_output=True, text=True, check=True, cwd=Path(INSTALLED_CLI).parent,
    ).stdout.strip()
    assert Path(where).parent == Path(dsiem_sql.__file__).parent, where
    assert (Path(where) / "versions").is_dir()

"""`dsiem-sql db` and `replay --db` as a user runs them: the migrations are found wherever
dsiem-sql is installed (scripts/test-wheel runs these against the built wheel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kit import EXAMPLES, INSTALLED_CLI, ROOT, cli


def test_db_upgrade_then_replay_into_the_database(tmp_path):
    db = tmp_path / "dsiem.db"
    upgraded = cli("db", "upgrade", "--db", db)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.startswith(f"{db}: schema at revision ")
    assert upgraded.stdout.endswith(" (newest)\n")
    current = cli("db", "current", "--db", db)
    assert current.stdout == upgraded.stdout, current.stderr

    run = cli("replay", "--configs", EXAMPLES / "configs", "--out", tmp_path / "out",
              "--db", db, EXAMPLES / "events.jsonl")
    assert run.returncode == 0, run.stderr
    alarms = cli("sql", "--db", db, "--format", "csv", "SELECT count(*) AS n FROM alarms")
    assert alarms.returncode == 0, alarms.stderr
    assert alarms.stdout.split() == ["n", "4"]
    assert (tmp_path / "out" / "siem_alarms.json").stat().st_size > 0


def test_reload_needs_a_running_serve_and_reloads_are_a_view(tmp_path):
    db = tmp_path / "dsiem.db"
    assert cli("db", "upgrade", "--db", db).returncode == 0
    reload = cli("reload", "--db", db)
    assert reload.returncode == 1
    assert reload.stderr.startswith(f"error: {db}: no dsiem-sql serve is running with this "
                                    "database here")
    view = cli("sql", "--db", db, "--format", "csv", "SELECT * FROM config_reloads")
    assert view.returncode == 0, view.stderr
    assert view.stdout.split() == ["reload_id,time,trigger,result,message,configs,files,seconds"]


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

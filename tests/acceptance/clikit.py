"""`dsiem-sql` as a user runs it: a real process.

The command is `python -m dsiem_sql` of the interpreter that runs the tests (the editable
install of scripts/setup), or the `dsiem-sql` named by DSIEM_SQL_TEST_CLI: scripts/test-wheel
sets it to the command of a fresh venv where the built wheel is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
INSTALLED_CLI = os.environ.get("DSIEM_SQL_TEST_CLI")
COMMAND = [INSTALLED_CLI] if INSTALLED_CLI else [sys.executable, "-m", "dsiem_sql"]


def dsiem_sql(*args: str, stdin: bytes | None = None, env: dict | None = None):
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )

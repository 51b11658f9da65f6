"""Shared by every test directory.

The helpers are in kit.py (paths, the command line as a real process, wait_until, builders of
rules, directives and events); pytest puts this directory on sys.path when it loads this file
(the test directories are not packages), so a test module anywhere below it can `import kit`.
The serve fixtures (a real nats-server, `dsiem-sql serve` processes) are in service/conftest.py.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # already there with pytest's default import mode, "prepend"
    sys.path.insert(0, HERE)


@pytest.fixture
def restore_root_logger():
    """The CLI replaces the root logger's handlers and level; tests that run it in-process
    keep the others unaffected."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)

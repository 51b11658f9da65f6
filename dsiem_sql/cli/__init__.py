"""The `dsiem-sql` command line (`app.py`), one module a command."""

from dsiem_sql.cli import (
    authoring,
    backlogs,
    console,
    database,
    explain,
    reload,
    replay,
    serve,
    suppress,
    validate,
)
from dsiem_sql.cli.app import app, main

__all__ = ["app", "authoring", "backlogs", "console", "database", "explain", "main", "reload",
           "replay", "serve", "suppress", "validate"]

"""The `dsiem-sql` command line (`app.py`), one module a command."""

from dsiem_sql.cli import (
    authoring,
    backlogs,
    database,
    explain,
    reload,
    replay,
    serve,
    validate,
)
from dsiem_sql.cli.app import app, main

__all__ = ["app", "authoring", "backlogs", "database", "explain", "main", "reload", "replay",
           "serve", "validate"]

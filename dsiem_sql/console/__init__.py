"""`dsiem-sql console` (docs/console.md): the live database in a browser, read-only, built on
datasette, for analysts without a shell.

* `metadata.py`: the descriptions of the views and their columns (docs/schema.md's Views
  section is generated from them), the tables shown and hidden, datasette's metadata;
* `queries.py`: the canned queries; `dashboard.py`: the dashboard's charts (Vega-Lite);
* `database.py`: the database as datasette sees it, every connection read-only;
* `plugin.py`: the datasette plugin: links to stories, the story pages (the reports of
  `dsiem-sql explain`), live pages;
* `serve.py`: datasette put together and served by uvicorn.

datasette comes with the optional extra `dsiem-sql[console]`: only database.py, plugin.py and
serve.py import it, and nothing outside this package imports them but the command.
"""

from __future__ import annotations

import importlib

EXTRA = ("datasette", "datasette_dashboards")  # the packages of the extra `console`
INSTALL = "pip install 'dsiem-sql[console]'"


class ConsoleError(Exception):
    """The console cannot start; the message says why."""


def missing_packages() -> list[str]:
    """The packages of the console extra that cannot be imported here."""
    missing = []
    for name in EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name.replace("_", "-"))
    return missing


__all__ = ["EXTRA", "INSTALL", "ConsoleError", "missing_packages"]

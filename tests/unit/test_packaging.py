"""The wheel's packages: pyproject.toml lists them all, since migrations/ is mapped in as
dsiem_sql.migrations (scripts/test-wheel checks the built wheel itself)."""

from __future__ import annotations

import tomllib

from kit import ROOT


def test_every_package_and_the_migrations_are_in_the_wheel():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "dsiem_sql").rglob("__init__.py")
    }
    migrations = {"dsiem_sql.migrations", "dsiem_sql.migrations.versions"}
    assert sorted(setuptools["packages"]) == sorted(found | migrations)
    assert setuptools["package-dir"] == {"dsiem_sql.migrations": "migrations"}
    assert "script.py.mako" in setuptools["package-data"]["dsiem_sql.migrations"]
    assert (ROOT / "migrations" / "__init__.py").is_file()
    assert (ROOT / "migrations" / "versions" / "__init__.py").is_file()


def test_the_core_does_not_import_the_console_extra():
    """datasette comes with the extra `console` only: nothing but dsiem_sql/console's
    database.py, plugin.py and serve.py imports it, and the command line starts without it."""
    import ast
    import subprocess
    import sys

    importers = set()
    for path in (ROOT / "dsiem_sql").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("datasette", "datasette_dashboards", "uvicorn")
                   for n in names):
                importers.add(str(path.relative_to(ROOT)))
    assert importers == {"dsiem_sql/console/database.py", "dsiem_sql/console/plugin.py",
                         "dsiem_sql/console/serve.py"}
    probe = ("import sys, dsiem_sql.cli, dsiem_sql.console, dsiem_sql.console.metadata, "
             "dsiem_sql.console.queries, dsiem_sql.console.dashboard; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('datasette', 'uvicorn')))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert run.stdout == "[]\n"

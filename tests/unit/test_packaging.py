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

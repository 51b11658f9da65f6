"""The console's descriptions and queries against the schema (issue 20): docs/schema.md's
views are those of dsiem_sql/console/metadata.py (scripts/schema_views.py writes them), every
view and column of a migrated database is described, every table is shown with a line or
hidden, and every canned query and chart query runs on a migrated database."""

from __future__ import annotations

import re
import sqlite3

import pytest
from kit import ROOT

from dsiem_sql.console.dashboard import dashboards
from dsiem_sql.console.metadata import HIDDEN, TABLES, VIEWS, as_html, plain, views_markdown
from dsiem_sql.console.queries import canned_queries
from dsiem_sql.store import schema
from dsiem_sql.store.database import connect_read_only, upgrade

BEGIN = "<!-- views: written by scripts/schema_views.py from dsiem_sql/console/metadata.py -->"
END = "<!-- views: end -->"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    db = tmp_path_factory.mktemp("schema") / "dsiem.db"
    upgrade(db)
    con = connect_read_only(db)
    con.create_function("dsiem_now", 0, lambda: 1714557600)
    yield con
    con.close()


def test_the_views_of_docs_schema_md_are_those_of_the_console():
    text = (ROOT / "docs" / "schema.md").read_text()
    found = re.search(re.escape(BEGIN) + r"\n\n(.*?)\n" + re.escape(END), text, re.DOTALL)
    assert found, "docs/schema.md has lost its views markers"
    assert found.group(1) == views_markdown(), (
        "docs/schema.md's views differ from dsiem_sql/console/metadata.py: change the "
        "descriptions there, then run .venv/bin/python scripts/schema_views.py")


def test_every_view_and_column_is_described(migrated):
    views = [r[0] for r in migrated.execute(
        "SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")]
    assert sorted(VIEWS) == sorted(views) == sorted(schema.VIEWS)
    for name, view in VIEWS.items():
        columns = [r[1] for r in migrated.execute(f"PRAGMA table_info({name})")]
        assert list(view.columns) == columns, name
        assert view.description and all(view.columns.values()), name


def test_every_table_is_shown_with_a_line_or_hidden(migrated):
    tables = {r[0] for r in migrated.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    assert set(TABLES) | set(HIDDEN) == tables
    assert not set(TABLES) & set(HIDDEN)


@pytest.mark.parametrize("markdown, html, text", [
    ("the backlogs in state `live`", "The backlogs in state <code>live</code>",
     "the backlogs in state live"),
    ("ends **before** `--x`: a < b", "Ends <strong>before</strong> <code>--x</code>: a &lt; b",
     "ends before --x: a < b"),
])
def test_descriptions_as_datasette_shows_them(markdown, html, text):
    assert as_html(markdown) == html
    assert plain(markdown) == text


@pytest.mark.parametrize("lifetime", [0, 5])
def test_every_canned_query_runs_on_the_schema(migrated, lifetime):
    for name, query in canned_queries(lifetime).items():
        parameters = {p: "1" for p in re.findall(r":(\w+)", query["sql"])}
        migrated.execute(query["sql"], parameters).fetchall()
        assert query["title"] and query["description"], name
        assert query.get("hide_sql") is True, name
    assert "expires_at + 300 -" in canned_queries(5)["expiring"]["sql"]


def test_every_chart_query_runs_on_the_schema(migrated):
    (dashboard,) = dashboards().values()
    placed = {slug for row in dashboard["layout"] for slug in row}
    assert placed == set(dashboard["charts"])
    for slug, chart in dashboard["charts"].items():
        try:
            migrated.execute(chart["query"]).fetchall()
        except sqlite3.Error as exc:
            raise AssertionError(f"{slug}: {exc}") from None


def test_the_alarms_per_hour_are_24_hours_of_each_class(migrated):
    (dashboard,) = dashboards().values()
    rows = migrated.execute(dashboard["charts"]["alarms-per-hour"]["query"]).fetchall()
    assert len(rows) == 24 * 3
    assert rows[0][0] == "2024-04-30T11:00:00Z" and rows[-1][0] == "2024-05-01T10:00:00Z"

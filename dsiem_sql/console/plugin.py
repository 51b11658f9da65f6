"""The console's datasette plugin (registered by console/serve.py, for the console only):

* `render_cell`: an alarm or backlog id, anywhere, links to its story; an address links to
  the backlogs that hold it; times (epoch seconds) show as UTC;
* `register_routes`: the story of a backlog (/-/story/ID, also .json and .txt: the reports of
  `dsiem-sql explain`), and /-/dsiem/state.json, which changes when the database does;
* `extra_js_urls`, `extra_body_script`: live pages, folded column descriptions
  (console/static/console.js); `extra_css_urls`: console/static/console.css;
* `menu_links`: the canned queries and the dashboard.

Its settings are the plugin settings `dsiem-sql-console` of the metadata (`plugin_settings`).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from datasette import hookimpl
from datasette.utils.asgi import NotFound, Response
from markupsafe import Markup

from dsiem_sql.console.metadata import DATABASE
from dsiem_sql.engine.engine import EngineOptions
from dsiem_sql.explain import ExplainError
from dsiem_sql.explain.backlog import explain_backlog
from dsiem_sql.explain.render import render_json, render_text
from dsiem_sql.explain.words import endpoint, utc
from dsiem_sql.store.errors import StoreError

NAME = "dsiem-sql-console"
ID_COLUMNS = ("alarm_id", "backlog_id")  # and `id` of the table backlogs
ADDRESS_COLUMNS = ("src_ip", "dst_ip")
TIME_COLUMNS = ("created_time", "update_time", "expires_at", "ended_time", "event_time",
                "start_time", "end_time", "deadline")
LIVE_TEMPLATES = ("table.html", "query.html", "row.html", "dsiem_story.html",
                  "dashboard_view.html")


def plugin_settings(db: Path, configs: Path | None, options: EngineOptions,
                    refresh_seconds: float) -> dict[str, Any]:
    """The plugin's part of the metadata."""
    return {NAME: {
        "db": str(db), "configs": None if configs is None else str(configs),
        "min_alarm_lifetime": options.min_alarm_lifetime,
        "match_protocol": options.match_protocol,
        "taxonomy_custom_data": options.taxonomy_custom_data,
        "refresh_seconds": refresh_seconds,
    }}


def _settings(datasette: Any) -> dict[str, Any]:
    return datasette.plugin_config(NAME) or {}


def story_path(datasette: Any, alarm_id: str) -> str:
    return datasette.urls.path(f"-/story/{quote(alarm_id, safe='')}")


@hookimpl
def render_cell(value: Any, column: str, table: str | None, database: str,
                datasette: Any) -> Markup | None:
    if database != DATABASE:
        return None
    if isinstance(value, dict):  # a foreign key datasette expanded: {"value", "label"}
        value = value.get("value")
    if isinstance(value, str) and value and (
            column in ID_COLUMNS or (table == "backlogs" and column == "id")):
        return Markup('<a class="dsiem-story" href="{}" title="its story">{}</a>').format(
            story_path(datasette, value), value)
    if isinstance(value, str) and value and column in ADDRESS_COLUMNS:
        href = datasette.urls.database(DATABASE) + "/address?ip=" + quote(value, safe="")
        return Markup('<a href="{}" title="the backlogs of this address">{}</a>').format(
            href, value)
    if column in TIME_COLUMNS and isinstance(value, int) and value > 0:
        return Markup('<span title="{} (epoch seconds)">{}</span>').format(value, utc(value))
    return None


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [
        (r"^/-/story/(?P<alarm_id>[^/]+?)(\.(?P<format>json|txt))?$", story),
        (r"^/-/dsiem/state\.json$", state),
    ]


async def story(request: Any, datasette: Any) -> Response:
    """The story of a backlog: `dsiem-sql explain --db` as a page, JSON or text."""
    await datasette.ensure_permissions(
        request.actor, [("view-database", DATABASE), "view-instance"])
    settings = _settings(datasette)
    alarm_id = request.url_vars["alarm_id"]
    options = EngineOptions(min_alarm_lifetime=settings.get("min_alarm_lifetime", 0),
                            match_protocol=settings.get("match_protocol", False),
                            taxonomy_custom_data=settings.get("taxonomy_custom_data", False))
    configs = settings.get("configs")
    try:
        report = await asyncio.to_thread(
            explain_backlog, Path(settings["db"]), alarm_id,
            None if configs is None else Path(configs), options)
    except (ExplainError, StoreError) as exc:
        raise NotFound(str(exc)) from None
    fmt = request.url_vars.get("format")
    if fmt == "json":
        return Response(render_json(report), content_type="application/json; charset=utf-8")
    if fmt == "txt":
        return Response.text(render_text(report, 100))
    return Response.html(await datasette.render_template(
        "dsiem_story.html",
        {"report": report, "text": render_text(report, 100), "utc": utc,
         "endpoint": endpoint, "story_path": story_path(datasette, alarm_id),
         "events_path": datasette.urls.database(DATABASE) + "/story_events?id="
                        + quote(alarm_id, safe="")},
        request=request))


async def state(request: Any, datasette: Any) -> Response:
    """What changes whenever serve commits: the sizes and times of the database and its
    WAL. Live pages whose content the browser cannot compare (the dashboard's charts) reload
    when it changes."""
    await datasette.ensure_permissions(request.actor, ["view-instance"])
    db = _settings(datasette)["db"]
    marks = []
    for path in (db, f"{db}-wal"):
        try:
            st = os.stat(path)
            marks.append(f"{st.st_size}:{st.st_mtime_ns}")
        except FileNotFoundError:
            marks.append("-")
    return Response.json({"version": " ".join(marks)}, headers={"Cache-Control": "no-store"})


@hookimpl
def extra_js_urls(template: str, datasette: Any) -> list[dict[str, Any]]:
    if template not in LIVE_TEMPLATES:
        return []
    return [{"url": datasette.urls.path("-/dsiem-static/console.js")}]


@hookimpl
def extra_body_script(template: str, datasette: Any) -> str:
    seconds = _settings(datasette).get("refresh_seconds")
    if template not in LIVE_TEMPLATES or not seconds:  # --refresh 0: no live pages
        return ""
    settings = {"seconds": seconds,
                "state": datasette.urls.path("-/dsiem/state.json"),
                "whole": template == "dashboard_view.html"}
    return f"dsiemLive.start({json.dumps(settings)});"


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    return [datasette.urls.path("-/dsiem-static/console.css")]


@hookimpl
def menu_links(datasette: Any) -> list[dict[str, str]]:
    base = datasette.urls.database(DATABASE)
    return [
        {"href": base + "/live_backlogs", "label": "Live backlogs"},
        {"href": base + "/live_by_risk", "label": "Live backlogs by risk"},
        {"href": base + "/alarms_24h", "label": "Alarms of the last 24 hours"},
        {"href": datasette.urls.path("-/dashboards/dsiem"), "label": "Dashboard"},
    ]


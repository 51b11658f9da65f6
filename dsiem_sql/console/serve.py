"""The console put together: datasette over the database, read-only (console/database.py),
with the console's metadata, canned queries, dashboard and plugin, served by uvicorn in this
process."""

from __future__ import annotations

import html
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from datasette.app import Datasette
from datasette.plugins import pm

from dsiem_sql import defaults
from dsiem_sql.console import ConsoleError, plugin
from dsiem_sql.console.dashboard import SLUG, dashboards
from dsiem_sql.console.database import ConsoleDatabase
from dsiem_sql.console.metadata import DATABASE, console_metadata
from dsiem_sql.console.queries import canned_queries
from dsiem_sql.engine.engine import EngineOptions
from dsiem_sql.store.database import HEAD_REVISION, current_revision
from dsiem_sql.store.query import read_query

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_ROUTE = "-/dsiem-static"  # its files' URL: /-/dsiem-static/live.js
FACET_TIME_LIMIT_MS = 200  # datasette's default, or the query time limit if that is shorter
PAGE_SIZE = 100  # rows of a table page: datasette's default, below the row limit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsoleOptions:
    db: Path
    host: str = defaults.CONSOLE_HOST
    port: int = defaults.CONSOLE_PORT  # 0: any free port
    configs: Path | None = None  # the assets of the stories' risk (as explain --configs)
    time_limit: float = defaults.CONSOLE_TIME_LIMIT  # seconds
    max_rows: int = defaults.CONSOLE_MAX_ROWS
    refresh_seconds: float = defaults.CONSOLE_REFRESH_SECONDS  # 0: pages are not live
    engine: EngineOptions = field(default_factory=EngineOptions)  # those of serve


def check_database(path: Path) -> None:
    """Refuse, with the reason, a database the console cannot show: missing, not SQLite, not
    at the newest schema revision, or unreadable (such as a WAL database in a directory this
    user cannot write)."""
    revision = current_revision(path)
    if revision != HEAD_REVISION:
        raise ConsoleError(
            f"{path}: schema revision {revision or 'none'}, and the console needs "
            f"{HEAD_REVISION}: start dsiem-sql serve on it (or run dsiem-sql db upgrade "
            f"--db {path}), which upgrades it")
    read_query(path, "SELECT count(*) FROM live_backlogs")


def console(options: ConsoleOptions) -> Datasette:
    """datasette, set up as the console of `options.db`."""
    # datasette's error page prints each error with rich, when rich is installed (dsiem-sql
    # needs it): a full traceback in the log for every 404, and a 500 instead of a 404 where
    # there is no exception being handled (a POST to a path no route takes). Imported here,
    # once datasette.app has registered its plugins: imported first, the module would be
    # registered half-made, without its hook.
    from datasette import handle_exception

    handle_exception.rich = None
    if not pm.is_registered(plugin):
        pm.register(plugin, name=plugin.NAME)
    db = options.db.resolve()
    time_limit_ms = max(1, round(options.time_limit * 1000))
    metadata = console_metadata(
        str(db), time_limit_ms, canned_queries(options.engine.min_alarm_lifetime),
        dashboards(),
        plugin.plugin_settings(db, options.configs, options.engine, options.refresh_seconds))
    metadata["description_html"] += " " + _links(metadata["databases"][DATABASE]["queries"])
    ds = Datasette(
        files=[], metadata=metadata, template_dir=str(TEMPLATES),
        static_mounts=[(STATIC_ROUTE, str(STATIC))],
        settings={
            "sql_time_limit_ms": time_limit_ms,
            "max_returned_rows": options.max_rows,
            # less than the row limit: datasette returns one row more when they are equal
            "default_page_size": min(PAGE_SIZE, options.max_rows - 1),
            "facet_time_limit_ms": min(FACET_TIME_LIMIT_MS, time_limit_ms),
            "default_cache_ttl": 0,  # live data: the browser asks again every time
            "allow_download": False,  # a copy of a file that serve writes would be torn
        },
    )
    ds.remove_database("_memory")  # datasette adds it when given no files
    ds.add_database(ConsoleDatabase(ds, db), name=DATABASE)
    return ds


def _links(queries: dict[str, Any]) -> str:
    items = [f'<a href="/{DATABASE}/live_backlogs">live backlogs</a>',
             f'<a href="/-/dashboards/{SLUG}">the dashboard</a>']
    items += [f'<a href="/{DATABASE}/{name}">{html.escape(q["title"].lower())}</a>'
              for name, q in queries.items() if ":" not in q["sql"]]
    return "See " + ", ".join(items) + "."


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port (port 0: any free one)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        raise ConsoleError(f"cannot listen on {host}:{port}: "
                           f"{exc.strerror or exc}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def run_console(options: ConsoleOptions, announce: Callable[[str], None]) -> None:
    """Serve the console until SIGINT or SIGTERM; `announce` hears its URL once it listens."""
    check_database(options.db)
    ds = console(options)
    sock = listen(options.host, options.port)
    level = logging.getLogger().getEffectiveLevel()
    config = uvicorn.Config(ds.app(), lifespan="on", log_config=None, log_level=level,
                            access_log=level <= logging.INFO)
    announce(url_of(sock))
    uvicorn.Server(config).run(sockets=[sock])

"""What the console says about the database: the description of every view and of each of its
columns, the tables it shows or hides, and the whole datasette metadata (title, descriptions,
canned queries, the dashboard). Pure data; datasette is not imported here.

The views' descriptions are written once, here, in Markdown (backticks for names): the Views
section of docs/schema.md is generated from them (`views_markdown`, written by
scripts/schema-views), and tests/unit/test_console_metadata.py checks that the two agree and
that every view and column of a migrated database is described.
"""

from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass
from typing import Any

DATABASE = "dsiem"  # the database's name in the console's URLs: /dsiem/live_backlogs
TITLE = "dsiem-sql console"


@dataclass(frozen=True)
class View:
    description: str  # Markdown, a phrase that follows "name: "
    columns: dict[str, str]  # column -> its meaning (Markdown), in the view's column order


VIEWS: dict[str, View] = {
    "live_backlogs": View(
        "the backlogs in state `live`, with their current stage.",
        {
            "alarm_id": "the backlog's id: the alarm id of `siem_alarms.json`, once it is one",
            "directive_id": "the directive that started it",
            "title": "the directive's name, with `SRC_IP` and `DST_IP` filled in",
            "current_stage": "the stage now waiting for events (1-based)",
            "highest_stage": "the directive's number of stages (its last stage)",
            "stage_events": "events counted so far in the current stage",
            "stage_occurrence": "events the current stage needs (its rule's `occurrence`)",
            "risk": "the current risk (0 to 10)",
            "risk_class": "`Low`, `Medium` or `High`; `''` as long as the risk has stayed 0",
            "src_ips": "the source addresses of its events, a JSON array",
            "dst_ips": "the destination addresses of its events, a JSON array",
            "created_time": "when it became an alarm (its risk reached 1); `0` while it is not "
                            "one",
            "update_time": "the time of the last event it took",
            "expires_at": "the current stage's deadline (start + timeout), **before** "
                          "`--min-alarm-lifetime`: the backlog expires once the clock passes "
                          "`expires_at` + that many minutes",
        },
    ),
    "alarms": View(
        "every backlog that became an alarm (its risk reached 1 at some point, so it has "
        "alarm lines in `siem_alarms.json`), live or ended, until retention removes it. One "
        "row per alarm.",
        {
            "alarm_id": "the alarm (backlog) id",
            "directive_id": "the directive that started it",
            "title": "the directive's name, with `SRC_IP` and `DST_IP` filled in",
            "status": "as in the alarm lines: the first entry of `--status`",
            "tag": "as in the alarm lines: the first entry of `--tags`",
            "risk": "the current risk (1 to 10)",
            "risk_class": "`Low`, `Medium` or `High` (`--med_risk_min`, `--med_risk_max`)",
            "state": "`live`, `finished` (its last stage completed) or `expired` (a stage "
                     "timed out)",
            "created_time": "when it became an alarm",
            "update_time": "the time of the last event it took",
        },
    ),
    "alarm_events": View(
        "the events of each backlog, stage by stage, in the order they were recorded: the "
        "same records as `siem_alarm_events.json` (which also lists the events of backlogs "
        "that have not become alarms), for the backlogs still in the database.",
        {
            "alarm_id": "the alarm (backlog) id",
            "stage": "the stage that counted the event",
            "event_id": "the event's `event_id`",
        },
    ),
    "alarm_intel": View(
        "the `intel_hits` of each alarm: what the threat-intel sources (Wise) found for its "
        "addresses (revision 0002).",
        {
            "alarm_id": "the alarm (backlog) id",
            "provider": "the intel source that found it",
            "term": "the address looked up",
            "result": "what the source says of it",
        },
    ),
    "alarm_vulns": View(
        "the `vulnerabilities` of each alarm: what the vulnerability sources (Nesd) found for "
        "its `ip:port` pairs (revision 0002).",
        {
            "alarm_id": "the alarm (backlog) id",
            "provider": "the vulnerability source that found it",
            "term": "the `ip:port` looked up",
            "result": "what the source says of it",
        },
    ),
    "config_reloads": View(
        "one row each time `serve` loaded its config: at start and at each reload, refused "
        "ones included (revision 0003).",
        {
            "reload_id": "in order",
            "time": "when it began: UTC, ISO 8601 with milliseconds (the wall clock, not the "
                    "engine clock)",
            "trigger": "`start`, `SIGHUP` or `POST /-/reload` (requests served together: "
                       "`SIGHUP, POST /-/reload`); `dsiem-sql reload` sends SIGHUP",
            "result": "`success` or `failure` (the config in force did not change)",
            "message": "what was loaded and changed, or why it was refused",
            "configs": "the configuration directory, as an absolute path",
            "files": "a JSON object of file name → sha256 of the bytes loaded; `{}` for a "
                     "refused reload",
            "seconds": "how long it took (download, load, validation, taking it between two "
                       "events)",
        },
    ),
    "suppressions": View(
        "one row per suppression (`dsiem-sql suppress`): a source silenced for a directive or "
        "all, removed and expired ones kept as a record (revision 0005).",
        {
            "id": "its number, for `dsiem-sql suppress remove`",
            "directive_id": "the directive it silences; `NULL`: every directive",
            "src": "the source network (`10.0.0.0/8`, `192.0.2.7/32`); `NULL`: any source",
            "dst": "the destination network; `NULL`: any destination",
            "custom_data": "an event's `custom_data1..3` must hold this value (without case); "
                           "`NULL`: any",
            "reason": "why it was added",
            "added_by": "who added it (free text)",
            "created": "when it was added: UTC, ISO 8601",
            "expires": "when it ends by the engine clock (wall time in `serve`, event time in "
                       "`replay`); `NULL`: permanent",
            "state": "`active`, `expired` or `removed`",
            "seconds_left": "seconds until it expires, by the wall clock; `NULL` when "
                            "permanent or removed",
            "hits": "the events it kept from a directive (an event kept from two directives "
                    "counts twice)",
            "last_hit": "the engine time of the last of them",
            "removed": "when `dsiem-sql suppress remove` removed it",
        },
    ),
}

# The tables the console lists, each with a line about it (their columns: docs/schema.md).
TABLES: dict[str, str] = {
    "backlogs": "one row per backlog, live and ended: its directive and version, state, "
                "stages, risk, addresses and times (the columns: docs/schema.md, `backlogs`).",
    "stages": "one row per stage of each backlog: its effective rule, status, start and end, "
              "first event and sticky values.",
    "stage_events": "the events counted in each stage, with their time, addresses and ports "
                    "(revision 0004; `NULL` where not recorded).",
    "enrichments": "the threat-intel hits and vulnerabilities found for each alarm.",
    "directive_versions": "every directive definition a backlog was started with.",
    "reloads": "the configs `serve` took: one row per load (the `config_reloads` view reads "
               "it).",
    "reload_files": "the files of each successful load, with their sha256.",
    "suppression_entries": "the suppressions (the `suppressions` view reads them).",
}
# Kept out of the lists (still reachable by URL): how serve writes and resumes, no analyst's
# business.
HIDDEN = ("outbox", "output_files", "input_progress", "engine_state", "alembic_version")


def plain(markdown: str) -> str:
    """`markdown` as plain text, for datasette's column descriptions (shown as they are)."""
    return markdown.replace("**", "").replace("`", "")


def as_html(markdown: str) -> str:
    """`markdown` (backticks and bold only) as HTML, starting with a capital."""
    text = html.escape(markdown[:1].upper() + markdown[1:], quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def views_markdown() -> str:
    """The Views section of docs/schema.md, between its markers."""
    parts = []
    for name, view in VIEWS.items():
        rows = "".join(f"| `{column}` | {meaning} |\n" for column, meaning in view.columns.items())
        head = textwrap.fill(f"**`{name}`**: {view.description}", width=95,
                             break_on_hyphens=False, break_long_words=False)
        parts.append(f"{head}\n\n| Column | Meaning |\n|--------|---------|\n{rows}")
    return "\n".join(parts)


def console_metadata(db_path: str, time_limit_ms: int, queries: dict[str, Any],
                     dashboards: dict[str, Any], plugin: dict[str, Any]) -> dict[str, Any]:
    """datasette's metadata for the console of `db_path`: the title and descriptions, the
    canned queries, the dashboard (datasette-dashboards) and the console plugin's settings."""
    tables: dict[str, Any] = {
        name: {"description_html": as_html(view.description),
               "columns": {c: plain(m) for c, m in view.columns.items()}}
        for name, view in VIEWS.items()
    }
    tables["live_backlogs"]["sort_desc"] = "risk"  # the riskiest first
    tables.update({name: {"description_html": as_html(text)} for name, text in TABLES.items()})
    tables.update({name: {"hidden": True} for name in HIDDEN})
    return {
        "title": TITLE,
        "description_html": (
            f"The database of <code>dsiem-sql serve</code>, <code>{html.escape(db_path)}</code>, "
            f"read-only: live backlogs, alarms and their stories. Queries stop after "
            f"{time_limit_ms / 1000:g} s. Click an alarm id for its story."),
        "databases": {
            DATABASE: {
                "description_html": (
                    f"<code>{html.escape(db_path)}</code>, opened read-only. The views are "
                    "described in docs/schema.md; the canned queries below need no SQL."),
                "tables": tables,
                "queries": queries,
            },
        },
        "plugins": {"datasette-dashboards": dashboards, **plugin},
    }

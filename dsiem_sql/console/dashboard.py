"""The console's dashboard: datasette-dashboards settings with Vega-Lite chart specs. Pure data.

The plugin fetches each chart's rows from the console's JSON API and draws them with the
Vega, Vega-Lite and vega-embed files it carries (served by the console itself, nothing from
the internet). The charts are drawn as SVG, one element per mark.
"""

from __future__ import annotations

from typing import Any

from dsiem_sql.console.metadata import DATABASE
from dsiem_sql.console.queries import NOW

SLUG = "dsiem"  # its URL: /-/dashboards/dsiem
RISK_COLOURS = {"domain": ["High", "Medium", "Low", "none"],
                "range": ["#c62828", "#ef6c00", "#f9a825", "#9e9e9e"]}
EMBED = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False,
                                        "editor": False}}


# counts: whole numbers only (Vega still puts ticks between them on a short axis)
COUNT_AXIS = {"tickMinStep": 1, "format": "d", "labelExpr": "datum.value % 1 ? '' : datum.label"}
HEIGHT = 220  # pixels of a chart's plot


def _vega_lite(title: str, sql: str, display: dict[str, Any]) -> dict[str, Any]:
    return {"title": title, "db": DATABASE, "query": sql, "library": "vega-lite",
            "display": {"height": HEIGHT, **display, "usermeta": {"embedOptions": EMBED}}}


def dashboards() -> dict[str, Any]:
    """The settings of datasette-dashboards: one dashboard."""
    charts = {
        "live-count": {
            "title": "Live backlogs", "db": DATABASE, "library": "metric",
            "query": "SELECT count(*) AS live FROM live_backlogs",
            "display": {"field": "live"},
        },
        "alarms-count": {
            "title": "Alarms created in the last 24 hours", "db": DATABASE, "library": "metric",
            "query": f"SELECT count(*) AS alarms FROM alarms WHERE created_time >= {NOW} - 86400",
            "display": {"field": "alarms"},
        },
        "alarms-per-hour": _vega_lite(
            "Alarms per hour by risk class (created in the last 24 hours, UTC)",
            f"""WITH RECURSIVE hours(start) AS (
       SELECT {NOW} / 3600 * 3600 - 23 * 3600
        UNION ALL
       SELECT start + 3600 FROM hours WHERE start < {NOW} / 3600 * 3600),
     classes(risk_class) AS (VALUES ('High'), ('Medium'), ('Low'))
SELECT strftime('%Y-%m-%dT%H:00:00Z', h.start, 'unixepoch') AS hour, c.risk_class,
       count(a.alarm_id) AS alarms
  FROM hours h CROSS JOIN classes c
  LEFT JOIN alarms a ON a.risk_class = c.risk_class
                    AND a.created_time >= h.start AND a.created_time < h.start + 3600
 GROUP BY h.start, c.risk_class
 ORDER BY h.start""",
            {
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {"field": "hour", "type": "ordinal", "timeUnit": "utcyearmonthdatehours",
                          "title": "hour (UTC)", "axis": {"format": "%H:00", "labelAngle": 0}},
                    "y": {"field": "alarms", "type": "quantitative", "aggregate": "sum",
                          "title": "alarms", "axis": COUNT_AXIS},
                    "color": {"field": "risk_class", "type": "nominal", "title": "risk class",
                              "scale": RISK_COLOURS},
                },
            }),
        "live-per-directive": _vega_lite(
            "Live backlogs per directive",
            """SELECT b.directive_id || ' ' || json_extract(v.definition, '$.name') AS directive,
       count(*) AS live
  FROM backlogs b JOIN directive_versions v ON v.id = b.directive_version
 WHERE b.state = 'live'
 GROUP BY b.directive_id
 ORDER BY live DESC, b.directive_id
 LIMIT 25""",
            {
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "y": {"field": "directive", "type": "nominal", "sort": "-x",
                          "title": None},
                    "x": {"field": "live", "type": "quantitative", "title": "live backlogs",
                          "axis": COUNT_AXIS},
                },
            }),
        "progress": _vega_lite(
            "How far the live backlogs have come through their stages",
            """SELECT (current_stage - 1) || ' of ' || highest_stage AS stages_done,
       (current_stage - 1) * 1.0 / highest_stage AS done,
       CASE WHEN risk_class = '' THEN 'none' ELSE risk_class END AS risk_class,
       count(*) AS live
  FROM live_backlogs
 GROUP BY stages_done, risk_class
 ORDER BY done, stages_done""",
            {
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {"field": "stages_done", "type": "ordinal",
                          "sort": {"field": "done", "op": "min"},
                          "title": "stages done, of the directive's", "axis": {"labelAngle": 0}},
                    "y": {"field": "live", "type": "quantitative", "aggregate": "sum",
                          "title": "live backlogs", "axis": COUNT_AXIS},
                    "color": {"field": "risk_class", "type": "nominal", "title": "risk class",
                              "scale": RISK_COLOURS},
                },
            }),
    }
    return {
        SLUG: {
            "title": "dsiem-sql: backlogs and alarms",
            "description": "Live backlogs and the alarms of the last 24 hours. The page "
                           "reloads itself when the database changes.",
            "layout": [["live-count", "alarms-count"],
                       ["alarms-per-hour", "alarms-per-hour"],
                       ["live-per-directive", "progress"]],
            "charts": charts,
        },
    }

"""The console's canned queries: SQL for the questions an analyst asks without writing SQL.
Pure data, as datasette's metadata wants it (docs/console.md lists them).

Times are relative to `dsiem_now()`, a function of the console's connections
(console/database.py): the wall clock while a `serve` writes the database, else the engine
clock of its last commit, as `dsiem-sql explain` counts (docs/explain.md, "Which clock").
`(SELECT dsiem_now())` is worked out once per query.
"""

from __future__ import annotations

from typing import Any

NOW = "(SELECT dsiem_now())"
UTC = "'%Y-%m-%d %H:%M:%S'"  # strftime's format for the UTC times shown


def canned_queries(min_alarm_lifetime: int = 0) -> dict[str, dict[str, Any]]:
    """The canned queries by name (their URL: /dsiem/NAME). `min_alarm_lifetime`: the
    minutes serve adds to every deadline (`-l`), for the backlogs about to expire."""
    # when the current stage runs out: its deadline, plus the lifetime
    expires = f"expires_at + {60 * min_alarm_lifetime}" if min_alarm_lifetime else "expires_at"
    return {
        "live_by_risk": {
            "title": "Live backlogs by risk",
            "description": "Every live backlog, the riskiest first; then the most recently "
                           "updated. Click an id for its story.",
            "hide_sql": True,
            "sql": f"""SELECT alarm_id, risk, risk_class, title,
       current_stage || ' of ' || highest_stage AS stage,
       stage_events || ' of ' || stage_occurrence AS stage_progress,
       src_ips, dst_ips,
       strftime({UTC}, update_time, 'unixepoch') AS updated_utc,
       {expires} - {NOW} AS expires_in_seconds,
       directive_id
  FROM live_backlogs
 ORDER BY risk DESC, update_time DESC, alarm_id""",
        },
        "expiring": {
            "title": "Backlogs whose current stage expires soon",
            "description": "The live backlogs whose current stage runs out of time within the "
                           "next N minutes (default 10; a negative time left: past the "
                           "deadline, waiting for the next expiry sweep). Give minutes to "
                           "change N.",
            "hide_sql": True,
            "sql": f"""SELECT alarm_id, title, risk,
       current_stage || ' of ' || highest_stage AS stage,
       stage_events || ' of ' || stage_occurrence AS stage_progress,
       strftime({UTC}, {expires}, 'unixepoch') AS expires_utc,
       {expires} - {NOW} AS seconds_left
  FROM live_backlogs
 WHERE {expires} - {NOW}
       <= 60 * coalesce(CAST(nullif(:minutes, '') AS REAL), 10)
 ORDER BY seconds_left, alarm_id""",
        },
        "alarms_24h": {
            "title": "Alarms of the last 24 hours by risk class",
            "description": "The alarms updated in the last 24 hours: High first, then "
                           "Medium and Low, each by risk and time.",
            "hide_sql": True,
            "sql": f"""SELECT risk_class, alarm_id, risk, state, title,
       strftime({UTC}, created_time, 'unixepoch') AS created_utc,
       strftime({UTC}, update_time, 'unixepoch') AS updated_utc,
       directive_id
  FROM alarms
 WHERE update_time >= {NOW} - 86400
 ORDER BY CASE risk_class WHEN 'High' THEN 0 WHEN 'Medium' THEN 1 ELSE 2 END,
          risk DESC, update_time DESC, alarm_id""",
        },
        "top_sources": {
            "title": "Top source addresses",
            "description": "The source addresses of the backlogs in the database (live and "
                           "ended, within retention): those behind the most alarms first. "
                           "Click an address for its backlogs.",
            "hide_sql": True,
            "sql": f"""SELECT s.value AS src_ip,
       sum(b.created_time > 0) AS alarms,
       sum(b.state = 'live') AS live,
       count(*) AS backlogs,
       max(b.risk) AS highest_risk,
       strftime({UTC}, max(b.update_time), 'unixepoch') AS last_seen_utc
  FROM backlogs b, json_each(b.src_ips) s
 GROUP BY s.value
 ORDER BY alarms DESC, highest_risk DESC, backlogs DESC, src_ip
 LIMIT 100""",
        },
        "address": {
            "title": "Backlogs of an address",
            "description": "The backlogs that hold an address, as source or destination, "
                           "newest first.",
            "hide_sql": True,
            "sql": f"""SELECT b.id AS alarm_id, b.state, b.risk, b.risk_class, b.title,
       b.current_stage || ' of ' || b.highest_stage AS stage,
       strftime({UTC}, b.update_time, 'unixepoch') AS updated_utc, b.src_ips, b.dst_ips
  FROM backlogs b
 WHERE EXISTS (SELECT 1 FROM json_each(b.src_ips) WHERE value = :ip)
    OR EXISTS (SELECT 1 FROM json_each(b.dst_ips) WHERE value = :ip)
 ORDER BY b.update_time DESC, b.id""",
        },
        "latest_reloads": {
            "title": "Config reloads, the newest first",
            "description": "Each time serve loaded its config, the newest first: what changed, "
                           "or why it was refused.",
            "hide_sql": True,
            "sql": """SELECT reload_id, time, trigger, result, message, seconds, configs, files
  FROM config_reloads
 ORDER BY reload_id DESC""",
        },
        "story_events": {
            "title": "A backlog's stages and events",
            "description": "Each stage of backlog id, with its status and the events it "
                           "took (time, addresses, ports). Its whole story, with the rules "
                           "in words and what it waits for, is at /-/story/ID.",
            "hide_sql": True,
            "sql": f"""SELECT s.stage, json_extract(s.rule, '$.name') AS rule,
       CASE WHEN s.status != '' THEN s.status
            WHEN b.state = 'live' AND s.stage = b.current_stage THEN 'active'
            WHEN b.state = 'live' THEN 'pending'
            ELSE 'not reached' END AS status,
       e.event_id, strftime({UTC}, e.event_time, 'unixepoch') AS event_utc,
       e.src_ip, e.src_port, e.dst_ip, e.dst_port
  FROM backlogs b
  JOIN stages s ON s.backlog_id = b.id
  LEFT JOIN stage_events e ON e.backlog_id = s.backlog_id AND e.stage = s.stage
 WHERE b.id = :id
 ORDER BY s.stage, e.id""",
        },
    }

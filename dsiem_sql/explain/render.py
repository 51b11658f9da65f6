"""The reports of `explain` as text for a terminal (labels in one column, long values folded
under their label, no colour) or as JSON. Pure."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from dsiem_sql.explain.words import endpoint, utc
from dsiem_sql.logtext import escaped

LABEL = 11  # the width of the label column


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def render_text(report: dict[str, Any], width: int = 100) -> str:
    lines = (_backlog(report, width) if report["kind"] == "backlog"
             else _event(report, width))
    # values from events and configs are one line each, whatever they hold
    return "".join(f"{escaped(line)}\n" for line in lines)


def _field(label: str, value: str, width: int, indent: int = 0) -> list[str]:
    """`label` then `value`, folded to `width` with the continuation under the value."""
    head = " " * indent + label.ljust(LABEL)
    return textwrap.wrap(escaped(value), width=max(width, 40), initial_indent=head,
                         subsequent_indent=" " * len(head), break_on_hyphens=False,
                         break_long_words=False) or [head.rstrip()]


# -- a stored backlog ---------------------------------------------------------------------------


def _backlog(r: dict[str, Any], width: int) -> list[str]:
    d = r["directive"]
    where = (f"live at stage {r['current_stage']} of {r['highest_stage']}" if r["state"] == "live"
             else f"{r['state']} (stage {r['current_stage']} of {r['highest_stage']})")
    alarm = (f"an alarm since {utc(r['created_time'])}" if r["alarm"]
             else "not an alarm: its risk has stayed 0")
    lines = textwrap.wrap(escaped(f"alarm {r['alarm_id']}: {where}, {alarm}"),
                          width=max(width, 40), subsequent_indent=" " * LABEL)
    lines += _field("title", r["title"], width)
    lines += _field("directive", f"{d['id']} \"{d['name']}\", version {d['version']} "
                    f"(sha256 {d['sha256'][:12]}), priority {d['priority']}"
                    f"{', all_rules_always_active' if d['all_rules_always_active'] else ''}",
                    width)
    lines += _field("addresses", f"{', '.join(r['src_ips'])} -> {', '.join(r['dst_ips'])}",
                    width)
    lines += _field("risk", r["risk"]["text"], width)
    if r["waiting"] is not None:
        lines += _field("clock", r["clock"]["text"], width)
    for s in r["stages"]:
        lines.append("")
        lines += _stage(s, width)
    lines.append("")
    waiting = r["waiting"]
    if waiting is not None:
        lines += _field("waits for", waiting["what"], width)
        for condition in waiting["conditions"]:
            lines += _field("", condition, width)
        if waiting["until"] is not None:
            lines += _field("until", waiting["until"], width)
    else:
        lines += _field("ended", r["ended"]["text"], width)
    return lines


def _stage(s: dict[str, Any], width: int) -> list[str]:
    status = s["status"].replace("_", " ")
    lines = [f"stage {s['stage']}  {s['name']}  {status}  {s['progress']}"]
    lines += _field("rule", s["text"], width, indent=2)
    times = []
    if s["start_time"] is not None:
        times.append(f"start {utc(s['start_time'])}")
    if s["end_time"] is not None:
        times.append(f"end {utc(s['end_time'])}")
    if s["deadline"] is not None and s["end_time"] is None:
        times.append(f"deadline {utc(s['deadline'])}")
    if not times:
        times.append(f"not started; its timeout, {s['timeout']} s, runs from when stage "
                     f"{s['stage'] - 1} finishes" if s["stage"] > 1 else "not started")
    lines += _field("time", ", ".join(times), width, indent=2)
    if s["sticky"]:
        lines += _field("seen", ", ".join(str(v) for v in s["sticky"]), width, indent=2)
    rows = [_event_row(e) for e in s["event_details"]]
    if not rows:
        lines += _field("events", "none yet" if s["status"] in ("active", "pending")
                        else "none", width, indent=2)
        return lines
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for i, row in enumerate(rows):
        text = "  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2]]).rstrip()
        lines += _field("events" if i == 0 else "", text, width, indent=2)
    return lines


def _event_row(e: dict[str, Any]) -> tuple[str, str, str]:
    if e["time"] is None:
        return e["event_id"], "not recorded", ""
    return (e["event_id"], utc(e["time"]),
            f"{endpoint(e['src_ip'], e['src_port'])} -> {endpoint(e['dst_ip'], e['dst_port'])}")


# -- one event against a directive --------------------------------------------------------------


def _event(r: dict[str, Any], width: int) -> list[str]:
    e, d, o = r["event"], r["directive"], r["options"]
    if e["plugin_id"] or e["plugin_sid"]:
        keys = f"plugin {e['plugin_id']} SID {e['plugin_sid']}"
    else:
        keys = f"product {json.dumps(e['product'])}, category {json.dumps(e['category'])}"
    lines = textwrap.wrap(escaped(
        f"event {e['event_id']} ({keys}, {endpoint(e['src_ip'], e['src_port'])} -> "
        f"{endpoint(e['dst_ip'], e['dst_port'])}) against directive {d['id']} "
        f"\"{d['name']}\""), width=max(width, 40), subsequent_indent=" " * LABEL,
        break_on_hyphens=False, break_long_words=False)
    flags = [f"--match-protocol {'on' if o['match_protocol'] else 'off'}",
             f"--taxonomy-custom-data {'on' if o['taxonomy_custom_data'] else 'off'}",
             f"--reference-mode {o['reference_mode']}"]
    lines += _field("options", ", ".join(flags), width)
    lines.append("")
    names = max(len(s["name"]) for s in r["stages"])
    for s in r["stages"]:
        verdict = "matches" if s["matches"] else f"no: {s['reason']}"
        head = f"stage {s['stage']}  {s['name'].ljust(names)}  "
        lines += textwrap.wrap(escaped(verdict), width=max(width, 40), initial_indent=head,
                               subsequent_indent=" " * len(head), break_on_hyphens=False,
                               break_long_words=False)
        for note in s["notes"]:
            lines += textwrap.wrap(escaped(f"note: {note}"), width=max(width, 40),
                                   initial_indent=" " * len(head),
                                   subsequent_indent=" " * (len(head) + 6),
                                   break_on_hyphens=False, break_long_words=False)
    lines.append("")
    lines += textwrap.wrap(escaped(r["summary"]), width=max(width, 40), break_on_hyphens=False,
                           break_long_words=False)
    return lines

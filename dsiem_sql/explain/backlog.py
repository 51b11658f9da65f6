"""`dsiem-sql explain --db PATH ID`: one stored backlog (alarm), explained (docs/explain.md).

`explain_backlog` is the shell: it reads the database read-only (store/explain.py), the
assets that give the risk its value, and the clock; `backlog_report` is pure and builds the
report (a dict, the JSON form) from what was read.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from dsiem_sql.config.assets import Assets
from dsiem_sql.config.errors import ConfigError
from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.engine.engine import EngineOptions, risk_of
from dsiem_sql.engine.explain import describe_rule, quoted, valued_asset
from dsiem_sql.engine.rules import REFERENCE_TARGETS, FirstEvent, Rule
from dsiem_sql.explain import ExplainError
from dsiem_sql.explain.words import duration, plural, utc
from dsiem_sql.store.explain import (
    OutputTrace,
    StoredBacklog,
    StoredEvent,
    find_in_outputs,
    read_backlog,
)
from dsiem_sql.store.rows import rule_from_json, rule_json

FINISHED, TIMEOUT, CANCELLED, ACTIVE, PENDING, NOT_REACHED = (
    "finished", "timeout", "cancelled", "active", "pending", "not_reached")


def explain_backlog(
    db: Path, alarm_id: str, configs: Path | None = None,
    options: EngineOptions | None = None,
) -> dict[str, Any]:
    """The report of backlog `alarm_id` of `db`. The risk's asset value comes from the
    assets of `configs`, else of the config directory serve last loaded (`reloads`), if it
    is still there. `options` are those of the serve or replay that wrote the database, as
    far as they change what the report says (`--min-alarm-lifetime`, `--match-protocol`,
    `--taxonomy-custom-data`). Raises `ExplainError` when the database does not hold the
    backlog, saying whether the output files show that it was there and has been pruned."""
    stored, outputs = read_backlog(db, alarm_id)
    if stored is None:
        raise ExplainError(missing_message(db, alarm_id, find_in_outputs(outputs, alarm_id)))
    assets, assets_from, assets_error = _assets(configs, stored.configs)
    if stored.serve:
        now, clock = int(time.time()), "wall"
    elif stored.clock is not None:
        now, clock = stored.clock, "engine"
    else:
        now, clock = int(time.time()), "wall"
    return backlog_report(stored, now, clock, assets, assets_from, assets_error,
                          options or EngineOptions())


def _assets(configs: Path | None, served: str | None
            ) -> tuple[Assets | None, str | None, str | None]:
    """(assets, the directory they are from, why there are none)."""
    from dsiem_sql.config.loader import load_assets

    if configs is not None:
        try:
            return load_assets(configs), str(configs), None
        except ConfigError as exc:
            raise ExplainError(str(exc)) from None
    if served is None:
        return None, None, "no --configs given, and no serve loaded a config into this database"
    if not Path(served).is_dir():
        return None, None, f"the config directory serve last loaded, {served}, is not here"
    try:
        return load_assets(served), served, None
    except ConfigError as exc:
        return None, None, f"the assets of {served} do not load: {exc}"


def missing_message(db: Path, alarm_id: str, traces: list[OutputTrace]) -> str:
    """`no backlog or alarm ID in DB`, and whether it was there: an ended backlog is deleted
    `--retention-days` after it ended; its lines stay in the output files."""
    head = f"no backlog or alarm {alarm_id} in {db}"
    seen = [t for t in traces if t.lines]
    if not seen:
        files = ", ".join(t.path for t in traces)
        where = f" ({files} do not name it either)" if traces else ""
        return (f"{head}: either it was pruned (an ended backlog is deleted --retention-days "
                "days after it ended, 7 by default) or it never was in this database"
                f"{where}")
    said = []
    for t in seen:
        text = f"{t.path} names it on {plural(t.lines, 'line')}"
        if t.last is not None and "update_time" in t.last:
            statuses = [r.get("status", "") or "open" for r in t.last.get("rules", [])]
            text += (f", the last at {utc(t.last['update_time'])} with risk "
                     f"{t.last.get('risk')} and stage statuses {', '.join(statuses)}")
        said.append(text)
    return (f"{head}: it was there and has been pruned (an ended backlog is deleted "
            f"--retention-days days after it ended, 7 by default); {'; '.join(said)}")


# -- the report ---------------------------------------------------------------------------------


def backlog_report(
    stored: StoredBacklog,
    now: int,
    clock: str,
    assets: Assets | None,
    assets_from: str | None,
    assets_error: str | None,
    options: EngineOptions,
) -> dict[str, Any]:
    """The report of one stored backlog, as of `now` on `clock` ("wall" or "engine")."""
    b = stored.backlog
    definition = DirectiveConfig.model_validate_json(stored.definition)
    written = [Rule.from_config(r) for r in definition.rules]
    effective = [_effective(stored, rule) for rule in written]
    stages = [_stage(stored, rule, effective[i - 1], i, options)
              for i, rule in enumerate(written, 1)]
    report: dict[str, Any] = {
        "kind": "backlog",
        "alarm_id": b["id"],
        "title": b["title"],
        "state": b["state"],
        "alarm": b["created_time"] > 0,
        "created_time": b["created_time"] or None,
        "update_time": b["update_time"],
        "ended_time": b["ended_time"],
        "current_stage": b["current_stage"],
        "highest_stage": b["highest_stage"],
        "src_ips": _json_list(b["src_ips"]),
        "dst_ips": _json_list(b["dst_ips"]),
        "directive": {
            "id": definition.id, "name": definition.name, "priority": definition.priority,
            "kingdom": definition.kingdom, "category": definition.category,
            "all_rules_always_active": definition.all_rules_always_active,
            "version": stored.version, "sha256": stored.sha256,
            "definition": definition.model_dump(by_alias=True),
        },
        "risk": _risk(stored, definition, effective, stages, assets, assets_from, assets_error),
        "clock": {"source": clock, "now": now, "text": _clock_text(clock, now, stored)},
        "stages": stages,
        "waiting": None,
        "ended": None,
    }
    if b["state"] == "live":
        report["waiting"] = _waiting(stored, definition, effective, stages, now, clock,
                                     options.min_alarm_lifetime)
    else:
        report["ended"] = _ended(b, stages)
    return report


def _json_list(text: str) -> list:
    return list(orjson.loads(text))


def _effective(stored: StoredBacklog, rule: Rule) -> Rule:
    """The stage's rule as the backlog runs it: its stored row (references resolved), or,
    for a stage not opened yet, the directive's rule with the references whose stage has a
    first event replaced by its values, as they will be when the stage opens."""
    s = stored.stages.get(rule.stage)
    if s is not None:
        return rule_from_json(s.rule)
    changes = {}
    for attr, n in rule.references:
        first = stored.stages.get(n)
        if first is not None and first.first_event is not None:
            changes[attr] = FirstEvent(*first.first_event).text(rule.source(attr))
    return rule.replace(**changes)


def _status(b: dict[str, Any], number: int, stored_status: str) -> str:
    if stored_status in (FINISHED, TIMEOUT, CANCELLED):
        return stored_status
    if number == b["current_stage"] and b["state"] == "live":
        return ACTIVE
    return PENDING if b["state"] == "live" else NOT_REACHED


def _stage(stored: StoredBacklog, written: Rule, rule: Rule, number: int,
           options: EngineOptions) -> dict[str, Any]:
    s = stored.stages.get(number)
    events = stored.events.get(number, [])
    start = s.start_time if s is not None and s.start_time else None
    return {
        "stage": number,
        "name": rule.name,
        "status": _status(stored.backlog, number, "" if s is None else s.status),
        "rule": _rule_json(rule),
        "text": rule_words(written, rule, stored, options),
        "match_text": rule_words(written, rule, stored, options, counts=False),
        "occurrence": rule.occurrence,
        "taken": len(events),
        "progress": f"{len(events)}/{rule.occurrence}",
        "start_time": start,
        "end_time": s.end_time if s is not None and s.end_time else None,
        # stage 1 finishes with its first event: its timeout never matters
        "deadline": start + rule.timeout if start is not None and number > 1 else None,
        "timeout": rule.timeout,
        "sticky": [] if s is None else s.sticky,
        "events": [e.event_id for e in events],
        "event_details": [_event(e) for e in events],
    }


def _rule_json(rule: Rule) -> dict[str, Any]:
    return dict(orjson.loads(rule_json(rule)))


def _event(e: StoredEvent) -> dict[str, Any]:
    return {"event_id": e.event_id, "time": e.time, "src_ip": e.src_ip, "dst_ip": e.dst_ip,
            "src_port": e.src_port, "dst_port": e.dst_port}


def rule_words(written: Rule, rule: Rule, stored: StoredBacklog, options: EngineOptions,
               counts: bool = True) -> str:
    """`describe_rule` of the effective rule, each reference shown beside what it became:
    `from 10.0.0.1 (:1)`, or `from :2 (stage 2's src_ip, not known yet)`."""
    shown = {}
    for attr, n in written.references:
        value, was = getattr(rule, attr), getattr(written, attr)
        if value != was:
            text = quoted(value) if attr.startswith("custom") or attr == "protocol" else value
            shown[attr] = f"{text} ({was})"
        elif stored.stages.get(n) is not None and stored.stages[n].first_event is not None:
            shown[attr] = f"{was} (left as written: --reference-mode rule)"
        else:
            shown[attr] = (f"{was} (stage {n}'s {REFERENCE_TARGETS[written.source(attr)]}, "
                           "not known yet)")
    return describe_rule(rule, shown, counts, options)


def _clock_text(clock: str, now: int, stored: StoredBacklog) -> str:
    if clock == "wall":
        why = ("a serve is writing this database" if stored.serve
               else "the database has no engine clock yet")
        return f"the wall clock, {utc(now)} ({why})"
    return (f"the engine clock of the last commit, {utc(now)} (no serve is writing this "
            "database: a replay database, or serve is stopped)")


def _risk(stored: StoredBacklog, definition: DirectiveConfig, rules: list[Rule],
          stages: list[dict[str, Any]], assets: Assets | None, assets_from: str | None,
          assets_error: str | None) -> dict[str, Any]:
    """The stored risk and how it was computed (docs/behaviour.md, "Risk"): the directive's
    priority, the reliability of the last stage that finished, and the highest asset value
    of the backlog's addresses when it finished."""
    b = stored.backlog
    risk, priority = b["risk"], definition.priority
    done = [s["stage"] for s in stages if s["status"] == FINISHED]
    out: dict[str, Any] = {
        "risk": risk, "class": b["risk_class"], "priority": priority, "reliability": None,
        "stage": None, "value": None, "address": None, "asset": None,
        "assets_from": assets_from, "text": "",
    }
    if not done:
        out["text"] = f"{risk}: no stage has finished yet"
        return out
    k = max(done)
    reliability = rules[k - 1].reliability
    out.update(reliability=reliability, stage=k)
    formula = f"priority {priority} x reliability {reliability} (stage {k}) x asset value"
    shown_class = f" ({b['risk_class']})" if b["risk_class"] else ""
    if assets is None:
        product = priority * reliability
        if product == 0:
            values = "any asset value (priority x reliability is 0)"
        else:
            lo, hi = -(-25 * risk // product), (25 * (risk + 1) - 1) // product
            values = (f"an asset value of {lo}" if lo == hi
                      else f"an asset value from {lo} to {hi}")
        out["text"] = (f"{risk}{shown_class} = {formula} // 25, with {values} (which asset "
                       f"is not known: {assets_error}; --configs DIR names it)")
        return out
    ips, when = _addresses_at(stored, k)
    value, address = 0, None
    for ip in ips:
        v = assets.value(ip)
        if v > value:
            value, address = v, ip
    asset = None if address is None else valued_asset(assets, address)
    out.update(value=value, address=address, asset=None if asset is None else {
        "name": asset.name, "cidr": str(asset.network), "value": asset.value,
        "whitelisted": asset.whitelisted})
    text = f"{risk}{shown_class} = {formula} {value} // 25"
    if asset is not None:
        text += (f"; value {value}: {address}, in asset {quoted(asset.name)} {asset.network}"
                 f"{' (whitelisted)' if asset.whitelisted else ''}")
    else:
        text += "; value 0: no address of the backlog is in an asset"
    text += f" ({when}; assets of {assets_from})"
    computed = risk_of(priority, reliability, value)
    if computed != risk:
        text += (f"; these assets give {computed}, not {risk}: they have changed since "
                 f"stage {k} finished")
    out["text"] = text
    return out


def _addresses_at(stored: StoredBacklog, k: int) -> tuple[list[str], str]:
    """The backlog's addresses when stage `k` finished: those of the events counted up to
    stage k's last one, when their details were recorded; else all of them now."""
    links = sorted((e for events in stored.events.values() for e in events),
                   key=lambda e: e.link)
    last = max((e.link for e in stored.events.get(k, [])), default=None)
    upto = [e for e in links if last is not None and e.link <= last]
    if upto and all(e.src_ip is not None and e.dst_ip is not None for e in upto):
        ips: dict[str, None] = {}
        for e in upto:
            ips[e.src_ip] = ips[e.dst_ip] = None  # type: ignore[index]
        return list(ips), f"the addresses of the events up to stage {k}"
    b = stored.backlog
    return ([*_json_list(b["src_ips"]), *_json_list(b["dst_ips"])],
            "the backlog's addresses now: the events' were not recorded")


def _waiting(stored: StoredBacklog, definition: DirectiveConfig, rules: list[Rule],
             stages: list[dict[str, Any]], now: int, clock: str,
             min_alarm_lifetime: int) -> dict[str, Any]:
    """What the current stage of a live backlog waits for, and until when."""
    b = stored.backlog
    k = b["current_stage"]
    stage, rule = stages[k - 1], rules[k - 1]
    needs = max(rule.occurrence, 1) - stage["taken"]
    what = (f"stage {k} ({quoted(rule.name)}): {plural(needs, 'more event')} "
            f"({stage['progress']} taken) that match: {stage['match_text']}")
    if rule.absent:
        needs = 0
        what = (f"stage {k} ({quoted(rule.name)}), an absence stage: no event that matches "
                f"{stage['match_text']}; one that comes by the deadline ends the backlog; "
                "once the deadline has passed, the stage is complete")
    conditions = []
    if rule.sticky_different:
        seen = ", ".join(str(v) for v in stage["sticky"])
        conditions.append(f"each with a different {rule.sticky_different}"
                          + (f", other than {seen}" if seen else ""))
    previous_end = max((s["end_time"] or 0 for s in stages[: k - 1]), default=0)
    if previous_end:
        conditions.append(f"an event older than {utc(previous_end)} (when stage {k - 1} "
                          "ended) is discarded as out of order")
    if definition.all_rules_always_active and k > 1:
        conditions.append(f"stages 1 to {k - 1} also take the events that match them "
                          "(all_rules_always_active)")
    deadline = stage["deadline"]
    waiting: dict[str, Any] = {"stage": k, "needs": needs, "what": what,
                               "conditions": conditions, "deadline": deadline,
                               "expires_after": None, "seconds_left": None, "until": None}
    if rule.absent:
        min_alarm_lifetime = 0  # an absence stage completes at its deadline
    if deadline is not None:
        expires = deadline + min_alarm_lifetime * 60
        left = expires - now
        lifetime = (f" + --min-alarm-lifetime {min_alarm_lifetime} min = {utc(expires)}"
                    if min_alarm_lifetime else "")
        when = (f"{duration(left)} left" if left > 0 else
                f"overdue by {duration(left)}: it expires at the next expiry check"
                if left < 0 else "it expires at the next expiry check after this second")
        by = "the wall clock" if clock == "wall" else "the engine clock"
        waiting.update(expires_after=expires, seconds_left=left, until=(
            f"{utc(deadline)} (start {utc(stage['start_time'])} + timeout {rule.timeout} s)"
            f"{lifetime}: {when} by {by}"))
    return waiting


def _ended(b: dict[str, Any], stages: list[dict[str, Any]]) -> dict[str, Any]:
    ended = b["ended_time"]
    if b["state"] == FINISHED:
        last = stages[-1]
        text = (f"finished at {utc(ended)}: its last stage, {last['stage']}, took "
                f"{last['progress']} events")
        if last["rule"].get("absent"):
            text = (f"finished at {utc(ended)}: no event came to its last stage, "
                    f"{last['stage']}, an absence stage, by its deadline {utc(last['deadline'])}")
        return {"state": FINISHED, "time": ended, "stage": last["stage"], "text": text}
    k = b["current_stage"]
    stage = stages[k - 1]
    deadline = stage["deadline"]
    if stage["status"] == CANCELLED:
        text = (f"ended at {utc(ended)}: an event matching absence stage {k} came at "
                f"{utc(stage['end_time'])}, before its deadline {utc(deadline)}")
        return {"state": "expired", "time": ended, "stage": k, "text": text}
    by = f" by its deadline {utc(deadline)}" if deadline is not None else ""
    text = (f"expired at {utc(ended)}: stage {k} did not get its "
            f"{plural(stage['occurrence'], 'event')}{by} ({stage['progress']} taken)")
    return {"state": "expired", "time": ended, "stage": k, "text": text}

"""Running a directive test case: its events through the engine, in memory, on the event
clock, as `replay` runs them (an `Engine` fed by a `Correlator` with an `EventClock`), then
what came out against what the case expects.

A failure names the alarm or backlog, the stage and the field, with both values.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import orjson

from dsiem_sql.authoring.cases import (
    AlarmExpect,
    Case,
    CaseError,
    ClockStep,
    compress,
    parse_time,
)
from dsiem_sql.config import ConfigError, load_config
from dsiem_sql.config.loader import Config
from dsiem_sql.engine import Backlog, Engine, InvalidEvent, decode_event
from dsiem_sql.engine.suppressions import Suppressions
from dsiem_sql.runtime.correlator import Correlator, EventClock


@dataclass
class Actual:
    """What a case produced."""

    backlogs: list[Backlog]  # every backlog it opened, in the order they were opened
    alarms: list[Backlog]  # those that wrote an alarm line, in the order of their first
    alarm_lines: int
    alarm_records: list[dict[str, Any]]  # the alarm lines, parsed


@dataclass
class Outcome:
    case: Case
    failures: list[str] = field(default_factory=list)
    error: str | None = None  # the case could not run
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None


class Configs:
    """Config directories, each loaded once."""

    def __init__(self) -> None:
        self._loaded: dict[Path, Config] = {}

    def get(self, path: Path) -> Config:
        key = path.resolve()
        if key not in self._loaded:
            self._loaded[key] = load_config(path)
        return self._loaded[key]


def run(case: Case, config: Config) -> Actual:
    """The case's events and clock steps through a new engine holding the case's
    directives; raises CaseError for a directive that is not there or an invalid event."""
    if case.directives is not None:
        known = {d.id for d in config.directives}
        missing = [d for d in case.directives if d not in known]
        if missing:
            raise CaseError(f"directive {', '.join(map(str, missing))} is not in {case.configs}")
        config = dataclasses.replace(config, directives=tuple(
            d for d in config.directives if d.id in case.directives))
    clock = EventClock(case.start)
    ids = count(1)
    engine = Engine(config, case.settings.engine_options(), clock=clock,
                    new_id=lambda: f"alarm-{next(ids)}")
    engine.suppressions = Suppressions(list(case.suppressions))
    correlator = Correlator(engine, clock=clock)
    for step in case.steps:
        if isinstance(step, ClockStep):
            correlator.sweep(step.time)
            continue
        try:
            correlator.feed(decode_event(orjson.dumps(step.fields)))
        except InvalidEvent as exc:
            raise CaseError(f"{step.where}: {exc}") from None
    changes = correlator.take()
    records = [orjson.loads(line) for line in changes.alarms]
    alarm_ids = dict.fromkeys(r["alarm_id"] for r in records)
    return Actual(
        backlogs=sorted(changes.backlogs.values(), key=lambda b: b.seq),
        alarms=[changes.backlogs[i] for i in alarm_ids],
        alarm_lines=len(records),
        alarm_records=records,
    )


def run_cases(cases: list[Case], configs: Configs | None = None) -> list[Outcome]:
    configs = configs or Configs()
    outcomes = []
    for case in cases:
        started = time.perf_counter()
        outcome = Outcome(case)
        try:
            outcome.failures = check(case, run(case, configs.get(case.configs)))
        except (CaseError, ConfigError) as exc:
            outcome.error = str(exc)
        outcome.seconds = time.perf_counter() - started
        outcomes.append(outcome)
    return outcomes


# -- checking --------------------------------------------------------------------------------


def check(case: Case, actual: Actual) -> list[str]:
    """The differences between what `case` expects and `actual`, one line each."""
    expect = case.expect
    failures: list[str] = []
    if expect.alarms is not None:
        failures += _compare_list("alarm", expect.alarms, actual.alarms, case.start)
    if expect.backlogs is not None:
        failures += _compare_list("backlog", expect.backlogs, actual.backlogs, case.start)
    if expect.alarm_lines is not None and expect.alarm_lines != actual.alarm_lines:
        failures.append(f"alarm_lines: expected {expect.alarm_lines}, got {actual.alarm_lines}")
    for directive in expect.no_backlog:
        opened = [b for b in actual.backlogs if b.definition.id == directive]
        if opened:
            failures.append(f"no_backlog: directive {directive} opened {len(opened)} "
                            f"backlog{'s' if len(opened) > 1 else ''}: "
                            + "; ".join(_summary(b, case.start) for b in opened))
    return failures


def _compare_list(kind: str, expected: list[AlarmExpect], actual: list[Backlog],
                  start: int) -> list[str]:
    failures = []
    if len(expected) != len(actual):
        got = "; ".join(_summary(b, start) for b in actual) or "none"
        failures.append(f"{kind}s: expected {len(expected)}, got {len(actual)}: {got}")
    for n, (want, b) in enumerate(zip(expected, actual, strict=False), start=1):
        name = f"{kind} {n} (directive {b.definition.id})"
        failures += [f"{name}: {line}" for line in compare(want, b, start)]
    return failures


GETTERS: dict[str, Callable[[Backlog], Any]] = {
    "directive": lambda b: b.definition.id,
    "title": lambda b: b.title,
    "risk": lambda b: b.risk,
    "risk_class": lambda b: b.risk_class,
    "stage": lambda b: b.current_stage,
    "status": lambda b: b.status,
    "state": lambda b: b.state,
    "stage_status": lambda b: b.current.status,
    "src_ips": lambda b: list(b.src_ips),
    "dst_ips": lambda b: list(b.dst_ips),
}


def compare(want: AlarmExpect, b: Backlog, start: int) -> list[str]:
    """The fields of `b` that differ from those `want` gives."""
    failures = []
    for name, get in GETTERS.items():
        wanted = getattr(want, name)
        if wanted is not None and wanted != get(b):
            failures.append(f"{name}: expected {_shown(wanted)}, got {_shown(get(b))}")
    if want.ended is not None:
        ended = parse_time(want.ended, start)
        if b.ended_time != ended:
            got = "not ended" if b.ended_time is None else _relative(b.ended_time, start)
            failures.append(f"ended: expected {_relative(ended, start)}, got {got}")
    for stage, ids in (want.events or {}).items():
        if not 1 <= stage <= len(b.stages):
            failures.append(f"stage {stage}: directive {b.definition.id} has "
                            f"{len(b.stages)} stages")
        elif list(b.stages[stage - 1].event_ids) != ids:
            taken = list(b.stages[stage - 1].event_ids)
            failures.append(f"stage {stage} events: expected {_shown(compress(ids))}, "
                            f"got {_shown(compress(taken))}")
    return failures


def _summary(b: Backlog, start: int) -> str:
    ended = "" if b.ended_time is None else f" at {_relative(b.ended_time, start)}"
    return (f"directive {b.definition.id} stage {b.current_stage}/{len(b.stages)} "
            f"risk {b.risk} {b.state}{ended}")


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _relative(epoch: int, start: int) -> str:
    seconds = epoch - start
    return f"+{seconds}s" if seconds >= 0 else f"{seconds}s"

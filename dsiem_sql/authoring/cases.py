"""Directive test cases: the YAML files that `dsiem-sql test` runs (docs/testing.md).

A file holds one or more cases. Each case names its events (times relative to `start`, as
`+90s`, or absolute), steps that only move the clock (`- at: +3600s`), and what the engine
must then have produced: the alarms, the number of alarm lines, the backlogs, or none of
them. Everything a case leaves out has a default, so that a case stays short.

Loading checks the whole file and raises `CaseError` naming the file, the case and the key
at fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dsiem_sql.engine.suppressions import Suppression, network
from dsiem_sql.runtime.settings import EngineSettings

START = "2024-01-01T00:00:00Z"  # what `+0s` stands for unless a file says otherwise
DURATION = re.compile(r"^([+-])((?:\d+(?:\.\d+)?[smhd])+)$")
PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
STEP_KEYS = {"at", "id", "repeat", "every"}  # the keys of an event entry that are not fields
EVENT_DEFAULTS = {"title": "test event", "sensor": "dsiem-sql-test", "src_ip": "192.0.2.1",
                  "dst_ip": "192.0.2.2"}
FORBID = ConfigDict(extra="forbid", strict=True)


class CaseError(Exception):
    """A case file that cannot be run; the message names the file and the place."""


def parse_time(text: Time, start: int) -> int:
    """Epoch seconds of `+90s`, `+1h30m`, `-5s` (relative to `start`), an RFC 3339 time (as
    text, or as YAML reads it), or epoch seconds."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a time")
    if isinstance(text, int):
        return text
    if isinstance(text, datetime):
        moment = text if text.tzinfo is not None else text.replace(tzinfo=UTC)
        return int(moment.timestamp())
    text = text.strip()
    relative = DURATION.match(text)
    if relative:
        seconds = sum(float(n) * SECONDS[unit] for n, unit in PART.findall(relative[2]))
        return start + int(seconds) * (1 if relative[1] == "+" else -1)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: give +90s, +1h30m or an RFC 3339 time like "
                         f"2024-05-01T10:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


Time = str | int | datetime


def duration(text: str) -> int:
    """Seconds of `10s`, `+10s`, `1m`."""
    return parse_time(text if text[:1] in "+-" else f"+{text}", 0)


ID_RANGE = re.compile(r"^(?P<prefix>.*?)(?P<first>\d+)\.\.(?P=prefix)(?P<last>\d+)$")


def expand(item: str) -> list[str]:
    """`s3-1..s3-500` is the 500 ids s3-1, s3-2, ... s3-500 (as `repeat` names them)."""
    found = ID_RANGE.match(item)
    if not found or int(found["first"]) > int(found["last"]):
        return [item]
    prefix = found["prefix"]
    return [f"{prefix}{n}" for n in range(int(found["first"]), int(found["last"]) + 1)]


def compress(ids: list[str]) -> list[str]:
    """`expand`'s inverse for runs of four or more."""
    out: list[str] = []
    run: list[tuple[str, int]] = []

    def flush() -> None:
        if len(run) >= 4:
            out.append(f"{run[0][0]}{run[0][1]}..{run[-1][0]}{run[-1][1]}")
        else:
            out.extend(f"{p}{n}" for p, n in run)
        run.clear()

    for i in ids:
        found = re.match(r"^(.*?)(\d+)$", i)
        if found and run and run[-1][0] == found[1] and run[-1][1] + 1 == int(found[2]):
            run.append((found[1], int(found[2])))
            continue
        flush()
        if found:
            run.append((found[1], int(found[2])))
        else:
            out.append(i)
    flush()
    return out


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AlarmExpect(BaseModel):
    """What one alarm (or backlog) must be; the keys left out are not checked."""

    model_config = FORBID

    directive: int | None = None
    title: str | None = None
    risk: int | None = None
    risk_class: str | None = None
    stage: int | None = None  # the last stage reached (the current one)
    status: str | None = None  # the alarm's status, e.g. Open
    state: Literal["live", "finished", "expired"] | None = None
    # the status of the last stage reached: finished, timeout, cancelled (an absence stage
    # that a matching event ended), or "" while it waits
    stage_status: str | None = None
    src_ips: list[str] | None = None
    dst_ips: list[str] | None = None
    ended: Time | None = None  # when it finished or expired
    events: dict[int, list[str]] | None = None  # stage -> the event ids it took, in order

    @field_validator("ended")
    @classmethod
    def _time(cls, value: Time | None) -> Time | None:
        if value is not None:
            parse_time(value, 0)
        return value

    @field_validator("events")
    @classmethod
    def _ranges(cls, value: dict[int, list[str]] | None) -> dict[int, list[str]] | None:
        if value is None:
            return None
        return {stage: [i for item in ids for i in expand(item)] for stage, ids in value.items()}


class Expect(BaseModel):
    model_config = FORBID

    alarms: list[AlarmExpect] | None = None  # every alarm, in the order they were opened
    alarm_lines: int | None = Field(None, ge=0)
    backlogs: list[AlarmExpect] | None = None  # every backlog, alarm or not, in order
    no_backlog: list[int] = Field(default_factory=list)  # directives that open none


class SuppressionModel(BaseModel):
    """A suppression in force from the start of the case (docs/behaviour.md,
    "Suppressions"); it expires by the event clock."""

    model_config = FORBID

    directive: int | None = None  # None: every directive
    src: str | None = None
    dst: str | None = None
    custom_data: str | None = None
    until: Time | None = None  # None: permanent

    @field_validator("src", "dst")
    @classmethod
    def _network(cls, value: str | None) -> str | None:
        if value is not None:
            network(value)
        return value


class CaseModel(BaseModel):
    model_config = FORBID

    name: str
    directives: list[int] | None = None
    suppressions: list[SuppressionModel] = Field(default_factory=list)
    defaults: dict[str, Any] = Field(default_factory=dict)
    events: list[dict[str, Any]] = Field(default_factory=list)
    expect: Expect


class FileModel(BaseModel):
    model_config = FORBID

    configs: str | None = None
    directives: list[int] | None = None
    options: dict[str, Any] = Field(default_factory=dict)  # EngineSettings' names
    start: Time = START
    defaults: dict[str, Any] = Field(default_factory=dict)
    cases: list[CaseModel] = Field(min_length=1)


@dataclass(frozen=True)
class Event:
    """An event of a case: its JSON object and where it was written."""

    fields: dict[str, Any]
    where: str  # "events[2]" or "events[2] #3" for the third of a repeat


@dataclass(frozen=True)
class ClockStep:
    """Move the clock to `time` and expire what timed out by then."""

    time: int
    where: str


Step = Event | ClockStep


@dataclass(frozen=True)
class Case:
    file: Path
    name: str
    configs: Path
    directives: tuple[int, ...] | None
    settings: EngineSettings
    start: int
    steps: tuple[Step, ...]
    expect: Expect
    suppressions: tuple[Suppression, ...] = ()

    @property
    def title(self) -> str:
        return f"{self.file.name}: {self.name}"


def load_cases(path: Path, configs: Path | None = None) -> list[Case]:
    """The cases of the file `path`. Their configs: the file's `configs:` (relative to the
    file), else `configs`, else the `configs/` folder beside the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
                        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseError(f"{path}: not valid YAML: {where}{problem}") from None
    try:
        model = FileModel.model_validate(raw)
    except ValidationError as exc:
        raise CaseError(f"{path}: {_describe(exc, raw)}") from None
    try:
        settings = EngineSettings.model_validate(model.options)
        start = parse_time(model.start, 0)
    except (ValidationError, ValueError) as exc:
        message = _describe(exc, raw) if isinstance(exc, ValidationError) else str(exc)
        raise CaseError(f"{path}: {'options' if isinstance(exc, ValidationError) else 'start'}"
                        f": {message}") from None
    if model.configs is not None:
        configs = path.parent / model.configs
    elif configs is None:
        configs = path.parent / "configs"
    cases = []
    for n, c in enumerate(model.cases):
        where = f"{path}: cases[{n}] ({c.name})"
        directives = c.directives if c.directives is not None else model.directives
        steps = case_steps(c, {**model.defaults, **c.defaults}, start, where)
        try:
            silenced = tuple(Suppression(
                n + 1, s.directive, network(s.src) if s.src else None,
                network(s.dst) if s.dst else None, s.custom_data,
                None if s.until is None else parse_time(s.until, start))
                for n, s in enumerate(c.suppressions))
        except ValueError as exc:
            raise CaseError(f"{where}: suppressions: {exc}") from None
        cases.append(Case(path, c.name, configs, None if directives is None else
                          tuple(directives), settings, start, tuple(steps), c.expect,
                          silenced))
    return cases


def case_steps(case: CaseModel, defaults: dict[str, Any], start: int, where: str) -> list[Step]:
    steps: list[Step] = []
    now = start
    number = 0
    for i, entry in enumerate(case.events):
        here = f"events[{i}]"
        try:
            if "at" in entry:
                now = parse_time(entry["at"], start)
            if set(entry) == {"at"}:
                steps.append(ClockStep(now, here))
                continue
            repeat = entry.get("repeat", 1)
            if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
                raise ValueError(f"repeat: {repeat!r} is not a count of 1 or more")
            every = duration(str(entry.get("every", "0s")))
        except ValueError as exc:
            raise CaseError(f"{where}: {here}: {exc}") from None
        fields = {k: v for k, v in entry.items() if k not in STEP_KEYS}
        for k in range(repeat):
            number += 1
            given = entry.get("id", fields.get("event_id"))
            event_id = f"e{number}" if given is None else (
                str(given) if repeat == 1 else f"{given}-{k + 1}")
            steps.append(Event({
                **EVENT_DEFAULTS, **defaults, **fields, "event_id": event_id,
                "timestamp": iso(now)}, here if repeat == 1 else f"{here} #{k + 1}"))
            if k + 1 < repeat:
                now += every
    return steps


def _describe(exc: ValidationError, raw: Any) -> str:
    """The first error, with its place as a path into the file: cases[1].expect.risk."""
    err = exc.errors(include_url=False)[0]
    path = ""
    node = raw
    for part in err["loc"]:
        if node is not None and not _has(node, part):
            continue  # a member of a union: `str` in start.str
        node = node[part]
        if isinstance(part, int):
            path += f"[{part}]"
            if path.endswith(f"cases[{part}]") and isinstance(node, dict) and "name" in node:
                path += f" ({node['name']})"
        else:
            path += f".{part}" if path else str(part)
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "not a key of this place (a typo?)"
    return f"{path}: {message}" if path else message


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, list):
        return isinstance(part, int) and 0 <= part < len(node)
    return isinstance(node, dict) and part in node

"""Append-only writers for `siem_alarms.json` and `siem_alarm_events.json`."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from dsiem_sql.engine.alarm import render_link
from dsiem_sql.engine.state import Changes

ALARMS_FILE = "siem_alarms.json"
ALARM_EVENTS_FILE = "siem_alarm_events.json"


class OutputFiles:
    """Both output files of one directory, opened for appending (created if missing)."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.alarms = open(self.directory / ALARMS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self.alarm_events = open(self.directory / ALARM_EVENTS_FILE, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, changes: Changes) -> None:
        for link in changes.links:
            self.alarm_events.write(render_link(link) + "\n")
        for line in changes.alarms:
            self.alarms.write(line + "\n")

    def flush(self) -> None:
        self.alarm_events.flush()
        self.alarms.flush()

    def close(self) -> None:
        self.alarm_events.close()
        self.alarms.close()

    def __enter__(self) -> OutputFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

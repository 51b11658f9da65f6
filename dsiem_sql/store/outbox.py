"""The output files read by Filebeat (docs/behaviour.md, "Output files"), and the
transactional outbox in front of them.

A commit stores its output lines in the `outbox` table of its own transaction; after the
commit, `Appender` appends them to `siem_alarms.json` / `siem_alarm_events.json`, and the
next transaction records how far each file was written (`output_files`) and deletes those
rows. After a crash, `Appender.recover` writes the committed lines that did not reach the
files, exactly once and in commit order. `replay` without a database uses the same appender
with no table behind it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from dsiem_sql.engine.alarm import render_link
from dsiem_sql.engine.state import Changes
from dsiem_sql.store.errors import cannot_write

log = logging.getLogger(__name__)

ALARMS, ALARM_EVENTS = "alarms", "alarm_events"
FILES = {ALARMS: "siem_alarms.json", ALARM_EVENTS: "siem_alarm_events.json"}
Line = tuple[int, str, str]  # (seq, file, line): a row of the outbox table


@dataclass
class OutputFile:
    path: Path
    size: int  # bytes known to be written whole
    written_seq: int  # the last outbox line in the file


@dataclass(frozen=True)
class Recorded:
    """An `output_files` row: how far a file was written at the last commit."""

    path: str
    size: int
    written_seq: int


class Appender:
    """Appends output lines to the two files of one directory, each line once."""

    def __init__(self, directory: Path | str, fsync: bool = False):
        self.directory = Path(directory)
        self.fsync = fsync
        self.files: dict[str, OutputFile] = {}
        self.next_seq = 1  # of the next output line
        self.written_upto = 0  # every line up to this seq is in its file

    def open(self) -> None:
        """Create the directory and both files: one that cannot be written stops the start,
        not the first alarm."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise cannot_write(self.directory, "create directory", exc) from None
        for file, name in FILES.items():
            path = (self.directory / name).resolve()
            try:
                with path.open("ab") as f:
                    size = f.tell()
            except OSError as exc:
                raise cannot_write(path, "open for appending", exc) from None
            self.files[file] = OutputFile(path, size, self.written_upto)

    def recover(self, recorded: dict[str, Recorded], pending: list[Line]) -> int:
        """After `open`: write the `pending` outbox lines (committed, maybe not written)
        that the files do not hold yet; returns how many were written."""
        last_seq = pending[-1][0] if pending else max(
            (r.written_seq for r in recorded.values()), default=0
        )
        written = 0
        for file, state in self.files.items():
            lines = [line for _, f, line in pending if f == file]
            skip = _lines_already_written(state.path, recorded.get(file), lines)
            if lines[skip:]:
                with state.path.open("ab") as f:
                    f.write("".join(line + "\n" for line in lines[skip:]).encode())
                    state.size = f.tell()
            written += len(lines) - skip
            state.size = state.path.stat().st_size
            state.written_seq = last_seq
        self.next_seq = last_seq + 1
        self.written_upto = last_seq
        return written

    def number(self, changes: Changes) -> list[Line]:
        """The output records of `changes` as outbox lines, in the order they were produced."""
        seq = self.next_seq
        lines = [(seq + i, ALARM_EVENTS, render_link(link))
                 for i, link in enumerate(changes.links)]
        seq += len(lines)
        lines.extend((seq + i, ALARMS, line) for i, line in enumerate(changes.alarms))
        self.next_seq = seq + len(changes.alarms)
        return lines

    def append(self, lines: list[Line]) -> None:
        """Append `lines` to their files. Safe to call again after it failed part-way: what
        an earlier try wrote of a file is replaced, whole lines already written are kept."""
        by_file: dict[str, list[Line]] = {}
        for line in lines:
            by_file.setdefault(line[1], []).append(line)
        for file, items in by_file.items():
            state = self.files[file]
            if state.written_seq >= items[-1][0]:
                continue  # an earlier try wrote them
            with state.path.open("ab") as f:
                if os.fstat(f.fileno()).st_size > state.size:
                    f.truncate(state.size)  # what a failed try left of its lines
                f.write("".join(line + "\n" for _, _, line in items).encode())
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
                state.size = f.tell()
            state.written_seq = items[-1][0]
            self.written_upto = max(self.written_upto, items[-1][0])

    def positions(self) -> list[tuple[str, str, int, int]]:
        """`output_files` rows: (file, path, size, written_seq)."""
        return [(file, str(s.path), s.size, s.written_seq) for file, s in self.files.items()]


def _lines_already_written(path: Path, recorded: Recorded | None, lines: list[str]) -> int:
    """How many of the pending `lines` the file already holds after its recorded size.

    A partly written last line (no newline) is cut off, so it can be written again whole.
    """
    if recorded is None or recorded.path != str(path) or not path.exists():
        return 0
    size = path.stat().st_size
    if size < recorded.size:
        log.warning("%s is shorter than when it was last written; appending", path)
        return 0
    with path.open("rb+") as f:
        f.seek(recorded.size)
        tail = f.read()
        *complete, partial = tail.split(b"\n")
        skip = 0
        for written, line in zip(complete, lines, strict=False):
            if written != line.encode():
                break
            skip += 1
        if partial and skip == len(complete):
            f.truncate(size - len(partial))
    return skip

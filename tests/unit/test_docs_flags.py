"""Every flag the documentation gives a dsiem-sql command exists in that command's `--help`
(issue 18, item 6: the docs named `--expiry-interval`, and `--commit-changes` for serve, which
only replay has).

Which command a flag belongs to is read from where it stands:

* a command line, in a code block or an inline code span: `dsiem-sql serve --node N ...`
  (with its indented continuation lines), or a span `replay --resume`: that command;
* a table of options (first column `Flag`): the command of the "Options of `X`" line above it;
* an inline code span in a section about given commands (SECTIONS): those commands, every one
  of them, unless the paragraph, list item or table row names a command itself
  (`dsiem-sql sql`, or a span that is just `replay`): then one of those named or of the
  section's will do;
* any other inline code span, outside the sections about other programs (OTHER_PROGRAMS):
  some dsiem-sql command must have the flag.

Spans that start with another program (`docker ...`, `scripts/lock --upgrade`) are not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from kit import ROOT
from typer.testing import CliRunner

from dsiem_sql.cli import app

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# (file name, `##` heading) -> the commands its prose is about
SECTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    **{("deployment.md", h): ("serve",) for h in (
        "Swapping a backend", "Changing directives", "Scaling out the Dsiem way",
        "Durable intake with JetStream", "What a crash can cost", "When things go wrong",
        "Monitoring")},
    ("architecture.md", "One event, hop by hop (`serve`)"): ("serve",),
    ("architecture.md", "A reload"): ("serve",),
    ("architecture.md", "The one writer"): ("serve",),
    ("schema.md", "Connection settings and durability"): ("serve", "replay"),
    ("schema.md", "Retention"): ("serve", "replay"),
    ("schema.md", "Querying"): ("sql",),
    **{("behaviour.md", h): ("serve",) for h in (
        "Config download", "Intake queue", "Overload signal", "Watchdog report",
        "NATS connection", "Live reload", "Reload endpoint", "Shutdown")},
}
# sections whose flags are those of other programs (docker, pip, the scripts)
OTHER_PROGRAMS = {
    ("README.md", "Quick start"), ("README.md", "Development"),
    ("deployment.md", "Docker"), ("deployment.md", "Backup and disaster recovery"),
    ("deployment.md", "Throughput"),
}
# an inline span that starts with one of these is another program's command line
PROGRAMS = re.compile(r"(docker|pip|python|nats-server|nats|litestream|sqlite3|curl|uv|scripts/)")

FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*(?![\w-]|\.\w)\*?")  # not Prometheus's --web.x
SPAN = re.compile(r"`([^`\n]+)`")
# `dsiem-sql`, global options, a command, and perhaps a subcommand (`db upgrade`)
DSIEM_SQL = re.compile(
    r"(?<![\w/-])dsiem-sql((?:\s+-{1,2}[a-z]+)*)\s+([a-z][a-z-]*)(?:\s+([a-z]+))?")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
BLOCK_START = re.compile(r"^\s*(?:[*-]|\d+\.)\s|^\s*\|")


# -- what the commands accept ------------------------------------------------------------


@cache
def commands() -> dict[str, set[str]]:
    """Every command path ("serve", "db upgrade", "" for the root) -> the long flags its
    `--help` lists."""
    paths = [""]

    def walk(group: Any, prefix: str) -> None:  # a group: it has subcommands
        for name, command in group.commands.items():
            path = f"{prefix}{name}"
            paths.append(path)
            if hasattr(command, "commands"):
                walk(command, path + " ")

    walk(typer.main.get_command(app), "")
    return {path: help_flags(path) for path in paths}


def help_flags(path: str) -> set[str]:
    result = CliRunner().invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    flags: set[str] = set()
    if not path:  # the global options, hidden ones too (`--test-env`)
        for param in typer.main.get_command(app).params:
            flags.update(o for o in param.opts if o.startswith("--"))
    for line in result.output.splitlines():
        stripped = line.strip()
        if stripped.startswith("-"):  # an option's line: its names, two spaces, its help
            flags.update(FLAG.findall(re.split(r"\s{2,}", stripped)[0]))
    return flags


def accepts(command: str, flag: str) -> bool:
    known = commands()[command] | commands()[""]  # global options go before any command
    if flag.endswith("*"):  # `--nats-tls-*`
        return any(f.startswith(flag[:-1]) for f in known)
    return flag in known


# -- what the docs say -------------------------------------------------------------------


@dataclass
class Mention:
    where: str  # file:line
    flag: str
    commands: tuple[str, ...]  # it must exist in each of these...
    any_of: bool = False  # ...or in one of them

    def ok(self) -> bool:
        found = [accepts(c, self.flag) for c in self.commands]
        return any(found) if self.any_of else all(found)

    def __str__(self) -> str:
        how = "any of" if self.any_of else "each of"
        return f"{self.where}: {self.flag} is not a flag of {how} {', '.join(self.commands)}"


@dataclass
class Block:
    """A paragraph, list item or table row, or a code block."""

    file: str
    section: str  # the `##` heading
    line: int
    lines: list[str] = field(default_factory=list)
    code: bool = False
    flag_row: bool = False  # a row of a table of options (table_mentions reads it)


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    section, current, fence, flag_table = "", None, False, False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        row = line.lstrip().startswith("|")
        flag_table = row and (flag_table or line.strip().strip("|").split("|")[0].strip()
                              == "Flag")
        if line.lstrip().startswith("```"):
            fence = not fence
            current = Block(path.name, section, number + 1, code=True) if fence else None
            if fence:
                found.append(current)
            continue
        if fence:
            current.lines.append(line)
            continue
        heading = HEADING.match(line)
        if heading:
            if len(heading.group(1)) <= 2:
                section = heading.group(2)
            current = None
        elif not line.strip():
            current = None
        else:
            if current is None or BLOCK_START.match(line):
                current = Block(path.name, section, number, flag_row=flag_table)
                found.append(current)
            current.lines.append(line)
    return found


def command_of(text: str) -> tuple[str, str] | None:
    """(command path, the rest) of a text that starts a dsiem-sql command line."""
    m = DSIEM_SQL.search(text)
    if m is None:
        return None
    name, sub, rest = m.group(2), m.group(3), text[m.end():]
    if sub and f"{name} {sub}" in commands():
        return f"{name} {sub}", rest
    if sub:
        rest = f"{sub}{rest}"
    if name in commands():
        return name, rest
    return "", f"{name} {rest}"  # `dsiem-sql --help`: the root's options


def command_span(span: str) -> tuple[str, str] | None:
    """A span that is a dsiem-sql command line, or starts with a command and a flag
    (`replay --resume`, `db upgrade --db PATH`)."""
    found = command_of(span)
    if found is not None:
        return found
    for name in sorted(commands(), key=len, reverse=True):
        if name and span.startswith(f"{name} -"):
            return name, span[len(name):]
    return None


def strip_comment(line: str) -> str:
    return re.split(r"\s#\s", line, maxsplit=1)[0]


def mentions(block: Block) -> list[Mention]:
    key = (block.file, block.section)
    out: list[Mention] = []

    def add(line: int, text: str, of: tuple[str, ...], any_of: bool = False) -> None:
        out.extend(Mention(f"{block.file}:{line}", f, of, any_of) for f in FLAG.findall(text))

    if block.code:
        command: str | None = None
        for offset, raw in enumerate(block.lines):
            line = strip_comment(raw)
            if command is not None and raw[:1].isspace():
                add(block.line + offset, line, (command,))  # a continuation line
                continue
            found = command_of(line)
            command = None if found is None else found[0]
            if found is not None:
                add(block.line + offset, found[1], (found[0],))
        return out

    if block.flag_row:
        return out
    text = " ".join(block.lines)
    spans = SPAN.findall(text)
    named = {c for c in commands() if c and c in spans}
    free: list[str] = []
    for span in spans:
        found = command_span(span)
        if found is not None:
            if span.startswith("dsiem-sql"):  # `replay --resume` is a side remark
                named.add(found[0])
            add(block.line, found[1], (found[0],))
        elif not PROGRAMS.match(span):
            free.append(span)
    if key in OTHER_PROGRAMS or not free:
        return out
    if key in SECTIONS:
        section = SECTIONS[key]
        if named:
            add(block.line, " ".join(free), (*section, *sorted(named - set(section))), True)
        else:
            add(block.line, " ".join(free), section)
    else:
        add(block.line, " ".join(free), tuple(c for c in commands() if c), True)
    return out


def table_mentions(path: Path) -> list[Mention]:
    """Tables of options: first column `Flag`, for the command of the last "Options of `X`"
    line above."""
    out: list[Mention] = []
    command = None
    in_table = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        m = re.search(r"Options of `([a-z -]+)`", line)
        if m:
            command = m.group(1)
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0] == "Flag":
            assert command in commands(), f"{path.name}:{number}: a table of flags, but of " \
                "which command? (say `Options of `<command>`` above it)"
            in_table = True
            continue
        if in_table and line.lstrip().startswith("|"):
            out.extend(Mention(f"{path.name}:{number}", f, (command,))
                       for f in FLAG.findall(cells[0]))
        else:
            in_table = False
    return out


def all_mentions() -> list[Mention]:
    found: list[Mention] = []
    for path in DOCS:
        found += table_mentions(path)
        for block in blocks(path):
            found += mentions(block)
    return found


# -- the tests ---------------------------------------------------------------------------


def test_every_flag_the_docs_give_a_command_exists_in_its_help():
    found = all_mentions()
    wrong = [str(m) for m in found if not m.ok()]
    assert not wrong, "\n".join(wrong)


def test_the_checks_cover_what_they_must():
    """The flags of serve's sections in deployment.md and of the README's replay table are
    read, with the commands they belong to."""
    found = all_mentions()
    serve_flags = {m.flag for m in found
                   if m.where.startswith("deployment.md") and m.commands == ("serve",)}
    assert {"--frontend-timeout", "--max-config-size", "--commit-interval", "--db-sync",
            "--db-retry-window", "--metrics-host", "--js-max-bytes", "--nats-tls-*",
            "--max_queue"} <= serve_flags
    replay_table = {m.flag for m in found if m.where.startswith("README.md")
                    and m.commands == ("replay",)}
    assert {"--commit-changes", "--resume", "--final-sweep", "--no-final-sweep",
            "--med_risk_min"} <= replay_table
    sql = {m.flag for m in found if m.commands == ("sql",)}
    assert {"--format", "--timeout", "--db"} <= sql


@pytest.mark.parametrize("text, flag, command, ok", [
    ("dsiem-sql serve --node x \\\n  --commit-changes 10", "--commit-changes", "serve", False),
    ("dsiem-sql replay --commit-changes 10 FILE", "--commit-changes", "replay", True),
    ("dsiem-sql -v serve --expiry-interval 5", "--expiry-interval", "serve", False),
    ("dsiem-sql db upgrade --db PATH", "--db", "db upgrade", True),
])
def test_a_command_line_in_a_code_block(text, flag, command, ok):
    block = Block("x.md", "", 1, text.splitlines(), code=True)
    [mention] = [m for m in mentions(block) if m.flag == flag]
    assert mention.commands == (command,)
    assert mention.ok() is ok


def test_a_flag_of_a_serve_section_that_serve_lacks_is_found():
    block = Block("deployment.md", "Swapping a backend", 1,
                  ["* expiry every `--expiry-interval` s; commits after `--commit-changes`"])
    assert [str(m) for m in mentions(block) if not m.ok()] == [
        "deployment.md:1: --expiry-interval is not a flag of each of serve",
        "deployment.md:1: --commit-changes is not a flag of each of serve",
    ]
    other = Block("deployment.md", "Docker", 1, ["then the wheel with `--no-deps`"])
    assert mentions(other) == []

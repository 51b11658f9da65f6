"""The tables the commands print (`sql`, the summaries of `replay` and `import-backlogs`):
one renderer, rich, in plain ASCII.

A table fits the terminal (or `COLUMNS`), folding long values over several lines, never
cutting them; piped elsewhere it is as wide as its values. Colour only on a terminal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from dsiem_sql.legacy.importer import FileResult

UNLIMITED = 1_000_000  # characters per line


def new_table(
    columns: Iterable[str],
    right: Iterable[str] = (),
    title: str | None = None,
    show_header: bool = True,
) -> Table:
    """A table with these columns, left-justified but for those in `right`."""
    right = set(right)
    table = Table(box=box.ASCII, title=title, show_header=show_header)
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", overflow="fold")
    return table


def add_row(table: Table, *values: Any) -> None:
    """A row of values shown as `str` shows them (None as nothing), never read as markup."""
    table.add_row(*(Text("" if v is None else str(v)) for v in values))


def print_table(table: Table) -> None:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.size = (UNLIMITED, console.height)  # both, or rich assumes 80 for TERM=dumb
    console.print(table)


def print_summary(rows: Iterable[tuple[str, Any]]) -> None:
    """(name, value) rows as a two-column table without a header."""
    table = new_table(("name", "value"), right=("value",), show_header=False)
    for name, value in rows:
        add_row(table, name, value)
    print_table(table)


def print_import(results: list[FileResult], dry_run: bool) -> None:
    """The outcome of `import-backlogs`: a row a file, and the totals."""
    counts = ("backlogs", "imported", "already present", "skipped")
    table = new_table(("file", *counts, "result"), right=counts,
                      title="dry run: nothing written" if dry_run else None)
    for r in results:
        outcome = r.error or ("; ".join(f"{n} {why}" for why, n in r.skipped.items()) or "ok")
        add_row(table, r.path, r.backlogs, r.imported, r.present, sum(r.skipped.values()),
                outcome)
    add_row(table, "total", sum(r.backlogs for r in results),
            sum(r.imported for r in results), sum(r.present for r in results),
            sum(sum(r.skipped.values()) for r in results),
            f"{sum(1 for r in results if r.error)} files failed")
    print_table(table)


def print_rows(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """A query's rows as a table, and how many there are."""
    table = new_table(columns)
    for row in rows:
        add_row(table, *row)
    print_table(table)
    print(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")


def echo_rows(columns: list[str], rows: list[tuple[Any, ...]], format: str) -> None:
    """A query's rows as `print_rows` shows them (`table`), or as JSON or CSV."""
    from dsiem_sql.store.query import format_rows

    if format == "table":
        print_rows(columns, rows)
    else:
        print(format_rows(columns, rows, format), end="")

"""The tables the commands print (`sql`, the summaries of `replay` and `import-backlogs`):
one renderer, rich, in plain ASCII.

A table fits the terminal (or `COLUMNS`), folding long values over several lines, never
cutting them; piped elsewhere it is as wide as its values. Colour only on a terminal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

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

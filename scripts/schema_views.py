#!/usr/bin/env python
"""Write the views of docs/schema.md (the part between its two `views:` markers) from their
descriptions in dsiem_sql/console/metadata.py, where they are kept for the console too.
tests/unit/test_console_metadata.py fails until this has been run after a change.

    .venv/bin/python scripts/schema_views.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from dsiem_sql.console.metadata import views_markdown

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schema.md"
BEGIN = "<!-- views: written by scripts/schema_views.py from dsiem_sql/console/metadata.py -->"
END = "<!-- views: end -->"


def updated(text: str) -> str:
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        sys.exit(f"{SCHEMA}: the markers {BEGIN!r} and {END!r} are not both there")
    return f"{head}{BEGIN}\n\n{views_markdown()}\n{END}{tail}"


if __name__ == "__main__":
    text = SCHEMA.read_text()
    new = updated(text)
    if new != text:
        SCHEMA.write_text(new)
        print(f"{SCHEMA}: views written")
    else:
        print(f"{SCHEMA}: views up to date")

"""Logging set-up: plain text, or JSON lines with `timestamp`, `level`, `fields`, `target`."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    """SPEC §12.1: structured values go under `fields`, next to the message."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname,
                "fields": {"message": record.getMessage(), **getattr(record, "fields", {})},
                "target": record.name.replace(".", "::"),
            }
        )


class PlainFormatter(logging.Formatter):
    """`<time> <LEVEL> <target>: <message> key=value ...`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)5s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


def setup_logging(level: int, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

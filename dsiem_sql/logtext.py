"""Values from events and configs made safe to log: one line, bounded length. Pure."""

from __future__ import annotations

import re

SHOWN_CHARS = 200

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional
# overrides (which reorder what a terminal shows)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escaped(text: str) -> str:
    """`text` with its control characters written as escapes (`\\n`, `\\x1b`, `\\u2028`)."""
    return _CONTROL.sub(_escape, text)


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """`value` as text, cut after `limit` characters with a note of how many were left out."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit} chars)"

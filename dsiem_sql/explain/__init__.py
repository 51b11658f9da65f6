"""`dsiem-sql explain` (docs/explain.md): why an alarm fired or did not.

* `backlog.py`: a stored backlog (alarm) of a database, read-only, also while serve writes:
  its directive version, each stage with its events, the risk and how it was computed, what
  the current stage waits for, how the backlog ended.
* `event.py`: one event against every stage of a directive: which stages its rule matches,
  and for the others the first field that refuses it (the words of `engine/explain.py`).
* `render.py`: both reports as text for a terminal, or as JSON.

Each report is a plain dict, the JSON form; the text is made from it.
"""

from __future__ import annotations


class ExplainError(Exception):
    """Nothing to explain; the message says what is missing and where."""


__all__ = ["ExplainError"]

"""Suppressions in the database (table `suppression_entries`, view `suppressions`): adding,
removing (kept as a record), and those in force for the engine. Their hits are written by
the commits (`store.HITS`)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from dsiem_sql.engine.suppressions import Suppression, network

INSERT = ("INSERT INTO suppression_entries (directive_id, src, dst, custom_data, reason, "
          "added_by, created, expires, hits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)")
IN_FORCE = ("SELECT id, directive_id, src, dst, custom_data, expires FROM suppression_entries "
            "WHERE removed IS NULL ORDER BY id")


@dataclass(frozen=True)
class NewSuppression:
    """What `dsiem-sql suppress add` asks for, checked."""

    directive_id: int | None
    src: str | None  # a network, as 10.0.0.0/8
    dst: str | None
    custom_data: str | None
    reason: str
    added_by: str
    expires: int | None  # epoch seconds; None: permanent

    def suppression(self, suppression_id: int) -> Suppression:
        return Suppression(suppression_id, self.directive_id,
                           network(self.src) if self.src else None,
                           network(self.dst) if self.dst else None,
                           self.custom_data, self.expires)

    def scope(self) -> str:
        parts = [f"directive {self.directive_id}" if self.directive_id is not None
                 else "every directive"]
        parts += [f"from {self.src}" if self.src else "from any source",
                  f"to {self.dst}" if self.dst else "to any destination"]
        if self.custom_data is not None:
            parts.append(f"custom data {self.custom_data!r}")
        return ", ".join(parts)


def insert(con: sqlite3.Connection, new: NewSuppression, created: int) -> int:
    cursor = con.execute(INSERT, (new.directive_id, new.src, new.dst, new.custom_data,
                                  new.reason, new.added_by, created, new.expires))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def remove(con: sqlite3.Connection, suppression_id: int, now: int) -> bool:
    """Mark it removed; False if there is no such suppression in force."""
    cursor = con.execute("UPDATE suppression_entries SET removed = ? WHERE id = ? AND removed "
                         "IS NULL", (now, suppression_id))
    return cursor.rowcount == 1


def in_force(rows: list[sqlite3.Row] | list[tuple]) -> list[Suppression]:
    """The rows of `IN_FORCE` as the engine's suppressions (expired ones too: the engine
    drops them by its own clock); ValueError naming a row that holds no network."""
    found = []
    for i, d, src, dst, custom_data, expires in rows:
        try:
            found.append(Suppression(i, d, network(src) if src else None,
                                     network(dst) if dst else None, custom_data, expires))
        except ValueError as exc:
            raise ValueError(f"suppression {i}: {exc}") from None
    return found

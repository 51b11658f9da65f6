"""Routes an event to the directives that could match it (SPEC §4.11, [R] OR semantics).

A directive is reached through any of its rules' (plugin_id, plugin_sid) or
(product, category) pairs, so the cost per event does not grow with the directive count.
"""

from __future__ import annotations

from collections import defaultdict

from dsiem_sql.engine.event import Event
from dsiem_sql.engine.state import Directive


class DirectiveIndex:
    def __init__(self, directives: list[Directive]):
        by_sid: dict[tuple[int, int], list[Directive]] = defaultdict(list)
        by_taxonomy: dict[tuple[str, str], list[Directive]] = defaultdict(list)
        for d in directives:
            for r in d.rules:
                if r.plugin_id and r.plugin_sid:
                    for sid in r.plugin_sid:
                        _add(by_sid[(r.plugin_id, sid)], d)
                if r.product and r.category:
                    for product in r.product:
                        _add(by_taxonomy[(product, r.category)], d)
        self.by_sid = dict(by_sid)
        self.by_taxonomy = dict(by_taxonomy)

    def lookup(self, e: Event) -> list[Directive]:
        """Directives in load order whose quick check passes for `e`."""
        by_sid = self.by_sid.get((e.plugin_id, e.plugin_sid), []) if e.plugin_sid else []
        by_taxonomy = (
            self.by_taxonomy.get((e.product, e.category), []) if e.product and e.category else []
        )
        if by_sid and by_taxonomy:
            return sorted({*by_sid, *by_taxonomy}, key=lambda d: d.position)
        return by_sid or by_taxonomy


def _add(bucket: list[Directive], d: Directive) -> None:
    if not bucket or bucket[-1] is not d:
        bucket.append(d)

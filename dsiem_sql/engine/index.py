"""Routes an event to the directives that could match it, and within a directive to the live
backlogs that could take it (docs/behaviour.md, "Directive index").

A directive is reached through any of its rules' (plugin_id, plugin_sid) or
(product, category) pairs (dsiem-rs's OR), and a backlog through the literal address its
current stage requires, so the cost per event grows neither with the directives nor with the
backlogs.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from heapq import merge
from typing import TYPE_CHECKING

from dsiem_sql.engine.event import Event
from dsiem_sql.engine.matching import literal_ip

if TYPE_CHECKING:
    from dsiem_sql.engine.rules import Rule
    from dsiem_sql.engine.state import Backlog, Directive


class DirectiveIndex:
    """Directives by (plugin_id, plugin_sid) and by (product, category), each bucket in load
    order (`Directive.position`).

    A directive is filed under the keys of its rules, and also under those of the older
    definitions its live backlogs still run (`add`), so that a reload or a restart never cuts
    a live backlog off from its events; `remove` takes a directive out.
    """

    def __init__(self, directives: list[Directive]):
        self.by_sid: dict[tuple[int, int], list[Directive]] = {}
        self.by_taxonomy: dict[tuple[str, str], list[Directive]] = {}
        self._keys: dict[Directive, set[tuple[bool, tuple]]] = {}  # (by sid?, key)
        for d in directives:
            self.add(d, d.rules)

    def add(self, d: Directive, rules: Iterable[Rule]) -> None:
        """File `d` under the keys of `rules` it is not filed under yet."""
        keys = self._keys.setdefault(d, set())
        for r in rules:
            if r.plugin_id and r.plugin_sid:
                for sid in r.plugin_sid:
                    _file(self.by_sid, (r.plugin_id, sid), d, keys, True)
            if r.product and r.category:
                for product in r.product:
                    _file(self.by_taxonomy, (product, r.category), d, keys, False)

    def remove(self, d: Directive) -> None:
        for by_sid, key in self._keys.pop(d, ()):
            index: dict = self.by_sid if by_sid else self.by_taxonomy
            bucket = index[key]
            bucket.remove(d)
            if not bucket:
                del index[key]

    def lookup(self, e: Event) -> list[Directive]:
        """Directives in load order whose quick check passes for `e`."""
        by_sid = self.by_sid.get((e.plugin_id, e.plugin_sid), []) if e.plugin_sid else []
        by_taxonomy = (
            self.by_taxonomy.get((e.product, e.category), []) if e.product and e.category else []
        )
        if by_sid and by_taxonomy:
            return sorted({*by_sid, *by_taxonomy}, key=lambda d: d.position)
        return by_sid or by_taxonomy


def _file(index: dict, key: tuple, d: Directive, keys: set[tuple[bool, tuple]],
          by_sid: bool) -> None:
    if (by_sid, key) in keys:
        return
    keys.add((by_sid, key))
    bucket = index.setdefault(key, [])
    if bucket and bucket[-1].position > d.position:
        insort(bucket, d, key=_position)
    else:
        bucket.append(d)


def _position(d: Directive) -> int:
    return d.position


def _seq(b: Backlog) -> int:
    return b.seq


class LiveBacklogs:
    """A directive's live backlogs, in creation order, found by the literal address that
    their current stage requires, so that an event reaches only the backlogs that could take
    it: a flood of backlogs waiting for `from: ":1"` costs each event one dictionary lookup.

    A backlog whose current rule has a literal source address (a resolved `:1`, or an
    address in the directive) is filed under it; else one with a literal destination under
    that; the others (ANY, HOME_NET, CIDRs, lists, negations, and every backlog of an
    `all_rules_always_active` directive, which any stage may take) are offered every event.
    `used` tells whether a live backlog holds an event id.
    """

    __slots__ = ("_all", "_by_dst", "_by_src", "_filed", "_others", "_used")

    def __init__(self) -> None:
        self._all: dict[str, Backlog] = {}
        self._by_src: dict[str, list[Backlog]] = {}
        self._by_dst: dict[str, list[Backlog]] = {}
        self._others: list[Backlog] = []
        # backlog id -> (the index it is filed in, or None for the others; key; its list)
        self._filed: dict[str, tuple[dict[str, list[Backlog]] | None, str, list[Backlog]]] = {}
        self._used: dict[str, int] = {}  # event id -> live backlogs holding it

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[Backlog]:
        return iter(self._all.values())

    def add(self, b: Backlog) -> None:
        self._all[b.id] = b
        self._file(b)
        for event_id in b.event_ids:
            self.hold(event_id)

    def remove(self, b: Backlog) -> None:
        del self._all[b.id]
        self._unfile(b)
        used = self._used
        for event_id in b.event_ids:
            if used[event_id] == 1:
                del used[event_id]
            else:
                used[event_id] -= 1

    def refile(self, b: Backlog) -> None:
        """After `b` moved to its next stage."""
        self._unfile(b)
        self._file(b)

    def hold(self, event_id: str) -> None:
        """A live backlog took `event_id` for the first time."""
        self._used[event_id] = self._used.get(event_id, 0) + 1

    def used(self, event_id: str) -> bool:
        return event_id in self._used

    def candidates(self, e: Event) -> list[Backlog]:
        """The backlogs that could take `e`, in creation order."""
        parts = [p for p in (self._by_src.get(e.src_ip), self._by_dst.get(e.dst_ip),
                             self._others) if p]
        if len(parts) > 1:
            return list(merge(*parts, key=_seq))
        return list(parts[0]) if parts else []

    def _file(self, b: Backlog) -> None:
        rule = b.current.rule
        index: dict[str, list[Backlog]] | None = None
        key = ""
        if b.definition.all_rules_always_active:
            pass
        elif (src := literal_ip(rule.from_)) is not None:
            index, key = self._by_src, src
        elif (dst := literal_ip(rule.to)) is not None:
            index, key = self._by_dst, dst
        bucket = self._others if index is None else index.setdefault(key, [])
        if bucket and bucket[-1].seq > b.seq:
            insort(bucket, b, key=_seq)
        else:
            bucket.append(b)
        self._filed[b.id] = (index, key, bucket)

    def _unfile(self, b: Backlog) -> None:
        index, key, bucket = self._filed.pop(b.id)
        bucket.pop(bisect_left(bucket, b.seq, key=_seq))
        if not bucket and index is not None:
            del index[key]

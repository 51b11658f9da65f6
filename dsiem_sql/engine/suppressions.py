"""Suppressions: known-noisy sources silenced for a directive (or all), for a while
(docs/behaviour.md, "Suppressions").

An event in a suppression's scope neither opens nor advances a backlog of that directive. The
scope: a directive id or every directive; a source and/or destination network; optionally a
custom data value (any of `custom_data1..3`, compared without case). A suppression applies
until it expires by the engine's clock (event time in `replay` and `test`, wall time in
`serve`).

The lookup does not scan the suppressions: they are filed by directive, then by the network
of their source (else destination), one dict per prefix length, so that an event costs a
dict lookup per prefix length in use.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from dsiem_sql.config.netparse import IPNetwork, NetNumber, ip_number, net_number

Net = IPNetwork


@dataclass(frozen=True)
class Suppression:
    id: int
    directive_id: int | None  # None: every directive
    src: Net | None = None
    dst: Net | None = None
    custom_data: str | None = None
    expires: int | None = None  # epoch seconds by the engine's clock; None: permanent

    def covers(self, src_ip: str, dst_ip: str, custom_data: tuple[str, str, str]) -> bool:
        return (_within(src_ip, self.src) and _within(dst_ip, self.dst)
                and (self.custom_data is None
                     or self.custom_data.lower() in (c.lower() for c in custom_data)))

    def active(self, now: int) -> bool:
        return self.expires is None or now < self.expires


def _within(ip: str, net: Net | None) -> bool:
    if net is None:
        return True
    number = ip_number(ip)
    version, network, mask = net_number(net)
    return number is not None and number[0] == version and number[1] & mask == network


_number = lru_cache(maxsize=65536)(ip_number)  # events' addresses repeat
_MASKS = {v: [((1 << p) - 1) << (bits - p) for p in range(bits + 1)]
          for v, bits in ((4, 32), (6, 128))}


@dataclass
class _Bucket:
    """The suppressions of one directive (or of all): by the network their source, else
    their destination, is in; the rest (custom data only, or none) in `others`."""

    by_src: dict[tuple[int, int], dict[int, list[Suppression]]] = field(
        default_factory=lambda: defaultdict(dict))  # (version, prefix) -> network -> ...
    by_dst: dict[tuple[int, int], dict[int, list[Suppression]]] = field(
        default_factory=lambda: defaultdict(dict))
    others: list[Suppression] = field(default_factory=list)

    def add(self, s: Suppression) -> None:
        net, index = (s.src, self.by_src) if s.src is not None else (s.dst, self.by_dst)
        if net is None:
            self.others.append(s)
            return
        version, network, _ = net_number(net)
        index[(version, net.prefixlen)].setdefault(network, []).append(s)

    def candidates(self, src_ip: str, dst_ip: str) -> list[Suppression]:
        found = self.others
        for ip, index in ((src_ip, self.by_src), (dst_ip, self.by_dst)):
            if not index:
                continue
            number = _number(ip)
            if number is None:
                continue
            version, value = number
            for (v, prefix), networks in index.items():
                if v == version:
                    hit = networks.get(value & _MASKS[v][prefix])
                    if hit:
                        found = found + hit
        return found


class Suppressions:
    """The suppressions in force."""

    def __init__(self, items: list[Suppression] | None = None):
        self._items: dict[int, Suppression] = {}
        self._buckets: dict[int | None, _Bucket] = {}
        # every suppression, whatever its directive: one lookup an event tells whether any
        # could hold it, before a lookup for each directive the event reaches
        self._all = _Bucket()
        for s in items or ():
            self.add(s)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self):
        return iter(self._items.values())

    def add(self, s: Suppression) -> None:
        if s.id in self._items:
            self.remove(s.id)
        self._items[s.id] = s
        self._buckets.setdefault(s.directive_id, _Bucket()).add(s)
        self._all.add(s)

    def remove(self, suppression_id: int) -> bool:
        """Drop a suppression; False if there was none with that id."""
        if self._items.pop(suppression_id, None) is None:
            return False
        self._rebuild()
        return True

    def expire(self, now: int) -> list[int]:
        """Drop the suppressions expired by `now`; their ids."""
        gone = [s.id for s in self._items.values() if not s.active(now)]
        if gone:
            for i in gone:
                del self._items[i]
            self._rebuild()
        return gone

    def _rebuild(self) -> None:
        self._buckets = {}
        self._all = _Bucket()
        for s in self._items.values():
            self._buckets.setdefault(s.directive_id, _Bucket()).add(s)
            self._all.add(s)

    def could_hold(self, src_ip: str, dst_ip: str) -> bool:
        """Whether any suppression's addresses could hold an event from `src_ip` to
        `dst_ip`, for some directive (without addresses, any could)."""
        return bool(self._all.candidates(src_ip, dst_ip))

    def suppressing(self, directive_id: int, src_ip: str, dst_ip: str,
                    custom_data: tuple[str, str, str], now: int) -> Suppression | None:
        """The first suppression in force at `now` whose scope holds this event for this
        directive, or None."""
        for key in (directive_id, None):
            bucket = self._buckets.get(key)
            if bucket is None:
                continue
            found = bucket.candidates(src_ip, dst_ip)
            for s in sorted(found, key=_by_id) if len(found) > 1 else found:
                if s.active(now) and s.covers(src_ip, dst_ip, custom_data):
                    return s
        return None


def _by_id(s: Suppression) -> int:
    return s.id


def network(text: str) -> Net:
    """An address or a CIDR as a network; ValueError naming what is wrong."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or a CIDR like 10.0.0.0/8") from None


__all__ = ["NetNumber", "Suppression", "Suppressions", "network"]

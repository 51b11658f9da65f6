"""Backlog state and the state changes the engine reports to its shell."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any, NamedTuple

from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.engine.index import LiveBacklogs
from dsiem_sql.engine.rules import FirstEvent, Rule

LIVE, FINISHED, EXPIRED = "live", "finished", "expired"


@dataclass(eq=False)
class Directive:
    """A loaded directive: its compiled template rules and its live backlogs.

    A reload that changes the directive gives it its new `config` and `rules`, for the
    backlogs it opens from then on; its live backlogs keep running on the definition and
    rules they started with (`Backlog.definition`, `Stage.rule`). A reload that removes it
    makes it `retired`: it opens no backlog, and is dropped when its last live one ends.
    """

    config: DirectiveConfig
    rules: tuple[Rule, ...]
    position: int
    backlogs: LiveBacklogs = field(default_factory=LiveBacklogs, repr=False)
    retired: bool = False

    @classmethod
    def from_config(cls, config: DirectiveConfig, position: int) -> Directive:
        return cls(config, tuple(Rule.from_config(r) for r in config.rules), position)

    @property
    def id(self) -> int:
        return self.config.id


class _NoValues(dict):
    """The one empty dict that stages share until they hold a value (a flood's backlogs
    wait with two stages not opened yet): replace it with a dict of your own first."""

    __hash__ = object.__hash__  # type: ignore[assignment]  # allowed as a dataclass default

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("NO_VALUES is shared: give the stage a dict of its own first")


NO_VALUES: dict[Any, None] = _NoValues()


@dataclass(eq=False, slots=True)
class Stage:
    """A backlog's copy of one rule with its runtime state.

    `rule` is the directive's rule until the stage opens; from then on it is the effective
    rule, with references replaced by the values they point at.
    """

    rule: Rule
    resolved: bool = False
    event_ids: dict[str, None] = NO_VALUES
    sticky: dict[Any, None] = NO_VALUES
    start_time: int = 0
    end_time: int = 0
    status: str = ""
    first_event: FirstEvent | None = None

    @property
    def number(self) -> int:
        return self.rule.stage


@dataclass(eq=False, slots=True)
class Backlog:
    """A running instance of a directive.

    `definition` is the directive as it was when the backlog started; `seq` orders backlogs
    by creation, which decides processing and expiry order.
    """

    id: str
    seq: int
    directive: Directive = field(repr=False)
    definition: DirectiveConfig = field(repr=False)
    title: str
    status: str
    tag: str
    stages: list[Stage]
    current_stage: int = 1
    risk: int = 0
    risk_class: str = ""
    src_ips: dict[str, None] = field(default_factory=dict)
    dst_ips: dict[str, None] = field(default_factory=dict)
    networks: dict[str, None] = field(default_factory=dict)
    custom_data: dict[tuple[str, str], None] = field(default_factory=dict)
    intel_hits: dict[tuple[str, str, str], None] = field(default_factory=dict)
    vulnerabilities: dict[tuple[str, str, str], None] = field(default_factory=dict)
    created_time: int = 0
    update_time: int = 0
    last_srcport: int = 0
    last_dstport: int = 0
    # every (address, port) seen with a non-zero port, as `ip:port` / `[ipv6]:port`: the
    # vulnerability search terms, as dsiem-rs takes them (docs/behaviour.md, "Enrichment")
    src_sockets: dict[str, None] = field(default_factory=dict)
    dst_sockets: dict[str, None] = field(default_factory=dict)
    state: str = LIVE
    ended_time: int | None = None
    event_ids: set[str] = field(default_factory=set)

    @property
    def current(self) -> Stage:
        return self.stages[self.current_stage - 1]

    @property
    def highest_stage(self) -> int:
        return len(self.stages)

    @property
    def deadline(self) -> int:
        """Event time after which the current stage has timed out (docs/behaviour.md,
        "Stage times", "Expiry")."""
        cur = self.current
        return cur.start_time + cur.rule.timeout

    @property
    def previous_end(self) -> int:
        """Latest end time of the stages before the current one (docs/behaviour.md,
        "Out-of-order events")."""
        previous = self.stages[: self.current_stage - 1]
        return max([s.end_time for s in previous]) if previous else 0

    def ips(self) -> chain[str]:
        return chain(self.src_ips, self.dst_ips)


class EventLink(NamedTuple):
    """An event counted in a backlog stage: its `siem_alarm_events.json` record (the first
    three fields), and the event's time (whole epoch seconds), addresses and ports, which the
    store keeps for `dsiem-sql explain`."""

    alarm_id: str
    stage: int
    event_id: str
    event_time: int
    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int


@dataclass(slots=True)
class Changes:
    """What processing an event (or an expiry sweep) changed.

    `backlogs` holds every backlog that was opened, changed or ended, in its state after the
    change; `links` and `alarms` are the output records, in the order they were produced;
    `lookups` the backlogs whose alarm wants intel and vulnerability lookups;
    `next_seq` the engine's backlog counter after the last backlog opened (0: none opened).
    """

    backlogs: dict[str, Backlog] = field(default_factory=dict)
    links: list[EventLink] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)
    lookups: dict[str, Backlog] = field(default_factory=dict)
    next_seq: int = 0
    # suppression id -> (events it kept from a directive, the time of the last one)
    suppression_hits: dict[int, tuple[int, int]] = field(default_factory=dict)

    def touch(self, backlog: Backlog) -> None:
        self.backlogs[backlog.id] = backlog

    def extend(self, other: Changes) -> None:
        self.backlogs.update(other.backlogs)
        self.links.extend(other.links)
        self.alarms.extend(other.alarms)
        self.lookups.update(other.lookups)
        self.next_seq = max(self.next_seq, other.next_seq)
        for i, (hits, last) in other.suppression_hits.items():
            before, _ = self.suppression_hits.get(i, (0, 0))
            self.suppression_hits[i] = (before + hits, last)

    def __bool__(self) -> bool:
        return bool(self.backlogs or self.links or self.alarms or self.suppression_hits)

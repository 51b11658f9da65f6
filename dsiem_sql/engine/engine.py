"""The correlation engine: pure, synchronous, deterministic (docs/behaviour.md, from
"Backlogs of a directive" to "Alarm-event lines").

The engine does no I/O. It reads the time from an injected clock, and every call returns the
`Changes` it made, which the shell persists and writes out.
"""

from __future__ import annotations

import heapq
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Literal

from dsiem_sql import defaults
from dsiem_sql.config.loader import Config
from dsiem_sql.engine.alarm import render_alarm, resolve_references
from dsiem_sql.engine.event import Event
from dsiem_sql.engine.index import DirectiveIndex
from dsiem_sql.engine.rules import FirstEvent, Rule
from dsiem_sql.engine.state import (
    EXPIRED,
    FINISHED,
    LIVE,
    NO_VALUES,
    Backlog,
    Changes,
    Directive,
    EventLink,
    Stage,
)
from dsiem_sql.engine.suppressions import Suppressions
from dsiem_sql.logtext import shown

log = logging.getLogger(__name__)

ADDRESS_KEYWORDS = ("ANY", "HOME_NET", "!HOME_NET")
_ID_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_ID_TABLE = bytes(_ID_ALPHABET[b & 63] for b in range(256))


class _RandomIds:
    """Random 9-character nanoids (alphabet A-Za-z0-9_-), as Dsiem uses, cut from a pool of
    random bytes: one system call for 4096 ids (it gives up the interpreter lock, which
    another thread may then hold for a while)."""

    def __init__(self) -> None:
        self.pool = b""

    def __call__(self) -> str:
        if not self.pool:
            self.pool = os.urandom(9 * 4096).translate(_ID_TABLE)
        chunk, self.pool = self.pool[:9], self.pool[9:]
        return chunk.decode("ascii")


new_alarm_id = _RandomIds()


def wall_clock() -> int:
    return int(time.time())


@dataclass(frozen=True)
class EngineOptions:
    reference_mode: Literal["value", "rule"] = defaults.REFERENCE_MODE
    min_alarm_lifetime: int = defaults.MIN_ALARM_LIFETIME  # minutes
    status: str = defaults.STATUS.split(",")[0]
    tag: str = defaults.TAGS.split(",")[0]
    med_risk_min: int = defaults.MED_RISK_MIN
    med_risk_max: int = defaults.MED_RISK_MAX
    match_protocol: bool = False
    taxonomy_custom_data: bool = False


@dataclass
class Stats:
    events: int = 0
    whitelisted: int = 0
    matched: int = 0
    backlogs_opened: int = 0
    alarms: int = 0
    alarm_lines: int = 0
    expired: int = 0
    finished: int = 0
    suppressed: dict[int, int] = field(default_factory=dict)  # directive id -> events kept


@dataclass(frozen=True)
class CompiledConfig:
    """A loaded config with its directives compiled: pure work that a reload does before it
    hands the result to the engine (on another thread, so that intake goes on meanwhile)."""

    config: Config
    directives: tuple[Directive, ...]

    @classmethod
    def of(cls, config: Config) -> CompiledConfig:
        return cls(config, tuple(Directive.from_config(d, i)
                                 for i, d in enumerate(config.directives)))


@dataclass(frozen=True)
class Reloaded:
    """What `Engine.reload` changed. `retired`: directives no longer in the config that
    still run live backlogs; `older`: live backlogs that run an earlier definition of their
    directive (both until those backlogs end)."""

    directives: int
    added: int
    changed: int
    removed: int
    retired: int
    older: int


def risk_of(priority: int, reliability: int, value: int) -> int:
    """The risk of a backlog (docs/behaviour.md, "Risk"): the directive's priority, the
    reliability of the stage that just finished, the highest asset value of its addresses;
    integer division, unbounded."""
    return priority * reliability * value // 25


def risk_class(risk: int, med_min: int, med_max: int) -> str:
    if risk < med_min:
        return "Low"
    return "Medium" if risk <= med_max else "High"


class Engine:
    def __init__(
        self,
        config: Config,
        options: EngineOptions | None = None,
        clock: Callable[[], int] = wall_clock,
        new_id: Callable[[], str] = new_alarm_id,
    ):
        self.assets = config.assets
        self.options = options or EngineOptions()
        self.clock = clock
        self.new_id = new_id
        self.directives = list(CompiledConfig.of(config).directives)
        self.index = DirectiveIndex(self.directives)
        self._by_id = {d.id: d for d in self.directives}
        # directives a reload removed, while they run live backlogs; by id
        self._retired: dict[int, Directive] = {}
        self._drained: list[Directive] = []  # retired ones whose last backlog ended
        self.backlogs: dict[str, Backlog] = {}
        self.stats = Stats()
        self._deadlines: list[tuple[int, int, int, Backlog]] = []
        self._absences: list[tuple[int, int, Backlog]] = []  # (deadline, seq, backlog)
        self._pushes = count()
        self.next_seq = 1
        self._match_args = (self.options.match_protocol, self.options.taxonomy_custom_data)
        self.suppressions = Suppressions()

    # -- entry points ---------------------------------------------------------------------

    def process(self, e: Event, into: Changes | None = None) -> Changes:
        """Correlate one valid event against every directive that can match it.

        The changes are added to `into` when given (to batch several events), else to a new
        `Changes`; either way it is returned.
        """
        changes = Changes() if into is None else into
        self.stats.events += 1
        if self.assets.is_whitelisted(e.src_ip):
            self.stats.whitelisted += 1
            log.debug("src_ip %s is whitelisted, skipping event", e.src_ip)
            return changes
        matched = False
        suppressed = bool(self.suppressions) and self.suppressions.could_hold(e.src_ip, e.dst_ip)
        for d in self.index.lookup(e):
            if suppressed and self._suppressed(d, e, changes):
                continue
            matched = self._dispatch(d, e, changes) or matched
        if matched:
            self.stats.matched += 1
        return changes

    def _suppressed(self, d: Directive, e: Event, changes: Changes) -> bool:
        """Whether a suppression keeps `e` from `d` (docs/behaviour.md, "Suppressions")."""
        s = self.suppressions.suppressing(d.id, e.src_ip, e.dst_ip, (
            e.custom_data1, e.custom_data2, e.custom_data3), self.clock())
        if s is None:
            return False
        self.stats.suppressed[d.id] = self.stats.suppressed.get(d.id, 0) + 1
        hits, _ = changes.suppression_hits.get(s.id, (0, 0))
        changes.suppression_hits[s.id] = (hits + 1, self.clock())
        return True

    def expire(self, into: Changes | None = None) -> Changes:
        """End every backlog whose current stage timed out by now (docs/behaviour.md,
        "Expiry")."""
        changes = Changes() if into is None else into
        if self.suppressions:
            self.suppressions.expire(self.clock())
        if self._drained:
            self._drop_drained()
        now = self.clock()
        heap = self._deadlines
        while heap and heap[0][0] < now:
            due, _, _, b = heapq.heappop(heap)
            if b.state == LIVE and self._due(b) == due:
                self._past_due(b, changes)
        return changes

    def enrich(
        self,
        b: Backlog,
        intel: list[tuple[str, str, str]],
        vulnerabilities: list[tuple[str, str, str]],
        into: Changes | None = None,
    ) -> Changes:
        """Merge lookup results into the alarm; a new alarm line when anything was new. The
        backlog may have ended meanwhile: its alarm is still updated (docs/behaviour.md,
        "Enrichment")."""
        changes = Changes() if into is None else into
        new = False
        for records, found in ((b.intel_hits, intel), (b.vulnerabilities, vulnerabilities)):
            for record in found:
                if record not in records:
                    records[record] = None
                    new = True
        if new:
            self._update_alarm(b, changes)
        return changes

    def next_absence(self) -> int | None:
        """The earliest deadline of an absence stage that waits: the engine clock's time after
        which `expire` completes it (the shell's sweep on the wall clock wakes up for it)."""
        heap = self._absences
        while heap:
            deadline, _, b = heap[0]
            if b.state == LIVE and b.current.rule.absent and b.deadline == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def directive(self, directive_id: int) -> Directive | None:
        return self._by_id.get(directive_id)

    def resume(self, backlogs: list[Backlog], next_seq: int) -> None:
        """Take back the live backlogs and the backlog counter saved earlier."""
        self.next_seq = max(self.next_seq, next_seq)
        routed: set[int] = set()  # the definitions (alive in `backlogs`) already indexed
        for b in backlogs:
            self.restore(b, routed)

    def restore(self, b: Backlog, routed: set[int] | None = None) -> None:
        """Take back a live backlog saved earlier (its directive must be loaded). It keeps
        its own definition: the index also routes to it the events of that definition."""
        d = b.directive
        d.backlogs.add(b)
        if b.definition is not d.config and (routed is None or id(b.definition) not in routed):
            self.index.add(d, [s.rule for s in b.stages])
            if routed is not None:
                routed.add(id(b.definition))
        self.backlogs[b.id] = b
        self.next_seq = max(self.next_seq, b.seq + 1)
        self._watch_deadline(b)

    def reload(self, new: Config | CompiledConfig) -> Reloaded:
        """Take a new config between two events (issue 14).

        New backlogs use the new definitions; live backlogs keep running on the definition
        and rules they started with until they end. A directive that is gone opens no new
        backlog, and is dropped once its live ones have ended. The new assets (HOME_NET,
        values, names, the whitelist) apply to every event from now on.
        """
        if isinstance(new, Config):
            new = CompiledConfig.of(new)
        current = {d.id: d for d in self.directives}
        retired = {i: d for i, d in self._retired.items() if d.backlogs}
        directives: list[Directive] = []
        changed: list[tuple[Directive, Directive]] = []  # (directive, its new compilation)
        added = modified = 0
        for fresh in new.directives:
            d = current.pop(fresh.id, None)
            is_new = d is None
            if is_new:
                added += 1
                d = retired.pop(fresh.id, None)  # back again while its backlogs still run
            if d is None:
                d = fresh
            elif d.config != fresh.config:
                changed.append((d, fresh))
                modified += not is_new
            directives.append(d)
        # nothing is changed above: from here on the engine takes the new config
        for d, fresh in changed:
            d.config, d.rules = fresh.config, fresh.rules
        for position, d in enumerate(directives):
            d.position, d.retired = position, False
        for d in current.values():  # removed by this reload
            d.retired = True
            if d.backlogs:
                retired[d.id] = d
        for position, d in enumerate(retired.values(), len(directives)):
            d.position = position
        self.directives, self._retired = directives, retired
        self._by_id = {d.id: d for d in directives}
        self._drained = []
        self.assets = new.config.assets
        older = self._rebuild_index()
        return Reloaded(
            directives=len(directives), added=added, changed=modified,
            removed=len(current), retired=len(retired), older=older,
        )

    def _rebuild_index(self) -> int:
        """Index the directives by their rules and by the older definitions their live
        backlogs run; returns how many live backlogs run an older definition."""
        every = [*self.directives, *self._retired.values()]
        index = DirectiveIndex(every)
        older = 0
        for d in every:
            same: dict[int, bool] = {id(d.config): True}  # definition -> equal to d.config
            for b in d.backlogs:
                key = id(b.definition)
                if key not in same:
                    same[key] = b.definition == d.config
                    if not same[key]:
                        index.add(d, [s.rule for s in b.stages])
                if not same[key]:
                    older += 1
        self.index = index
        return older

    def _drop_drained(self) -> None:
        """Forget the directives a reload removed whose last live backlog has ended."""
        for d in self._drained:
            if d.retired and not d.backlogs and self._retired.get(d.id) is d:
                del self._retired[d.id]
                self.index.remove(d)
                log.info("directive %d, removed by a reload, has no live backlog left", d.id)
        self._drained = []

    # -- per directive --------------------------------------------------------------------

    def _dispatch(self, d: Directive, e: Event, ch: Changes) -> bool:
        consumed = False
        for b in d.backlogs.candidates(e):
            consumed = self._offer(b, e, ch) or consumed
        if consumed:
            return True
        if d.retired:  # removed by a reload: its live backlogs run to their end, no new one
            return False
        if d.backlogs.used(e.event_id):
            log.debug("skipping backlog creation for event %s, it's used in a backlog",
                      shown(e.event_id))
            return False
        if not d.rules[0].matches(e, self.assets, *self._match_args):
            return False
        self._open(d, e, ch)
        return True

    def _offer(self, b: Backlog, e: Event, ch: Changes) -> bool:
        """Offer `e` to backlog `b`; True when the backlog consumes it, as in Go Dsiem
        (docs/behaviour.md, "Consumed events")."""
        cur = b.current
        while cur.rule.absent and b.deadline < self.clock():
            self._complete_absence(b, ch)  # the sweep has not come to it yet
            if b.state != LIVE:
                return False
            cur = b.current
        if not cur.rule.matches(e, self.assets, *self._match_args):
            if b.definition.all_rules_always_active:
                for stage in b.stages[: b.current_stage - 1]:
                    if stage.rule.matches(e, self.assets, *self._match_args):
                        self._record_sticky(stage, e)
                        self._append(b, stage, e, ch)
                        self._update_alarm(b, ch)
                        return True
            return False
        sticky = cur.rule.sticky_key
        if sticky and sticky(e) in cur.sticky:
            log.debug("backlog can't find new unique value in stickydiff field %s",
                      cur.rule.sticky_different)
            return True
        if e.ts < b.previous_end:
            log.warning("discarded out of order event %s in backlog %s", shown(e.event_id), b.id)
            return True
        if cur.rule.absent:
            if e.ts > b.deadline:  # after the window (a clock ahead of the engine's)
                return False
            self._break_absence(b, cur, e, ch)
            return True
        self._record_sticky(cur, e)
        self._accept(b, cur, e, ch)
        return True

    # -- backlog lifecycle ----------------------------------------------------------------

    def _open(self, d: Directive, e: Event, ch: Changes) -> Backlog:
        rules = list(d.rules)
        if d.config.all_rules_always_active:
            rules[0] = _pin_addresses(rules[0], e)
        if self.options.reference_mode == "rule":
            rules = resolve_chained(rules, e)
        stages = [Stage(r, resolved=self.options.reference_mode == "rule") for r in rules]
        stages[0].resolved = True
        stages[0].start_time = e.ts
        b = Backlog(
            id=self.new_id(),
            seq=self.next_seq,
            directive=d,
            definition=d.config,
            title=self._title(d.config.name, e),
            status=self.options.status,
            tag=self.options.tag,
            stages=stages,
        )
        self.next_seq += 1
        ch.next_seq = self.next_seq
        d.backlogs.add(b)
        self.backlogs[b.id] = b
        self.stats.backlogs_opened += 1
        log.info("new backlog created: directive %d backlog %s", d.id, b.id)
        self._record_sticky(stages[0], e)
        self._accept(b, stages[0], e, ch)
        while b.state == LIVE and self._due(b) < self.clock():
            self._past_due(b, ch)
        return b

    def _accept(self, b: Backlog, cur: Stage, e: Event, ch: Changes) -> None:
        """Count `e` in the current stage and finish the stage when it is complete."""
        self._append(b, cur, e, ch)
        if cur.first_event is None:
            cur.first_event = FirstEvent.of(e)
        if len(cur.event_ids) < cur.rule.occurrence:
            return
        self._finish_stage(b, cur, e.ts, ch)

    def _finish_stage(self, b: Backlog, cur: Stage, at: int, ch: Changes) -> None:
        """`cur` is complete at time `at`: the backlog moves on to its next stage, or
        finishes after its last."""
        cur.status = "finished"
        cur.end_time = at
        self._update_risk(b, cur.rule.reliability)
        if b.current_stage == b.highest_stage:
            self._update_alarm(b, ch, lookups=True)
            self._close(b, FINISHED, ch)
            self.stats.finished += 1
            log.info("reached max stage and occurrence, deleting backlog %s", b.id)
            return
        b.current_stage += 1
        nxt = b.current
        nxt.start_time = at
        if not nxt.resolved:
            nxt.rule = resolve_references(nxt.rule, b.stages)
            nxt.resolved = True
        b.directive.backlogs.refile(b)
        self._watch_deadline(b)
        log.info("stage increased to %d in backlog %s", b.current_stage, b.id)
        self._update_alarm(b, ch, lookups=True)

    def _append(self, b: Backlog, stage: Stage, e: Event, ch: Changes) -> None:
        # one record per (backlog, stage, event id), the key of the store's `stage_events`
        event_id = e.event_id
        if event_id not in stage.event_ids:
            if stage.event_ids is NO_VALUES:
                stage.event_ids = {}
            stage.event_ids[event_id] = None
            ch.links.append(EventLink(b.id, stage.rule.stage, event_id, e.ts, e.src_ip,
                                      e.dst_ip, e.src_port, e.dst_port))
        if event_id not in b.event_ids:
            b.event_ids.add(event_id)
            b.directive.backlogs.hold(event_id)
        _add_ip(b.src_ips, e.src_ip)
        _add_ip(b.dst_ips, e.dst_ip)
        if e.custom_data1 or e.custom_data2 or e.custom_data3:
            for label, content in (
                (e.custom_label1, e.custom_data1),
                (e.custom_label2, e.custom_data2),
                (e.custom_label3, e.custom_data3),
            ):
                if content:
                    b.custom_data[(label, content)] = None
        if e.src_port:
            b.last_srcport = e.src_port
            b.src_sockets[_socket(e.src_ip, e.src_port)] = None
        if e.dst_port:
            b.last_dstport = e.dst_port
            b.dst_sockets[_socket(e.dst_ip, e.dst_port)] = None
        b.update_time = self.clock()
        ch.touch(b)

    def _past_due(self, b: Backlog, ch: Changes) -> None:
        """The clock passed the due time of `b`'s current stage: an absence stage completes,
        any other expires."""
        if b.current.rule.absent:
            self._complete_absence(b, ch)
        else:
            self._expire(b, ch)

    def _complete_absence(self, b: Backlog, ch: Changes) -> None:
        """No matching event came to the absence stage by its deadline: the stage is
        complete at its deadline (docs/extensions.md, "Absence stages")."""
        log.info("no event came to absence stage %d of backlog %s by its deadline",
                 b.current_stage, b.id)
        b.update_time = self.clock()
        ch.touch(b)
        self._finish_stage(b, b.current, b.deadline, ch)

    def _break_absence(self, b: Backlog, cur: Stage, e: Event, ch: Changes) -> None:
        """A matching event came to the absence stage in time: the backlog ends, as one that
        expired (docs/extensions.md, "Absence stages")."""
        cur.status = "cancelled"
        cur.end_time = e.ts
        b.update_time = self.clock()
        self._update_alarm(b, ch)
        self._close(b, EXPIRED, ch)
        self.stats.expired += 1
        log.info("event %s came to absence stage %d, ending backlog %s", shown(e.event_id),
                 b.current_stage, b.id)

    def _record_sticky(self, stage: Stage, e: Event) -> None:
        if stage.rule.sticky_key:
            if stage.sticky is NO_VALUES:
                stage.sticky = {}
            stage.sticky[stage.rule.sticky_key(e)] = None

    def _update_risk(self, b: Backlog, reliability: int) -> None:
        value = max((self.assets.value(ip) for ip in b.ips()), default=0)
        risk = risk_of(b.definition.priority, reliability, value)
        if risk != b.risk:
            log.info("risk changed from %d to %d in backlog %s", b.risk, risk, b.id)
            b.risk = risk
            b.risk_class = risk_class(risk, self.options.med_risk_min, self.options.med_risk_max)

    def _update_alarm(self, b: Backlog, ch: Changes, lookups: bool = False) -> None:
        """Write an alarm line when the risk is at least 1 (docs/behaviour.md, "Alarm lines").
        With `lookups`, the shell also runs the intel and vuln lookups and calls `enrich` with
        their results."""
        if b.risk == 0:
            return
        if lookups:
            ch.lookups[b.id] = b
        if b.created_time == 0:
            b.created_time = b.update_time
            self.stats.alarms += 1
        for ip in b.ips():
            for net in self.assets.networks(ip):
                b.networks[net] = None
        self.stats.alarm_lines += 1
        ch.alarms.append(render_alarm(b))
        ch.touch(b)

    def _expire(self, b: Backlog, ch: Changes) -> None:
        b.current.status = "timeout"
        self._update_alarm(b, ch)
        self._close(b, EXPIRED, ch)
        self.stats.expired += 1
        log.info("backlog expired, setting last stage status to timeout and deleting it: %s", b.id)

    def _due(self, b: Backlog) -> int:
        """The clock time after which the expiry sweep takes the backlog: its deadline, plus
        the minimum alarm lifetime unless its current stage is an absence stage, which
        completes at its deadline."""
        if b.current.rule.absent:
            return b.deadline
        return b.deadline + self.options.min_alarm_lifetime * 60

    def _watch_deadline(self, b: Backlog) -> None:
        heapq.heappush(self._deadlines, (self._due(b), b.seq, next(self._pushes), b))
        if b.current.rule.absent:
            heapq.heappush(self._absences, (b.deadline, b.seq, b))

    def _close(self, b: Backlog, state: str, ch: Changes) -> None:
        b.state = state
        b.ended_time = self.clock()
        d = b.directive
        d.backlogs.remove(b)
        if d.retired and not d.backlogs:
            self._drained.append(d)  # dropped from the index at the next expiry sweep
        del self.backlogs[b.id]
        ch.touch(b)

    # -- helpers --------------------------------------------------------------------------

    def _title(self, name: str, e: Event) -> str:
        """Substitute SRC_IP / DST_IP with the host asset name or the address
        (docs/behaviour.md, "Alarm title")."""
        if "SRC_IP" in name:
            name = name.replace("SRC_IP", self.assets.name(e.src_ip) or e.src_ip)
        if "DST_IP" in name:
            name = name.replace("DST_IP", self.assets.name(e.dst_ip) or e.dst_ip)
        return name


def _socket(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _add_ip(ips: dict[str, None], ip: str) -> None:
    if ip in ips:
        return
    if ip == "0.0.0.0" and ips:
        return
    ips[ip] = None
    if len(ips) > 1 and "0.0.0.0" in ips:
        del ips["0.0.0.0"]


def _pin_addresses(rule: Rule, e: Event) -> Rule:
    """`all_rules_always_active`: stage 1 then only matches the creating event's addresses."""
    changes = {}
    if rule.from_ in ADDRESS_KEYWORDS:
        changes["from_"] = e.src_ip
    if rule.to in ADDRESS_KEYWORDS:
        changes["to"] = e.dst_ip
    return rule.replace(**changes)


def resolve_chained(rules: list[Rule], e: Event) -> list[Rule]:
    """`--reference-mode rule`: the Go Dsiem resolution at backlog creation
    (docs/behaviour.md, "References").

    In array order, `:N` copies the already resolved text of rule N, or the creating event's
    value when that text is a keyword (ANY, HOME_NET, !HOME_NET for addresses, ANY otherwise).
    Go does not resolve `protocol`: a reference there stays literal, as in Go's alarms.
    """
    resolved: list[Rule] = [rules[0]]
    for rule in rules[1:]:
        changes = {}
        for attr, n in rule.references:
            if attr == "protocol":
                continue
            source = rule.source(attr)
            text = getattr(resolved[n - 1], source)
            keywords = ADDRESS_KEYWORDS if attr in ("from_", "to") else ("ANY",)
            changes[attr] = FirstEvent.of(e).text(source) if text in keywords else text
        resolved.append(rule.replace(**changes))
    return resolved

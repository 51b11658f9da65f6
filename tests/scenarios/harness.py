"""Helpers to drive the engine with whole event streams, the way `replay` does."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from itertools import count
from typing import Any

import kit
from kit import T0, rule

from dsiem_sql.config.assets import Asset, Assets
from dsiem_sql.config.loader import Config
from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.config.validate import validate_directive
from dsiem_sql.engine import Changes, Engine, EngineOptions, decode_event
from dsiem_sql.shell.replay import EventClock

__all__ = ["T0", "TESTING_ASSETS", "Harness", "assets", "decoded", "directive", "event", "rule"]

# SPEC §14.9 asset fixture
TESTING_ASSETS = [
    ("Firewall", "192.168.0.1/32", 5, False),
    ("VulnerabilityScanner", "192.168.0.2/32", 5, True),
    ("192-168-Net", "192.168.0.0/16", 5, False),
    ("10-Net", "10.0.0.0/8", 5, False),
    ("172-16-Net", "172.16.0.0/12", 5, False),
    ("firewall-ipv6", "2002:c0a8:1::1/128", 5, False),
    ("2002:c0a8:1::/64-Net", "2002:c0a8:1::/64", 2, False),
]


def assets(rows: Iterable[tuple[str, str, int, bool]]) -> Assets:
    return Assets([Asset(n, ipaddress.ip_network(c), v, w) for n, c, v, w in rows])


def directive(id: int, rules: list[dict[str, Any]], **kw: Any) -> DirectiveConfig:
    """kit.directive, validated as the loader does."""
    d = DirectiveConfig.model_validate(kit.directive(id, rules, **kw))
    validate_directive(d, set())
    return d


def decoded(data: dict[str, Any]):
    """An event dict decoded as a received event."""
    return decode_event(json.dumps(data))


def event(event_id: str, ts: int, src: str = "0.0.0.0", dst: str = "0.0.0.0", **kw: Any):
    """kit.event, decoded as a received event."""
    return decoded(kit.event(event_id, ts, src, dst, **kw))


class Harness:
    """An engine fed like `replay` feeds it: the clock is the newest event time."""

    def __init__(self, directives, asset_rows=TESTING_ASSETS, **options: Any):
        ids = count(1)
        self.clock = EventClock(0)
        config = Config(directives=tuple(directives), assets=assets(asset_rows))
        self.engine = Engine(
            config, EngineOptions(**options), clock=self.clock, new_id=lambda: f"b{next(ids)}"
        )
        self.changes = Changes()

    def feed(self, *events) -> Changes:
        step = Changes()
        for e in events:
            if self.clock.advance(e.ts):
                step.extend(self.engine.expire())
            step.extend(self.engine.process(e))
        self.changes.extend(step)
        return step

    def sweep(self, now: int) -> Changes:
        self.clock.advance(now)
        step = self.engine.expire()
        self.changes.extend(step)
        return step

    @property
    def alarms(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.changes.alarms]

    @property
    def links(self) -> list[tuple[str, int, str]]:
        return [tuple(link) for link in self.changes.links]

    def stage_events(self, backlog_id: str) -> list[list[str]]:
        b = self.changes.backlogs[backlog_id]
        return [list(s.event_ids) for s in b.stages]

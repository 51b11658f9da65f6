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
from dsiem_sql.engine import Changes, Engine, EngineOptions, Reloaded, decode_event
from dsiem_sql.engine.alarm import render_link
from dsiem_sql.runtime.correlator import Correlator, EventClock

__all__ = [
    "T0", "TESTING_ASSETS", "Harness", "assets", "decoded", "directive", "event", "records",
    "rule",
]


def json_dumps_line(obj: Any) -> str:
    """How output lines were serialized before orjson wrote them."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def check_json_lines(changes: Changes) -> None:
    """Every output line is byte for byte what `json_dumps_line` writes for it."""
    for line in changes.alarms:
        assert line == json_dumps_line(json.loads(line))
    for link in changes.links:
        assert render_link(link) == json_dumps_line(
            {"alarm_id": link.alarm_id, "stage": link.stage, "event_id": link.event_id})

def records(changes: Changes) -> list[tuple[str, int, str]]:
    """The `siem_alarm_events.json` records of `changes`: (alarm id, stage, event id)."""
    return [link[:3] for link in changes.links]


# the asset fixture `assets_testing.json` of dsiem-backend's `test_assets`
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
    """An engine fed like `replay` feeds it, through a `Correlator` on event time. Each
    step's output lines are checked with `check_json_lines`."""

    def __init__(self, directives, asset_rows=TESTING_ASSETS, **options: Any):
        ids = count(1)
        self.clock = EventClock(0)
        config = Config(directives=tuple(directives), assets=assets(asset_rows))
        self.engine = Engine(
            config, EngineOptions(**options), clock=self.clock, new_id=lambda: f"b{next(ids)}"
        )
        self.correlator = Correlator(self.engine, clock=self.clock)
        self.changes = Changes()

    def reload(self, directives, asset_rows=TESTING_ASSETS) -> Reloaded:
        """A new config between two events, as `serve` takes it on a reload."""
        return self.engine.reload(Config(directives=tuple(directives), assets=assets(asset_rows)))

    def feed(self, *events) -> Changes:
        for e in events:
            self.correlator.feed(e)
        return self._step()

    def sweep(self, now: int) -> Changes:
        self.correlator.sweep(now)
        return self._step()

    def _step(self) -> Changes:
        step = self.correlator.take()
        check_json_lines(step)
        self.changes.extend(step)
        return step

    @property
    def alarms(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.changes.alarms]

    @property
    def links(self) -> list[tuple[str, int, str]]:
        """The `siem_alarm_events.json` records so far: (alarm id, stage, event id)."""
        return records(self.changes)

    def stage_events(self, backlog_id: str) -> list[list[str]]:
        b = self.changes.backlogs[backlog_id]
        return [list(s.event_ids) for s in b.stages]

"""What `dsiem-sql validate` warns of: directives that load but cannot do what their author
meant (docs/testing.md, "Warnings").

* a directive that can never reach risk 1, so never writes an alarm (defenxor/dsiem #469);
* a stage that no event can reach (the reasons of `dsiem-sql test-init`: a field that
  admits no value, only whitelisted addresses, sticky-different on a field pinned to one
  value);
* (informational) a first stage that overlaps another directive's first stage: an event
  opens a backlog of each.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from dsiem_sql.authoring.starter import Unreachable, walk
from dsiem_sql.config.loader import Config
from dsiem_sql.config.models import DirectiveConfig, RuleConfig
from dsiem_sql.engine import EngineOptions

RISK_SCALE = 25  # risk = priority × reliability × asset value / 25
DOCUMENTED_MAX_VALUE = 5  # of an asset


@dataclass(frozen=True)
class Finding:
    file: Path | None
    directive: int
    stage: int | None
    reason: str
    info: bool = False  # informational: not a warning, even with --strict

    def __str__(self) -> str:
        where = f"directive {self.directive}" + (
            f", stage {self.stage}" if self.stage is not None else "")
        return f"{'info' if self.info else 'warning'}: {self.file}: {where}: {self.reason}"


def findings(config: Config, options: EngineOptions | None = None) -> list[Finding]:
    options = options or EngineOptions()
    found: list[Finding] = []
    highest = max((a.value for a in config.assets.assets if not a.whitelisted), default=0)
    for d in config.directives:
        file = config.directive_files.get(d.id)
        found += [Finding(file, d.id, stage, reason) for stage, reason in
                  _risk(d, highest) + _reach(d, config, options)]
    found += _overlaps(config)
    return found


def _risk(d: DirectiveConfig, highest: int) -> list[tuple[int | None, str]]:
    best = max(d.rules, key=lambda r: r.reliability)
    any_value = max(highest, DOCUMENTED_MAX_VALUE)
    if d.priority * best.reliability * any_value < RISK_SCALE:
        return [(None, f"can never raise an alarm: its risk is at most priority {d.priority} "
                       f"x reliability {best.reliability} (stage {best.stage}) x asset value "
                       f"{any_value} / {RISK_SCALE} = "
                       f"{d.priority * best.reliability * any_value // RISK_SCALE}, "
                       f"and an alarm needs risk 1")]
    if d.priority * best.reliability * highest < RISK_SCALE:
        return [(None, f"cannot raise an alarm with these assets: its risk is at most "
                       f"priority {d.priority} x reliability {best.reliability} (stage "
                       f"{best.stage}) x asset value {highest} (the highest) / {RISK_SCALE} "
                       f"= {d.priority * best.reliability * highest // RISK_SCALE}")]
    return []


def _reach(d: DirectiveConfig, config: Config, options: EngineOptions
           ) -> list[tuple[int | None, str]]:
    try:
        walk(d, config.assets, options)
    except Unreachable as exc:
        return [(exc.stage, f"no event can reach it: {exc.reason}")]
    return []


def _overlaps(config: Config) -> list[Finding]:
    """First stages that the same event matches, by plugin and SID or by category and
    product (the keys of the directive index); their other conditions are not compared."""
    by_key: dict[tuple, list[DirectiveConfig]] = defaultdict(list)
    for d in config.directives:
        first = min(d.rules, key=lambda r: r.stage)
        for key in _keys(first):
            if d not in by_key[key]:
                by_key[key].append(d)
    pairs: dict[tuple[int, int], tuple] = {}
    for key, directives in by_key.items():
        for i, a in enumerate(directives):
            for b in directives[i + 1:]:
                pairs.setdefault((a.id, b.id), key)
    return [
        Finding(config.directive_files.get(a), a, 1,
                f"its first stage overlaps directive {b}'s first stage ({_key_text(key)}): "
                f"such an event opens a backlog of each", info=True)
        for (a, b), key in sorted(pairs.items())
    ]


def _keys(rule: RuleConfig) -> list[tuple]:
    if rule.type == "PluginRule":
        return [("plugin", rule.plugin_id, sid) for sid in rule.plugin_sid]
    return [("taxonomy", rule.category, product) for product in rule.product]


def _key_text(key: tuple) -> str:
    kind, a, b = key
    return f"plugin {a} SID {b}" if kind == "plugin" else f"category {a}, product {b}"

"""Risk value and class (docs/behaviour.md, "Risk", "Risk class").

Every row is driven through the real engine: a two-stage directive of the row's priority whose
stage 1 has the row's reliability, and an asset of the row's value holding the event's
addresses. The first event opens a backlog and finishes stage 1, which computes the risk.
"""

from __future__ import annotations

import ipaddress
import json

import kit
import pytest

from dsiem_sql.config.assets import Asset, Assets
from dsiem_sql.config.loader import Config
from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.engine.engine import Engine, EngineOptions, risk_class
from dsiem_sql.engine.event import Event, decode_event
from dsiem_sql.engine.state import Changes

T = 1_700_000_000


def directive(priority: int, *reliabilities: int) -> DirectiveConfig:
    """Stage n: plugin 1001/[n] with the n-th reliability."""
    rules = [kit.rule(n, plugin_id=1001, plugin_sid=[n], reliability=r, timeout=3600)
             for n, r in enumerate(reliabilities, start=1)]
    return DirectiveConfig.model_validate(
        kit.directive(1, rules, name="risk test", priority=priority))


def event(event_id: str, sid: int, dst: str = "10.0.0.2") -> Event:
    return decode_event(json.dumps(
        kit.event(event_id, T, "10.0.0.1", dst, plugin_id=1001, plugin_sid=sid)))


def run(
    priority: int, reliability: int, value: int, med_min: int = 3, med_max: int = 6
) -> tuple[Engine, Changes]:
    assets = Assets([Asset("net", ipaddress.ip_network("10.0.0.0/8"), value, False)])
    engine = Engine(
        Config(directives=(directive(priority, reliability, 10),), assets=assets),
        EngineOptions(med_risk_min=med_min, med_risk_max=med_max),
        clock=lambda: T,
        new_id=lambda: "alarm1",
    )
    return engine, engine.process(event("e1", 1))


NO_ALARM = None

# priority, reliability, value, risk, class (3,6), class (3,5)
RISK_TABLE = [
    (3, 1, 4, 0, NO_ALARM, NO_ALARM),
    (3, 5, 4, 2, "Low", "Low"),
    (3, 10, 4, 4, "Medium", "Medium"),
    (3, 1, 5, 0, NO_ALARM, NO_ALARM),
    (3, 3, 5, 1, "Low", "Low"),
    (3, 10, 5, 6, "Medium", "High"),
    (3, 4, 4, 1, "Low", "Low"),
    (5, 1, 5, 1, "Low", "Low"),
    (5, 5, 5, 5, "Medium", "Medium"),
    (5, 10, 5, 10, "High", "High"),
    (5, 1, 2, 0, NO_ALARM, NO_ALARM),
    (5, 5, 2, 2, "Low", "Low"),
    (5, 10, 2, 4, "Medium", "Medium"),
    (1, 1, 1, 0, NO_ALARM, NO_ALARM),
    # Rust u8 arithmetic wraps 500 to 244 (risk 9); dsiem-sql uses unbounded ints
    # and does not clamp, so the risk is 20.
    (5, 10, 10, 20, "High", "High"),
]

RISK_ROWS = [
    pytest.param(p, r, v, risk, cls, (3, mx), id=f"14.10-p{p}-r{r}-v{v}-class(3,{mx})")
    for p, r, v, risk, c36, c35 in RISK_TABLE
    for mx, cls in ((6, c36), (5, c35))
]


@pytest.mark.parametrize(("priority", "reliability", "value", "risk", "cls", "med"), RISK_ROWS)
def test_risk_through_engine(
    priority: int,
    reliability: int,
    value: int,
    risk: int,
    cls: str | None,
    med: tuple[int, int],
) -> None:
    engine, changes = run(priority, reliability, value, *med)
    backlog = engine.backlogs["alarm1"]
    assert backlog.current_stage == 2  # stage 1 finished, so the risk was computed
    assert backlog.risk == risk
    if cls is NO_ALARM:
        assert changes.alarms == []
        assert backlog.risk_class == ""  # never changed from its initial state
    else:
        assert backlog.risk_class == cls
        assert len(changes.alarms) == 1
        alarm = json.loads(changes.alarms[0])
        assert (alarm["alarm_id"], alarm["risk"], alarm["risk_class"]) == ("alarm1", risk, cls)


def test_risk_uses_highest_asset_value_of_all_addresses() -> None:
    """value = max over src and dst addresses; an address outside every asset is 0."""
    assets = Assets(
        [
            Asset("low", ipaddress.ip_network("10.0.0.0/8"), 1, False),
            Asset("high", ipaddress.ip_network("192.168.0.0/16"), 4, False),
        ]
    )
    engine = Engine(
        Config(directives=(directive(5, 10, 10),), assets=assets), clock=lambda: T,
        new_id=lambda: "b",
    )
    engine.process(event("e1", 1, dst="192.168.0.9"))
    assert engine.backlogs["b"].risk == 5 * 10 * 4 // 25  # 8


def test_addresses_outside_every_asset_never_alarm() -> None:
    engine, _ = run(5, 10, 5)
    assert engine.backlogs["alarm1"].risk == 10  # same directive and event inside an asset
    same = engine.directives[0].config
    outside = Engine(
        Config(directives=(same,), assets=Assets([])), clock=lambda: T, new_id=lambda: "x"
    )
    changes = outside.process(event("e1", 1))
    assert outside.backlogs["x"].risk == 0
    assert changes.alarms == []


@pytest.mark.parametrize(
    ("risk", "med_min", "med_max", "expected"),
    [
        # class boundaries with (3, 6)
        pytest.param(2, 3, 6, "Low", id="14.10-boundary-2-Low"),
        pytest.param(3, 3, 6, "Medium", id="14.10-boundary-3-Medium"),
        pytest.param(6, 3, 6, "Medium", id="14.10-boundary-6-Medium"),
        pytest.param(7, 3, 6, "High", id="14.10-boundary-7-High"),
        # Go Dsiem's `TestAlarm` risks 1, 3, 7
        pytest.param(1, 3, 6, "Low", id="14.10-G-risk-1-Low"),
        pytest.param(0, 3, 6, "Low", id="6.3-risk-0-Low"),
        pytest.param(10, 3, 6, "High", id="6.3-risk-10-High"),
        # (3, 5)
        pytest.param(5, 3, 5, "Medium", id="6.3-(3,5)-5-Medium"),
        pytest.param(6, 3, 5, "High", id="6.3-(3,5)-6-High"),
        pytest.param(2, 3, 5, "Low", id="6.3-(3,5)-2-Low"),
        # (5, 4) is accepted by the reference implementations; the formula still applies
        pytest.param(4, 5, 4, "Low", id="6.3-(5,4)-4-Low"),
        pytest.param(5, 5, 4, "High", id="6.3-(5,4)-5-High"),
    ],
)
def test_risk_class(risk: int, med_min: int, med_max: int, expected: str) -> None:
    assert risk_class(risk, med_min, med_max) == expected


@pytest.mark.parametrize(
    ("reliability", "risk", "cls"),
    [
        pytest.param(7, 7, "High", id="14.10-boundary-7-High-engine"),
        pytest.param(6, 6, "Medium", id="14.10-boundary-6-Medium-engine"),
        pytest.param(3, 3, "Medium", id="14.10-boundary-3-Medium-engine"),
        pytest.param(2, 2, "Low", id="14.10-boundary-2-Low-engine"),
    ],
)
def test_risk_class_boundaries_through_engine(reliability: int, risk: int, cls: str) -> None:
    # priority 5 * reliability * value 5 // 25 == reliability
    engine, changes = run(5, reliability, 5)
    assert engine.backlogs["alarm1"].risk == risk
    assert json.loads(changes.alarms[0])["risk_class"] == cls


def test_risk_goes_down_with_a_lower_reliability_stage() -> None:
    """The risk is recomputed from the stage that just finished, so it can go down."""
    assets = Assets([Asset("net", ipaddress.ip_network("10.0.0.0/8"), 5, False)])
    engine = Engine(
        Config(directives=(directive(5, 10, 2, 10),), assets=assets), clock=lambda: T,
        new_id=lambda: "b",
    )
    first = engine.process(event("1", 1))
    assert [json.loads(a)["risk"] for a in first.alarms] == [10]
    second = engine.process(event("2", 2))
    alarm = json.loads(second.alarms[-1])
    assert (alarm["risk"], alarm["risk_class"]) == (2, "Low")

"""The pure correlation engine: matching, backlogs, risk and alarm rendering."""

from dsiem_sql.engine.engine import (
    CompiledConfig,
    Engine,
    EngineOptions,
    Reloaded,
    Stats,
    risk_class,
)
from dsiem_sql.engine.event import Event, InvalidEvent, decode_event
from dsiem_sql.engine.state import Backlog, Changes, EventLink, Stage

__all__ = [
    "Backlog",
    "Changes",
    "CompiledConfig",
    "Engine",
    "EngineOptions",
    "Event",
    "EventLink",
    "InvalidEvent",
    "Reloaded",
    "Stage",
    "Stats",
    "decode_event",
    "risk_class",
]

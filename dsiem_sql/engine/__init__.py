"""The pure correlation engine: matching, backlogs, risk and alarm rendering."""

from dsiem_sql.engine.engine import Engine, EngineOptions, Stats, risk_class
from dsiem_sql.engine.event import Event, InvalidEvent, decode_event
from dsiem_sql.engine.state import Backlog, Changes, EventLink, Stage

__all__ = [
    "Backlog",
    "Changes",
    "Engine",
    "EngineOptions",
    "Event",
    "EventLink",
    "InvalidEvent",
    "Stage",
    "Stats",
    "decode_event",
    "risk_class",
]

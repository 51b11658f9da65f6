"""The NATS bus: events in on `dsiem_events`, overload signals out (SPEC §9.1)."""

from dsiem_sql.bus.nats import EVENTS_SUBJECT, OVERLOAD_SUBJECT, Bus, NatsConfigError, NatsOptions

__all__ = ["EVENTS_SUBJECT", "OVERLOAD_SUBJECT", "Bus", "NatsConfigError", "NatsOptions"]

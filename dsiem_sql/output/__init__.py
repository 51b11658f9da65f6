"""JSON-lines output files read by Filebeat (SPEC §7)."""

from dsiem_sql.output.files import ALARM_EVENTS_FILE, ALARMS_FILE, OutputFiles

__all__ = ["ALARMS_FILE", "ALARM_EVENTS_FILE", "OutputFiles"]

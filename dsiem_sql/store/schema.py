"""The SQLite schema, in SQLAlchemy Core. Alembic migrations in `migrations/` create it.

Sets (addresses, networks, custom data, sticky values) are JSON arrays in insertion order.
All times are epoch seconds of the engine clock.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

directive_versions = Table(
    "directive_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("directive_id", Integer, nullable=False),
    Column("sha256", Text, nullable=False, unique=True),
    Column("definition", Text, nullable=False),
)

backlogs = Table(
    "backlogs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("seq", Integer, nullable=False, unique=True),
    Column("directive_id", Integer, nullable=False, index=True),
    Column("directive_version", Integer, ForeignKey("directive_versions.id"), nullable=False),
    Column("state", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("tag", Text, nullable=False),
    Column("current_stage", Integer, nullable=False),
    Column("highest_stage", Integer, nullable=False),
    Column("risk", Integer, nullable=False),
    Column("risk_class", Text, nullable=False),
    Column("src_ips", Text, nullable=False),
    Column("dst_ips", Text, nullable=False),
    Column("networks", Text, nullable=False),
    Column("custom_data", Text, nullable=False),
    Column("created_time", Integer, nullable=False),
    Column("update_time", Integer, nullable=False),
    Column("last_srcport", Integer, nullable=False),
    Column("last_dstport", Integer, nullable=False),
    Column("deadline", Integer, nullable=False),
    Column("ended_time", Integer),
    Column("src_sockets", Text, nullable=False, server_default="[]"),
    Column("dst_sockets", Text, nullable=False, server_default="[]"),
    CheckConstraint("state IN ('live', 'finished', 'expired')", name="backlog_state"),
    Index("ix_backlogs_state_ended", "state", "ended_time"),
)

stages = Table(
    "stages",
    metadata,
    Column("backlog_id", Text, ForeignKey("backlogs.id", ondelete="CASCADE"), nullable=False),
    Column("stage", Integer, nullable=False),
    Column("rule", Text, nullable=False),
    Column("resolved", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    Column("start_time", Integer, nullable=False),
    Column("end_time", Integer, nullable=False),
    Column("first_event", Text),
    Column("sticky", Text, nullable=False),
    PrimaryKeyConstraint("backlog_id", "stage"),
)

stage_events = Table(
    "stage_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("backlog_id", Text, ForeignKey("backlogs.id", ondelete="CASCADE"), nullable=False),
    Column("stage", Integer, nullable=False),
    Column("event_id", Text, nullable=False),
    # the event as the stage took it (revision 0004); NULL: not recorded (older rows, imports)
    Column("event_time", Integer),
    Column("src_ip", Text),
    Column("dst_ip", Text),
    Column("src_port", Integer),
    Column("dst_port", Integer),
    UniqueConstraint("backlog_id", "stage", "event_id"),
)

enrichments = Table(
    "enrichments",
    metadata,
    Column("backlog_id", Text, ForeignKey("backlogs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("term", Text, nullable=False),
    Column("result", Text, nullable=False),
    PrimaryKeyConstraint("backlog_id", "kind", "provider", "term", "result"),
    CheckConstraint("kind IN ('intel', 'vuln')", name="enrichment_kind"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("file", Text, nullable=False),
    Column("line", Text, nullable=False),
)

output_files = Table(
    "output_files",
    metadata,
    Column("file", Text, primary_key=True),
    Column("path", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("written_seq", Integer, nullable=False),
)

input_progress = Table(
    "input_progress",
    metadata,
    Column("source", Text, primary_key=True),
    Column("line", Integer, nullable=False),
    Column("offset", Integer, nullable=False),
)

engine_state = Table(
    "engine_state",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Integer, nullable=False),
)

reloads = Table(
    "reloads",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("started", Float, nullable=False),  # Unix time (wall clock), with fractions
    Column("seconds", Float, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("result", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("configs", Text, nullable=False),
    CheckConstraint("result IN ('success', 'failure')", name="reload_result"),
    Index("ix_reloads_started", "started"),
)

reload_files = Table(
    "reload_files",
    metadata,
    Column("reload_id", Integer, ForeignKey("reloads.id", ondelete="CASCADE"), nullable=False),
    Column("file", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    PrimaryKeyConstraint("reload_id", "file"),
)

suppression_entries = Table(
    "suppression_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("directive_id", Integer),
    Column("src", Text),
    Column("dst", Text),
    Column("custom_data", Text),
    Column("reason", Text, nullable=False),
    Column("added_by", Text, nullable=False),
    Column("created", Integer, nullable=False),
    Column("expires", Integer),
    Column("hits", Integer, nullable=False),
    Column("last_hit", Integer),
    Column("removed", Integer),
)

# Created by the migrations (SQLAlchemy Core does not model views); see docs/schema.md.
VIEWS = ("live_backlogs", "alarms", "alarm_events", "alarm_intel", "alarm_vulns",
         "config_reloads", "suppressions")

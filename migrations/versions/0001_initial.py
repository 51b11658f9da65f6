"""Initial schema: backlogs, stages, event links, enrichments, outbox and views.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

VIEWS = {
    "live_backlogs": """
        SELECT b.id AS alarm_id, b.directive_id, b.title, b.current_stage, b.highest_stage,
               (SELECT count(*) FROM stage_events e
                 WHERE e.backlog_id = b.id AND e.stage = b.current_stage) AS stage_events,
               json_extract(s.rule, '$.occurrence') AS stage_occurrence,
               b.risk, b.risk_class, b.src_ips, b.dst_ips, b.created_time, b.update_time,
               b.deadline AS expires_at
          FROM backlogs b
          JOIN stages s ON s.backlog_id = b.id AND s.stage = b.current_stage
         WHERE b.state = 'live'
    """,
    "alarms": """
        SELECT id AS alarm_id, directive_id, title, status, tag, risk, risk_class, state,
               created_time, update_time
          FROM backlogs
         WHERE created_time > 0
    """,
    "alarm_events": """
        SELECT backlog_id AS alarm_id, stage, event_id FROM stage_events ORDER BY id
    """,
}


def upgrade() -> None:
    op.create_table(
        "directive_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("directive_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False, unique=True),
        sa.Column("definition", sa.Text(), nullable=False),
    )
    op.create_table(
        "backlogs",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False, unique=True),
        sa.Column("directive_id", sa.Integer(), nullable=False),
        sa.Column(
            "directive_version",
            sa.Integer(),
            sa.ForeignKey("directive_versions.id"),
            nullable=False,
        ),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("current_stage", sa.Integer(), nullable=False),
        sa.Column("highest_stage", sa.Integer(), nullable=False),
        sa.Column("risk", sa.Integer(), nullable=False),
        sa.Column("risk_class", sa.Text(), nullable=False),
        sa.Column("src_ips", sa.Text(), nullable=False),
        sa.Column("dst_ips", sa.Text(), nullable=False),
        sa.Column("networks", sa.Text(), nullable=False),
        sa.Column("custom_data", sa.Text(), nullable=False),
        sa.Column("created_time", sa.Integer(), nullable=False),
        sa.Column("update_time", sa.Integer(), nullable=False),
        sa.Column("last_srcport", sa.Integer(), nullable=False),
        sa.Column("last_dstport", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.Integer(), nullable=False),
        sa.Column("ended_time", sa.Integer()),
        sa.CheckConstraint("state IN ('live', 'finished', 'expired')", name="backlog_state"),
    )
    op.create_index("ix_backlogs_directive_id", "backlogs", ["directive_id"])
    op.create_index("ix_backlogs_state_ended", "backlogs", ["state", "ended_time"])
    op.create_table(
        "stages",
        sa.Column(
            "backlog_id",
            sa.Text(),
            sa.ForeignKey("backlogs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("start_time", sa.Integer(), nullable=False),
        sa.Column("end_time", sa.Integer(), nullable=False),
        sa.Column("first_event", sa.Text()),
        sa.Column("sticky", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("backlog_id", "stage"),
    )
    op.create_table(
        "stage_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "backlog_id",
            sa.Text(),
            sa.ForeignKey("backlogs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.UniqueConstraint("backlog_id", "stage", "event_id"),
    )
    op.create_table(
        "enrichments",
        sa.Column(
            "backlog_id",
            sa.Text(),
            sa.ForeignKey("backlogs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("backlog_id", "kind", "provider", "term", "result"),
        sa.CheckConstraint("kind IN ('intel', 'vuln')", name="enrichment_kind"),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
    )
    op.create_table(
        "output_files",
        sa.Column("file", sa.Text(), primary_key=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("written_seq", sa.Integer(), nullable=False),
    )
    op.create_table(
        "input_progress",
        sa.Column("source", sa.Text(), primary_key=True),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
    )
    op.create_table(
        "engine_state",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
    )
    for name, select in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW {name}")
    for table in (
        "engine_state",
        "input_progress",
        "output_files",
        "outbox",
        "enrichments",
        "stage_events",
        "stages",
        "backlogs",
        "directive_versions",
    ):
        op.drop_table(table)

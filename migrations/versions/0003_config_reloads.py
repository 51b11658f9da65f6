"""Config reloads (issue 14): when each config was taken, by what, with what result, and the
sha256 of every file it loaded; the `config_reloads` view.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

VIEWS = {
    "config_reloads": """
        SELECT r.id AS reload_id,
               strftime('%Y-%m-%dT%H:%M:%fZ', r.started, 'unixepoch') AS time,
               r.trigger, r.result, r.message, r.configs,
               (SELECT json_group_object(f.file, f.sha256) FROM reload_files f
                 WHERE f.reload_id = r.id) AS files,
               r.seconds
          FROM reloads r ORDER BY r.id
    """,
}


def upgrade() -> None:
    op.create_table(
        "reloads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("started", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("configs", sa.Text(), nullable=False),
        sa.CheckConstraint("result IN ('success', 'failure')", name="reload_result"),
    )
    op.create_index("ix_reloads_started", "reloads", ["started"])
    op.create_table(
        "reload_files",
        sa.Column(
            "reload_id",
            sa.Integer(),
            sa.ForeignKey("reloads.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("reload_id", "file"),
    )
    for name, select in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW {name}")
    op.drop_table("reload_files")
    op.drop_index("ix_reloads_started", "reloads")
    op.drop_table("reloads")

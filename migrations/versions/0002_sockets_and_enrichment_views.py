"""Observed address/port pairs per backlog (vulnerability search terms), and the
`alarm_intel` / `alarm_vulns` views over the enrichment results.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

VIEWS = {
    "alarm_intel": """
        SELECT backlog_id AS alarm_id, provider, term, result
          FROM enrichments WHERE kind = 'intel'
    """,
    "alarm_vulns": """
        SELECT backlog_id AS alarm_id, provider, term, result
          FROM enrichments WHERE kind = 'vuln'
    """,
}


def upgrade() -> None:
    with op.batch_alter_table("backlogs") as batch:
        batch.add_column(sa.Column("src_sockets", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("dst_sockets", sa.Text(), nullable=False, server_default="[]"))
    for name, select in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW {name}")
    with op.batch_alter_table("backlogs") as batch:
        batch.drop_column("dst_sockets")
        batch.drop_column("src_sockets")

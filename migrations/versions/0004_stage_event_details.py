"""The time, addresses and ports of each event counted in a stage, for `dsiem-sql explain`.
Rows written before this revision (and links of imported legacy backlogs, whose files do not
hold them) keep NULL there: "not recorded".

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (
    ("event_time", sa.Integer()),
    ("src_ip", sa.Text()),
    ("dst_ip", sa.Text()),
    ("src_port", sa.Integer()),
    ("dst_port", sa.Integer()),
)


def upgrade() -> None:
    # nullable columns without a default: SQLite adds them in place (ALTER TABLE ADD
    # COLUMN), without copying the table
    with op.batch_alter_table("stage_events") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    # SQLite's own DROP COLUMN (3.35 and later; the commits need 3.38 for `->>`): a batch
    # would copy the table, and SQLite refuses to rename the copy while views use the table
    for name, _ in reversed(COLUMNS):
        op.execute(f"ALTER TABLE stage_events DROP COLUMN {name}")

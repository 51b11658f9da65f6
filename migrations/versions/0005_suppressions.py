"""Suppressions (issue 21): a known-noisy source silenced for a directive or all, with a
reason, who added it, an expiry, and the events it kept from a directive; removed ones stay
as a record. The `suppressions` view.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

VIEWS = {
    "suppressions": """
        SELECT s.id,
               s.directive_id,
               s.src,
               s.dst,
               s.custom_data,
               s.reason,
               s.added_by,
               strftime('%Y-%m-%dT%H:%M:%SZ', s.created, 'unixepoch') AS created,
               strftime('%Y-%m-%dT%H:%M:%SZ', s.expires, 'unixepoch') AS expires,
               CASE WHEN s.removed IS NOT NULL THEN 'removed'
                    WHEN s.expires IS NOT NULL AND s.expires <= unixepoch() THEN 'expired'
                    ELSE 'active' END AS state,
               CASE WHEN s.removed IS NULL AND s.expires IS NOT NULL
                    THEN max(0, s.expires - unixepoch()) END AS seconds_left,
               s.hits,
               strftime('%Y-%m-%dT%H:%M:%SZ', s.last_hit, 'unixepoch') AS last_hit,
               strftime('%Y-%m-%dT%H:%M:%SZ', s.removed, 'unixepoch') AS removed
          FROM suppression_entries s ORDER BY s.id
    """,
}


def upgrade() -> None:
    op.create_table(
        "suppression_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("directive_id", sa.Integer()),  # NULL: every directive
        sa.Column("src", sa.Text()),  # a network, as 10.0.0.0/8; NULL: any
        sa.Column("dst", sa.Text()),
        sa.Column("custom_data", sa.Text()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("added_by", sa.Text(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("expires", sa.Integer()),  # NULL: permanent
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("last_hit", sa.Integer()),
        sa.Column("removed", sa.Integer()),  # when it was removed; NULL: it was not
    )
    for name, select in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW {name}")
    op.drop_table("suppression_entries")

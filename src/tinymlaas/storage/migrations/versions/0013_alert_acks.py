"""Acknowledgements of fleet alerts: which alert, who acknowledged it and when.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-12 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_acks",
        sa.Column("alert_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=True),
        sa.Column("acknowledged_by", sa.String(160), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_alert_acks_endpoint", "alert_acks", ["endpoint"])


def downgrade() -> None:
    op.drop_index("ix_alert_acks_endpoint", table_name="alert_acks")
    op.drop_table("alert_acks")

"""Samples uploaded by devices, keyed by the id each device gave its sample.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collected_samples",
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("sample_key", sa.String(length=128), nullable=False),
        sa.Column("sample_id", sa.String(length=32), nullable=False),
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id", "sample_key"),
    )
    with op.batch_alter_table("collected_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collected_samples_endpoint"), ["endpoint"], unique=False)
        batch_op.create_index(batch_op.f("ix_collected_samples_sample_id"), ["sample_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("collected_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collected_samples_sample_id"))
        batch_op.drop_index(batch_op.f("ix_collected_samples_endpoint"))

    op.drop_table("collected_samples")

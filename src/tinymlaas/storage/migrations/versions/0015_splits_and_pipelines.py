"""Split plans (phase 4) and declared multi-node pipelines.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 03:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "split_plans",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("variant_id", sa.String(length=32), nullable=False),
        sa.Column("chain", sa.String(length=200), nullable=False),
        sa.Column("objective", sa.String(length=16), nullable=False),
        sa.Column("chosen", sa.Integer(), nullable=True),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("head_model_id", sa.String(length=32), nullable=True),
        sa.Column("tail_model_id", sa.String(length=32), nullable=True),
        sa.Column("build", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["variant_id"], ["variants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["head_model_id"], ["models.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tail_model_id"], ["models.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_split_plans_model_id", "split_plans", ["model_id"])
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("applied", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("pipelines")
    op.drop_index("ix_split_plans_model_id", table_name="split_plans")
    op.drop_table("split_plans")

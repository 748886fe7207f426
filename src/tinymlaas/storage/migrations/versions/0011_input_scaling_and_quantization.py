"""Input scaling per dataset and per model; how each int8 variant was quantized; the cross-validated
float-vs-int8 figures of a model trained on a small snapshot.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 22:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("input_scaling", sa.String(16), nullable=False, server_default="standardize")
        )
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input_scaling", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("cross_validation", sa.JSON(), nullable=True))
    with op.batch_alter_table("variants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("method", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("quantization_report", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("variants", schema=None) as batch_op:
        batch_op.drop_column("quantization_report")
        batch_op.drop_column("method")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("cross_validation")
        batch_op.drop_column("input_scaling")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("input_scaling")

"""Job progress as fields: the phase and pipeline step a job is in, and the epoch it has trained to.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phase", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("step", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("epoch", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("epochs", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("epochs")
        batch_op.drop_column("epoch")
        batch_op.drop_column("step")
        batch_op.drop_column("phase")

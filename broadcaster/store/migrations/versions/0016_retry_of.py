"""broadcasts.retry_of: a broadcast that re-sends the failed messages of another, at most one each

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-01 13:30:00

``retry-failed`` re-queues the ERROR and UNDELIV messages of a finished broadcast as a new
broadcast. The unique index makes that new broadcast the only one for its source: a second call,
or two at once, find it instead of sending the same recipients again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_of", sa.Integer(), nullable=True))
    op.create_index("ix_broadcasts_retry_of", "broadcasts", ["retry_of"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_broadcasts_retry_of", table_name="broadcasts")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("retry_of")

"""quiet hours and validity: a broadcast's send window, validity and recipient zones; each
message's zone

Revision ID: 0010
Revises: 0014
Create Date: 2026-12-01 10:45:00

A broadcast with a send window keeps it (``send_window``, ``HH:MM-HH:MM``) and the distinct zones
of its recipients (``zones``), so dispatch and the claim decide which zones are closed now with a
few clock look-ups; each message keeps its recipient's zone (``tz``), computed once at import.
``validity_s``: an unsent message of the broadcast ends EXPIRED that long after the start.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("send_window", sa.String(11), nullable=True))
        batch_op.add_column(sa.Column("validity_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("zones", sa.JSON(), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tz", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("tz")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("zones")
        batch_op.drop_column("validity_s")
        batch_op.drop_column("send_window")

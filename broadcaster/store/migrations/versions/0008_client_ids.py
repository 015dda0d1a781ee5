"""messages keep the client's own externalId and clientId (seed 001), echoed in callbacks/reports

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-01 10:10:00

Seed 001 lets a client tag each message with ``externalId`` (per message or per campaign) and
``clientId`` (per destination) and get them back in status callbacks. Our own message id stays
the gateway's idempotency key; these two are only stored and echoed. Nullable, no index: they
are read with the message, never searched.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(100), nullable=True))
        batch_op.add_column(sa.Column("client_id", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("client_id")
        batch_op.drop_column("external_id")

"""messages waiting for a retry: retry_at (not claimed before), retry_since (window start)

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-01 09:50:00

A message a passing fault refused after its in-request attempts goes back to QUEUE with a
not-before time instead of ending ERROR. The partial index holds only messages that ever waited,
so counting a broadcast's waiting messages and finding the next one due reads those rows alone.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("retry_since", sa.DateTime(), nullable=True))
    op.create_index(
        "ix_messages_broadcast_retry",
        "messages",
        ["broadcast_id", "retry_at"],
        unique=False,
        postgresql_where=sa.text("retry_at IS NOT NULL"),
        sqlite_where=sa.text("retry_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_broadcast_retry", table_name="messages")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("retry_since")
        batch_op.drop_column("retry_at")

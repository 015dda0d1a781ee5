"""the status/lease index also carries sent_at, so the expiry sweep seeks instead of scanning

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 01:45:00

Every poller tick expires messages sent longer ago than the validity period without a final
receipt: ``status IN (SENT, ENROUTE, ACCEPTD) AND sent_at < cutoff``. With the index on
(status, lease_until) that read every such message's row: 148 ms per tick with a million
messages awaiting receipts, every 2 s. A sent message's lease is always NULL (every write that
sets sent_at clears it), so (status, lease_until, sent_at) answers the sweep with three range
seeks and still serves the lease look-ups (status, lease_until). One index replaces the other:
no extra write per message.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messages_status_lease_sent", ["status", "lease_until", "sent_at"], unique=False
        )
        batch_op.drop_index("ix_messages_status_lease")


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_status_lease", ["status", "lease_until"], unique=False)
        batch_op.drop_index("ix_messages_status_lease_sent")

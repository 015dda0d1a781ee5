"""callback outbox: due time, payload snapshot, one row per (message, status, url)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:00:00

Written by hand. ``batch_alter_table`` lets SQLite (which cannot add constraints to a table in
place) rebuild the table; PostgreSQL gets plain ALTER statements.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PENDING = sa.text("outcome = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("callback_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.create_unique_constraint(
            "uq_callback_deliveries_message_status_url", ["message_id", "status", "url"]
        )
    # Rows written before this revision (none were: nothing enqueued callbacks) would be due now.
    op.execute(
        "UPDATE callback_deliveries SET next_attempt_at = updated_at "
        "WHERE outcome = 'pending' AND next_attempt_at IS NULL"
    )
    op.create_index(
        "ix_callback_deliveries_due",
        "callback_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_callback_deliveries_due", table_name="callback_deliveries")
    with op.batch_alter_table("callback_deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_callback_deliveries_message_status_url", type_="unique")
        batch_op.drop_column("payload")
        batch_op.drop_column("next_attempt_at")

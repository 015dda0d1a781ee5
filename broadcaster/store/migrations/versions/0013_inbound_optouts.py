"""inbound messages, per-workspace suppression list and settings; replies tied to their inbound

Revision ID: 0013
Revises: 0014
Create Date: 2026-12-01 10:50:00

``inbound_messages`` holds each MO once: (route, gateway id) is unique, so a gateway that retries
a webhook stores nothing new. ``optouts`` is keyed (workspace, number): the send claim's NOT
EXISTS reads that primary key. ``broadcasts.reply_to_inbound`` marks a keyword confirmation: it
is unique (one reply per inbound message, however often the inbound is processed) and exempts
that broadcast from the suppression list (a STOP's confirmation goes to a suppressed number).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "workspace_settings",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_workspace_settings_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_workspace_settings"),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("gateway_id", sa.String(100), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=True),
        sa.Column("sender", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("keyword", sa.String(16), nullable=False),
        sa.Column("reported_at", sa.String(40), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_inbound_messages_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_messages"),
        sa.UniqueConstraint("route", "gateway_id", name="uq_inbound_messages_route_gateway_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_inbound_messages_workspace_id", "inbound_messages", ["workspace_id", "id"])
    op.create_table(
        "optouts",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_optouts_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "number", name="pk_optouts"),
    )
    # A plain ADD COLUMN and a unique index: no batch copy of broadcasts, which on SQLite would
    # recreate the table without AUTOINCREMENT (and reuse a deleted broadcast's id).
    op.add_column("broadcasts", sa.Column("reply_to_inbound", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_broadcasts_reply_to_inbound", "broadcasts", ["reply_to_inbound"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_broadcasts_reply_to_inbound", table_name="broadcasts")
    with op.batch_alter_table(
        "broadcasts", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_column("reply_to_inbound")
    op.drop_table("optouts")
    op.drop_index("ix_inbound_messages_workspace_id", table_name="inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_table("workspace_settings")

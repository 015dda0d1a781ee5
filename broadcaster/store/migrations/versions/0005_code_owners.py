"""sender code owners and shares; the route that sent each message

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00

A sender code string belongs to one workspace (``sender_code_owners``); another workspace may use
it only when an operator shares it (``sender_code_shares``). Codes registered before this
revision: the workspace that registered it first owns it, and every other workspace that already
had it keeps it as a share, so nothing running breaks (an operator reviews them with
``broadcaster codes list --workspace W``). ``messages.route`` records the account or provider that sent a
message, so that a receipt applies only when it comes back through that route; rows sent before
it are NULL and fall back to their sender code's route.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0008"
branch_labels = None
depends_on = None

#: SQL of ``owner_key(code)`` for table alias ``t``.
KEY = "LOWER(LTRIM({t}.code, '+'))"


def upgrade() -> None:
    op.create_table(
        "sender_code_owners",
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_sender_code_owners_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code", name="pk_sender_code_owners"),
    )
    op.create_table(
        "sender_code_shares",
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_sender_code_shares_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code", "workspace_id", name="pk_sender_code_shares"),
    )
    # Owned under services.codes.owner_key: no leading '+', case folded (codes are ASCII).
    # The first registration (lowest id) owns the code; later ones in other workspaces are shares.
    op.execute(
        f"INSERT INTO sender_code_owners (code, workspace_id, created_at) "
        f"SELECT {KEY.format(t='s')}, s.workspace_id, s.created_at FROM sender_codes s "
        f"WHERE s.id = (SELECT MIN(f.id) FROM sender_codes f "
        f"WHERE {KEY.format(t='f')} = {KEY.format(t='s')})"
    )
    op.execute(
        f"INSERT INTO sender_code_shares (code, workspace_id, created_at) "
        f"SELECT {KEY.format(t='s')}, s.workspace_id, MIN(s.created_at) FROM sender_codes s "
        f"JOIN sender_code_owners o ON o.code = {KEY.format(t='s')} "
        f"WHERE o.workspace_id <> s.workspace_id "
        f"GROUP BY {KEY.format(t='s')}, s.workspace_id"
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("route", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("route")
    op.drop_table("sender_code_shares")
    op.drop_table("sender_code_owners")

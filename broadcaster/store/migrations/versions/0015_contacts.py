"""contacts with typed identifiers, lists and their members, prepared messages (seed 003)

Revision ID: 0015
Revises: 0016
Create Date: 2026-12-01 13:20:00

``contact_identifiers`` is keyed (value, type, workspace): a number or e-mail names one contact
per workspace, and the search by ``?mobile=`` and an import's upsert read that primary key
(value first, so a batch's ``value IN (...)`` is an index condition on PostgreSQL).
Contacts and prepared messages never reuse an id (SQLite AUTOINCREMENT): an erased contact's
contactID must not come back as somebody else.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0016"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=f"fk_{table}_workspace_id_workspaces",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        _workspace_fk("contacts"),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_contacts_workspace_id", "contacts", ["workspace_id", "id"])
    op.create_table(
        "contact_identifiers",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.String(254), nullable=False),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        _workspace_fk("contact_identifiers"),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name="fk_contact_identifiers_contact_id_contacts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("value", "type", "workspace_id", name="pk_contact_identifiers"),
    )
    op.create_index("ix_contact_identifiers_contact_id", "contact_identifiers", ["contact_id"])
    op.create_table(
        "contact_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _workspace_fk("contact_lists"),
        sa.PrimaryKeyConstraint("id", name="pk_contact_lists"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_contact_lists_workspace_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "list_members",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["contact_lists.id"],
            name="fk_list_members_list_id_contact_lists",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name="fk_list_members_contact_id_contacts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "contact_id", name="pk_list_members"),
    )
    op.create_index("ix_list_members_contact_id", "list_members", ["contact_id"])
    op.create_table(
        "prepared_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sender_code", sa.String(20), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        _workspace_fk("prepared_messages"),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["contact_lists.id"],
            name="fk_prepared_messages_list_id_contact_lists",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_prepared_messages"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_prepared_messages_workspace_id", "prepared_messages", ["workspace_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_prepared_messages_workspace_id", table_name="prepared_messages")
    op.drop_table("prepared_messages")
    op.drop_index("ix_list_members_contact_id", table_name="list_members")
    op.drop_table("list_members")
    op.drop_table("contact_lists")
    op.drop_index("ix_contact_identifiers_contact_id", table_name="contact_identifiers")
    op.drop_table("contact_identifiers")
    op.drop_index("ix_contacts_workspace_id", table_name="contacts")
    op.drop_table("contacts")

"""signed-request nonces in the database, so that a Redis flush or restart cannot allow a replay

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01 09:50:00

One row per (API key prefix, nonce) until it expires (twice the signature window); the primary
key makes "seen before?" and "remember it" one atomic insert. The index on ``expires_at`` serves
the expiry sweep.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signed_nonces",
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_prefix", "nonce", name="pk_signed_nonces"),
    )
    op.create_index("ix_signed_nonces_expires_at", "signed_nonces", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_signed_nonces_expires_at", table_name="signed_nonces")
    op.drop_table("signed_nonces")

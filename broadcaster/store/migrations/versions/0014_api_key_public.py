"""api_keys.public_key and seed_secret (seed 004's publicKey); broadcasts.owner (its userName)

Revision ID: 0014
Revises: 0009
Create Date: 2026-12-01 10:50:00

Seed 004 puts a public key in every URL and signs with a secret the server must know. Existing
keys get a public key here (random, unique); their seed secret cannot be derived (only a hash of
the key is stored), so it stays NULL and such a key cannot sign seed-004 calls: create a new one.
``broadcasts.owner`` records the seed's ``userName`` (who owns the broadcast).
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0009"
branch_labels = None
depends_on = None

#: Hex characters of a public key after its "pk_" mark (as in broadcaster/services/apikeys.py).
PUBLIC_HEX_CHARS = 32


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_key", sa.String(40), nullable=True))
        batch_op.add_column(sa.Column("seed_secret", sa.String(64), nullable=True))
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(100), nullable=True))
    conn = op.get_bind()
    keys = sa.table("api_keys", sa.column("id", sa.Integer), sa.column("public_key", sa.String))
    for (key_id,) in conn.execute(sa.select(keys.c.id)).fetchall():
        conn.execute(
            sa.update(keys)
            .where(keys.c.id == key_id)
            .values(public_key="pk_" + secrets.token_hex(PUBLIC_HEX_CHARS // 2))
        )
    op.create_index("ix_api_keys_public_key", "api_keys", ["public_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_api_keys_public_key", table_name="api_keys")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("owner")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("seed_secret")
        batch_op.drop_column("public_key")

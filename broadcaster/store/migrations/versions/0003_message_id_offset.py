"""message ids start at a random offset per database

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:30:00

A message id is the gateway's externalId, and the gateway is not idempotent: an unknown outcome is
settled by asking whether it holds that externalId, and a message it holds is never sent again.
Every fresh database counted from 1, so a second installation, or a rebuilt database, on the same
gateway account would find the old one's message 1 there and never send its own. Ids now continue
from a random multiple of 2**32: about two million possible starts, each with room for four
billion messages, and every id below 2**53 so that JavaScript clients read it exactly.

Written by hand; downgrading keeps the ids already handed out (a sequence never goes back).
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: Offsets are multiples of this; the number of possible offsets is OFFSET_SLOTS - 1.
OFFSET_STEP = 2**32
OFFSET_SLOTS = 2**21


def random_offset() -> int:
    return (secrets.randbelow(OFFSET_SLOTS - 1) + 1) * OFFSET_STEP


def upgrade() -> None:
    bind = op.get_bind()
    offset = random_offset()
    used = bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM messages")).scalar_one()
    if bind.dialect.name == "sqlite":
        # AUTOINCREMENT keeps its high-water mark in sqlite_sequence (a row appears on first insert).
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'messages'"))
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('messages', :seq)"),
            {"seq": offset + used},
        )
    elif bind.dialect.name == "postgresql":
        bind.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('messages', 'id'), :next, false)"),
            {"next": offset + used + 1},
        )


def downgrade() -> None:
    pass

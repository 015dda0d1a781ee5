"""Migration 0005 on a database where two workspaces already registered one code: the first
owns it and the other keeps it as a share (nothing running breaks); the schema matches models."""

from __future__ import annotations

import sqlalchemy as sa

from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import metadata


def test_existing_codes_get_an_owner_and_later_copies_become_shares(database_url):
    upgrade(database_url, "0004")
    engine = engine_for(database_url)
    now = utcnow()
    with engine.begin() as conn:
        for ws_id, name in ((1, "acme"), (2, "globex")):
            conn.execute(
                sa.text("INSERT INTO workspaces (id, name, created_at) VALUES (:i, :n, :t)"),
                {"i": ws_id, "n": name, "t": now},
            )
        # acme registered ACME first; globex took it (and "+55501" for acme's 55501) after
        for ws_id, code in ((1, "ACME"), (1, "55501"), (2, "acme"), (2, "+55501"), (2, "55502")):
            conn.execute(
                sa.text(
                    "INSERT INTO sender_codes (workspace_id, code, kind, created_at) "
                    "VALUES (:w, :c, 'short', :t)"
                ),
                {"w": ws_id, "c": code, "t": now},
            )
    upgrade(database_url)
    with engine.connect() as conn:
        owners = dict(
            conn.execute(sa.text("SELECT code, workspace_id FROM sender_code_owners")).all()
        )
        shares = sorted(
            conn.execute(sa.text("SELECT code, workspace_id FROM sender_code_shares")).all()
        )
        columns = {c["name"] for c in sa.inspect(conn).get_columns("messages")}
        tables = set(sa.inspect(conn).get_table_names())
    assert owners == {"acme": 1, "55501": 1, "55502": 2}
    assert shares == [("55501", 2), ("acme", 2)]
    assert "route" in columns
    assert {t.name for t in metadata.sorted_tables} <= tables

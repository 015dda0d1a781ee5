"""Migration 0014 on a database with keys made before it: each gets its own public key; their
seed secret cannot be derived (only a hash of the key is kept), so seed-004 calls with such a
key are refused by name while /v1 keeps working; new keys sign. The schema matches models."""

from __future__ import annotations

import sqlalchemy as sa

from broadcaster.services.apikeys import (
    PUBLIC_MARK,
    by_public_key,
    create_key,
    hash_key,
    seed_secret_of,
)
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import api_keys, metadata


def test_existing_keys_get_distinct_public_keys_and_new_keys_sign(database_url):
    upgrade(database_url, "0009")
    engine = engine_for(database_url)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO workspaces (id, name, created_at) VALUES (1, 'acme', :t)"),
            {"t": now},
        )
        for prefix in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
            conn.execute(
                sa.text(
                    "INSERT INTO api_keys (workspace_id, prefix, key_hash, created_at) "
                    "VALUES (1, :p, :h, :t)"
                ),
                {"p": prefix, "h": hash_key(f"bk_{prefix}_x"), "t": now},
            )
    upgrade(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys.c.public_key, api_keys.c.seed_secret)).all()
        tables = set(sa.inspect(conn).get_table_names())
        key_columns = {c["name"] for c in sa.inspect(conn).get_columns("api_keys")}
        broadcast_columns = {c["name"] for c in sa.inspect(conn).get_columns("broadcasts")}
    publics = [r.public_key for r in rows]
    assert len(set(publics)) == 2 and all(p.startswith(PUBLIC_MARK) for p in publics)
    assert [r.seed_secret for r in rows] == [None, None]
    old = by_public_key(engine, publics[0])
    assert old is not None and old.seed_secret is None and old.principal.workspace == "acme"
    assert {c.name for c in api_keys.columns} <= key_columns
    assert "owner" in broadcast_columns
    assert {t.name for t in metadata.sorted_tables} <= tables
    # A key made now has a public key and the derived seed secret, found by its public key
    new = create_key(engine, "acme")
    found = by_public_key(engine, new.public_key)
    assert found is not None and found.seed_secret == seed_secret_of(new.key) == new.seed_secret
    assert new.instance_id == found.principal.workspace_id == 1
    assert by_public_key(engine, "pk_" + "0" * 32) is None
    assert by_public_key(engine, "not a key") is None
    assert by_public_key(engine, "pk_" + "\x00" * 32) is None  # refused before any SQL
    assert by_public_key(engine, new.public_key.upper()) is None

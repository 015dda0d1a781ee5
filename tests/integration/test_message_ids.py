"""Message ids are gateway idempotency keys (externalId): each database starts them at its own
random offset, so a rebuilt database or a second installation on the same gateway account never
presents an id the gateway already holds from another one (it would be taken as sent)."""

from __future__ import annotations

import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.services.broadcasts import NewBroadcast, create_from_file
from broadcaster.services.codes import add_code
from broadcaster.store.db import create_engine, upgrade
from broadcaster.store.models import messages

STEP = 2**32


def _send_list(url: str, tmp_path, n: int, name: str) -> list[int]:
    """Store a broadcast of ``n`` recipients (the first one adds the code); its message ids."""
    engine = create_engine(url)
    settings = Settings(database_url=url)
    if name == "first":
        add_code(engine, settings, "55501", "short", mps=10)
    f = tmp_path / f"{name}.txt"
    f.write_text("".join(f"+5255300{i:05d}\n" for i in range(n)))
    bid = create_from_file(engine, settings, f, NewBroadcast(sender="55501", text="Hola")).id
    with engine.connect() as conn:
        ids = [
            i
            for (i,) in conn.execute(
                sa.select(messages.c.id)
                .where(messages.c.broadcast_id == bid)
                .order_by(messages.c.id)
            )
        ]
    engine.dispose()
    return ids


def _old_schema_messages(url: str, n: int) -> list[int]:
    """``n`` messages written as a database at revision 0002 held them (today's code writes
    columns that schema does not have); their ids."""
    engine = create_engine(url)
    now = "2026-01-01 00:00:00"
    with engine.begin() as conn:
        ws = conn.execute(
            sa.text("INSERT INTO workspaces (name, created_at) VALUES ('old', :t) RETURNING id"),
            {"t": now},
        ).scalar_one()
        bid = conn.execute(
            sa.text(
                "INSERT INTO broadcasts (workspace_id, name, sender_code, template, status,"
                " start_at, timezone, created_at, updated_at)"
                " VALUES (:ws, 'old', '55501', 'Hola', 'COMPLETED', :t, 'UTC', :t, :t)"
                " RETURNING id"
            ),
            {"ws": ws, "t": now},
        ).scalar_one()
        for i in range(n):
            conn.execute(
                sa.text(
                    "INSERT INTO messages (broadcast_id, recipient, text, encoding, segments,"
                    " status, created_at) VALUES (:b, :r, 'Hola', 'GSM7', 1, 'SENT', :t)"
                ),
                {"b": bid, "r": f"+5255300{i:05d}", "t": now},
            )
        ids = [i for (i,) in conn.execute(sa.text("SELECT id FROM messages ORDER BY id")).all()]
    engine.dispose()
    return ids


def test_a_fresh_database_starts_ids_at_its_own_offset(database_url, tmp_path) -> None:
    upgrade(database_url)
    ids = _send_list(database_url, tmp_path, 3, "first")
    assert ids[0] % STEP == 1 and ids[0] > STEP, (
        ids
    )  # the first id after a random multiple of 2**32
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]
    assert ids[-1] < 2**53  # exact in JavaScript (the dashboard, API clients)


def test_two_fresh_databases_do_not_share_ids(tmp_path) -> None:
    firsts = set()
    for n in range(3):
        url = f"sqlite:///{tmp_path / f'db{n}.sqlite'}"
        upgrade(url)
        (tmp_path / str(n)).mkdir()
        firsts.add(_send_list(url, tmp_path / str(n), 1, "first")[0])
    assert len(firsts) == 3  # 2 million possible offsets: a repeat here is a one-in-700,000 event


def test_an_existing_database_keeps_its_ids_and_continues_above_an_offset(
    database_url, tmp_path
) -> None:
    upgrade(database_url, "0002")
    before = _old_schema_messages(database_url, 2)
    assert before == [1, 2]
    upgrade(database_url)
    after = _send_list(database_url, tmp_path, 2, "first")
    assert after[0] > STEP and after[0] % STEP == 3 and after[1] == after[0] + 1

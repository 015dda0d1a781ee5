"""Receipts in groups (issue 17): a group of receipts applied in one transaction stores exactly
what the same receipts store one by one, one bad receipt fails only itself, and a gateway's 200
is sent only once its receipt's group is committed (kill -9 of the API right after the 200s)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from broadcaster.api.app import create_app
from broadcaster.api.receipts import GROUPS_KEY
from broadcaster.config import Settings
from broadcaster.domain.states import RECEIPT_RANK, MessageStatus
from broadcaster.providers.base import Receipt
from broadcaster.services.broadcasts import NewBroadcast, create_from_file
from broadcaster.services.codes import add_code
from broadcaster.services.receipts import Applied, apply_receipt, apply_receipts
from broadcaster.store import messages_repo, receipts_repo
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import broadcasts, callback_deliveries, messages, receipts
from tests.support.services import free_port, wait_port

M = MessageStatus
SECRET = "s3cret"
ROUTE = "simulator"
CALLBACK = "https://example.com/cb"
ACCOUNTS = json.dumps(
    {"mg": {"provider": "messangi", "base_url": "http://messangi.invalid/v1", "api_key": "k"}}
)
#: Where each message of a world starts: before the send's answer, in the network, final.
START = ["DEQUEUED", "SENT", "SENT", "ENROUTE", "DELIVRD", "SENT"]


def _broadcast(engine, settings, tmp_path: Path, code: str, route: str, n: int, **kw) -> list[int]:
    """A RUNNING broadcast of ``n`` messages from ``code``, all claimed through ``route``."""
    f = tmp_path / f"{code}.txt"
    f.write_text("".join(f"+5255300{i:05d}\n" for i in range(n)))
    req = NewBroadcast(sender=code, text="x", callbacks=(CALLBACK,), **kw)
    bid = create_from_file(engine, settings, f, req).id
    with engine.begin() as conn:
        conn.execute(sa.update(broadcasts).where(broadcasts.c.id == bid).values(status="RUNNING"))
        ids = sorted(
            r[0]
            for r in conn.execute(sa.select(messages.c.id).where(messages.c.broadcast_id == bid))
        )
        messages_repo.claim(conn, bid, ids, now=utcnow(), lease_s=60, route=route)
    return ids


def _world(engine, settings, tmp_path: Path, code: str) -> list[int]:
    """Messages in the START states; message i (but the first) has gateway id ``{code}-g{i}``."""
    ids = _broadcast(engine, settings, tmp_path, code, ROUTE, len(START))
    with engine.begin() as conn:
        for i, (mid, status) in enumerate(zip(ids, START, strict=True)):
            if status != "DEQUEUED":
                conn.execute(
                    sa.update(messages)
                    .where(messages.c.id == mid)
                    .values(status=status, gateway_id=f"{code}-g{i}", lease_until=None)
                )
    return ids


def _script(code: str, ids: list[int], foreign: int) -> list[Receipt]:
    """Duplicates, out of order, before the send, by gateway id only, another route's, unknown."""
    g = [f"{code}-g{i}" for i in range(len(ids))]

    def r(ref: object, gid: str | None, status: MessageStatus) -> Receipt:
        return Receipt(None if ref is None else str(ref), gid, status, "2026-12-01T10:00:00Z")

    return [
        r(ids[0], f"{code}-early", M.ENROUTE),  # before the send's answer: applies, fills the gid
        r(ids[0], None, M.DELIVRD),
        r(ids[1], g[1], M.DELIVRD),
        r(ids[1], g[1], M.DELIVRD),  # duplicate
        r(ids[1], g[1], M.ENROUTE),  # late
        r(ids[2], g[2], M.ACCEPTD),
        r(ids[2], g[2], M.ENROUTE),  # out of order: lower rank
        r(ids[3], g[3], M.UNDELIV),
        r(ids[4], g[4], M.ENROUTE),  # after the final one
        r(None, g[5], M.DELIVRD),  # the gateway's id only
        r(foreign, None, M.DELIVRD),  # another workspace's message, another route: unknown
        r("9" * 30, None, M.DELIVRD),  # beyond any id
        r(None, f"{code}-nope", M.DELIVRD),
    ]


def _stored(engine, ids: list[int]) -> dict[str, object]:
    """What a world stored, with message ids replaced by their index in the world."""
    pos = {mid: i for i, mid in enumerate(ids)}
    with engine.connect() as conn:
        msgs = conn.execute(
            sa.select(messages.c.id, messages.c.status, messages.c.gateway_id)
            .where(messages.c.id.in_(ids))
            .order_by(messages.c.id)
        ).all()
        hist = conn.execute(
            sa.select(receipts.c.message_id, receipts.c.status, receipts.c.applied)
            .where(receipts.c.message_id.in_(ids))
            .order_by(receipts.c.id)
        ).all()
        cbs = conn.execute(
            sa.select(callback_deliveries.c.message_id, callback_deliveries.c.status)
            .where(callback_deliveries.c.message_id.in_(ids))
            .order_by(callback_deliveries.c.id)
        ).all()
    code_free = [(s, (gid or "").split("-", 1)[-1]) for _, s, gid in msgs]
    return {
        "messages": code_free,
        "history": [(pos[m], s, bool(a)) for m, s, a in hist],
        "callbacks": [(pos[m], s) for m, s in cbs],
    }


def _answers(outcomes: list, ids: list[int]) -> list[tuple]:
    pos = {mid: i for i, mid in enumerate(ids)}
    return [(pos.get(a.message_id), a.status, a.applied) for a in outcomes]


@pytest.fixture
def world(database_url, tmp_path):
    upgrade(database_url)
    settings = Settings(database_url=database_url, dlr_secret=SECRET, accounts=ACCOUNTS)
    engine = engine_for(database_url)
    for code in ("55501", "55502"):
        add_code(engine, settings, code, "short")
    add_code(engine, settings, "55601", "short", account="mg")
    return engine, settings


def test_a_group_stores_exactly_what_one_by_one_stores(world, tmp_path, caplog):
    engine, settings = world
    # Given two identical worlds and a message of another route
    grouped, single = (_world(engine, settings, tmp_path, c) for c in ("55501", "55502"))
    foreign = _broadcast(engine, settings, tmp_path, "55601", "mg", 1)[0]
    caplog.set_level(logging.INFO, logger="broadcaster.services.receipts")
    # When one world's receipts come as one group and the other's one by one
    group = [(ROUTE, r) for r in _script("55501", grouped, foreign)]
    outcomes = apply_receipts(engine, group, allow_private=False, default_provider=ROUTE)
    one_by_one = [
        apply_receipt(engine, ROUTE, r, default_provider=ROUTE)
        for r in _script("55502", single, foreign)
    ]
    # Then the group was applied as one, and both worlds hold the same states, history, callbacks
    assert not [r for r in caplog.records if "one by one" in r.getMessage()]
    assert all(isinstance(o, Applied) for o in outcomes)
    assert _answers(outcomes, grouped) == _answers(one_by_one, single)
    assert _stored(engine, grouped) == _stored(engine, single)
    stored = _stored(engine, grouped)
    assert stored["messages"][:5] == [
        ("DELIVRD", "early"),
        ("DELIVRD", "g1"),
        ("ACCEPTD", "g2"),
        ("UNDELIV", "g3"),
        ("DELIVRD", "g4"),
    ]
    assert stored["messages"][5] == ("DELIVRD", "g5")
    # the foreign message was not touched, and its receipt is kept as unknown
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(messages.c.status).where(messages.c.id == foreign)).scalar_one()
            == "DEQUEUED"
        )
        unknown = conn.execute(
            sa.select(sa.func.count()).where(receipts.c.message_id.is_(None))
        ).scalar_one()
    assert unknown == 6  # three per world


def _poison(engine) -> None:
    """The database refuses any receipt whose gateway id is 'poison' (a real refusal)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                sa.text(
                    "CREATE TRIGGER poison BEFORE INSERT ON receipts "
                    "WHEN NEW.gateway_id = 'poison' BEGIN SELECT RAISE(ABORT, 'poison'); END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.gateway_id = 'poison' THEN RAISE EXCEPTION 'poison'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER poison BEFORE INSERT ON receipts "
                    "FOR EACH ROW EXECUTE FUNCTION poison()"
                )
            )


def test_one_bad_receipt_fails_only_itself(world, tmp_path):
    engine, settings = world
    ids = _world(engine, settings, tmp_path, "55501")
    _poison(engine)
    group = [
        (ROUTE, Receipt(str(ids[1]), "55501-g1", M.DELIVRD)),
        (ROUTE, Receipt(str(ids[2]), "poison", M.DELIVRD)),
        (ROUTE, Receipt(str(ids[3]), "55501-g3", M.DELIVRD)),
    ]
    first, bad, last = apply_receipts(engine, group, default_provider=ROUTE)
    assert isinstance(bad, Exception)
    assert isinstance(first, Applied) and first.applied
    assert isinstance(last, Applied) and last.applied
    stored = _stored(engine, ids)
    # the bad one left nothing: its message unchanged, no history, no callback
    assert [s for s, _ in stored["messages"][1:4]] == ["DELIVRD", "SENT", "DELIVRD"]
    assert stored["history"] == [(1, "DELIVRD", True), (3, "DELIVRD", True)]
    assert stored["callbacks"] == [(1, "DELIVRD"), (3, "DELIVRD")]


def _history_row(mid, status: str, **kw) -> dict:
    row = {
        "message_id": mid,
        "provider": ROUTE,
        "gateway_id": None,
        "status": status,
        "applied": True,
        "reported_at": None,
        "received_at": utcnow(),
        "raw": {"stat": status},
    }
    return {**row, **kw}


def test_a_group_write_is_a_compare_and_set_and_keeps_every_column(world, tmp_path):
    """The group's one write (one statement on PostgreSQL): rows moved meanwhile are refused,
    the history keeps arrival order and every column as given."""
    engine, settings = world
    ids = _world(engine, settings, tmp_path, "55501")  # ids[1] and ids[2] are SENT
    now = utcnow()
    # a move from a status the row no longer has (another writer moved it): refused
    stale = [
        messages_repo.Advance(ids[1], "SENT", "DELIVRD", None),
        messages_repo.Advance(ids[2], "ENROUTE", "DELIVRD", None),
    ]
    with engine.connect() as conn, conn.begin() as txn:
        assert not receipts_repo.store_group(conn, stale, [_history_row(ids[1], "DELIVRD")], now)
        txn.rollback()
    assert _stored(engine, ids)["history"] == []
    assert [s for s, _ in _stored(engine, ids)["messages"][1:3]] == ["SENT", "SENT"]
    # moves that hold: every row moves, a stored gateway id is kept, a missing one filled in
    moves = [
        messages_repo.Advance(ids[0], "DEQUEUED", "ENROUTE", "55501-new"),
        messages_repo.Advance(ids[2], "SENT", "UNDELIV", "55501-other"),
    ]
    rows = [
        _history_row(ids[2], "UNDELIV", gateway_id="55501-g2", reported_at="2026-12-01 10:00"),
        _history_row(None, "DELIVRD", applied=False, gateway_id='x,{"y', raw={"q": [1, None]}),
        _history_row(ids[0], "ENROUTE", raw={}),
    ]
    with engine.begin() as conn:
        assert receipts_repo.store_group(conn, moves, rows, now)
    stored = _stored(engine, ids)
    assert stored["messages"][0] == ("ENROUTE", "new")
    assert stored["messages"][2] == ("UNDELIV", "g2")
    with engine.connect() as conn:
        kept = conn.execute(
            sa.select(
                receipts.c.message_id,
                receipts.c.provider,
                receipts.c.gateway_id,
                receipts.c.status,
                receipts.c.applied,
                receipts.c.reported_at,
                receipts.c.raw,
            ).order_by(receipts.c.id)
        ).all()
    assert [tuple(k) for k in kept] == [
        (ids[2], ROUTE, "55501-g2", "UNDELIV", True, "2026-12-01 10:00", {"stat": "UNDELIV"}),
        (None, ROUTE, 'x,{"y', "DELIVRD", False, None, {"q": [1, None]}),
        (ids[0], ROUTE, None, "ENROUTE", True, None, {}),
    ]
    # a group of history rows only (every receipt a duplicate): nothing to move, all kept
    with engine.begin() as conn:
        assert receipts_repo.store_group(conn, [], [_history_row(ids[0], "ENROUTE")], now)
    assert len(_stored(engine, ids)["history"]) == 3


def _pairs(rows) -> dict:
    return {k: v for k, v in rows}


def _rank(status: str) -> int:
    return RECEIPT_RANK.get(MessageStatus(status), -1)


async def test_concurrent_receipts_over_http_form_groups_and_keep_the_rules(
    world, tmp_path, aiohttp_client
):
    engine, settings = world
    ids = _broadcast(engine, settings, tmp_path, "55501", ROUTE, 40)
    client = await aiohttp_client(create_app(settings))
    statuses = ["ENROUTE", "DELIVRD", "DELIVRD", "ACCEPTD", "ENROUTE"]  # dup, late, out of order

    async def post(mid: int, status: str) -> int:
        body = {"id": f"g-{mid}", "externalId": str(mid), "status": status}
        resp = await client.post(f"/v1/dlr/{ROUTE}?secret={SECRET}", json=body)
        return resp.status

    codes = await asyncio.gather(*(post(m, s) for s in statuses for m in ids))
    assert set(codes) == {200}
    groups = client.app[GROUPS_KEY]
    assert groups.receipts_applied == len(ids) * len(statuses)
    assert groups.groups_applied < groups.receipts_applied / 4  # they came together: grouped
    with engine.connect() as conn:
        final = _pairs(
            conn.execute(sa.select(messages.c.id, messages.c.status).where(messages.c.id.in_(ids)))
        )
        applied = conn.execute(
            sa.select(receipts.c.message_id, receipts.c.status).where(receipts.c.applied)
        ).all()
        cbs = conn.execute(
            sa.select(callback_deliveries.c.message_id, callback_deliveries.c.status)
        ).all()
        kept = conn.execute(sa.select(sa.func.count()).select_from(receipts)).scalar_one()
    assert kept == len(ids) * len(statuses)
    assert set(final.values()) == {"DELIVRD"}  # the highest rank wins, whatever the order
    # every applied receipt moved its message up, once, with its callback in the same commit
    assert sorted(applied) == sorted(cbs)
    for mid in ids:
        steps = [s for m, s in applied if m == mid]
        assert steps[-1] == "DELIVRD" and len(steps) == len(set(steps))
        assert [_rank(s) for s in steps] == sorted(_rank(s) for s in steps)


def test_every_200_is_stored_when_the_api_is_killed(world, tmp_path, database_url, redis_url):
    engine, settings = world
    ids = _broadcast(engine, settings, tmp_path, "55501", ROUTE, 600)
    port = free_port()
    env = {
        **os.environ,
        "BROADCASTER_DATABASE_URL": database_url,
        "BROADCASTER_REDIS_URL": redis_url,
        "BROADCASTER_DLR_SECRET": SECRET,
        "BROADCASTER_CALLBACK_SECRET": "receipt-groups-test-callback-secret",
        "BROADCASTER_ACCOUNTS": ACCOUNTS,
    }
    cmd = [sys.executable, "-m", "broadcaster", "api", "--port", str(port)]

    def start() -> subprocess.Popen[bytes]:
        log = open(tmp_path / "api.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_port(port, 60)
        return proc

    api = start()
    acknowledged: list[int] = []

    async def run() -> None:
        url = f"http://127.0.0.1:{port}/v1/dlr/{ROUTE}?secret={SECRET}"
        async with aiohttp.ClientSession() as session:

            async def post(mid: int) -> None:
                body = {"id": f"g-{mid}", "externalId": str(mid), "status": "DELIVRD"}
                try:
                    async with session.post(url, json=body) as resp:
                        if resp.status == 200:
                            acknowledged.append(mid)
                            if len(acknowledged) == len(ids) // 3:
                                os.kill(api.pid, signal.SIGKILL)  # right after these 200s
                except aiohttp.ClientError:
                    pass

            await asyncio.gather(*(post(m) for m in ids))

    try:
        asyncio.run(run())
        api.wait(30)
        # Then every acknowledged receipt is stored, and nothing is half stored
        with engine.connect() as conn:
            done = _pairs(
                conn.execute(
                    sa.select(messages.c.id, messages.c.status).where(messages.c.id.in_(ids))
                )
            )
            kept = {r[0] for r in conn.execute(sa.select(receipts.c.message_id))}
            called = {r[0] for r in conn.execute(sa.select(callback_deliveries.c.message_id))}
        assert len(acknowledged) >= len(ids) // 3
        assert len(acknowledged) < len(ids)  # the kill did cut the run short
        assert all(done[m] == "DELIVRD" for m in acknowledged)
        delivered = {m for m, s in done.items() if s == "DELIVRD"}
        assert delivered == kept == called
        # And a new API process serves the rest
        api = start()
        assert _post_once(port, ids[-1]) == 200
        with engine.connect() as conn:
            last = conn.execute(
                sa.select(messages.c.status).where(messages.c.id == ids[-1])
            ).scalar_one()
        assert last == "DELIVRD"
    finally:
        api.kill()
        api.wait(30)


def _post_once(port: int, mid: int) -> int:
    """One receipt, synchronously: its HTTP status."""

    async def go() -> int:
        async with aiohttp.ClientSession() as session:
            body = {"id": f"g-{mid}", "externalId": str(mid), "status": "DELIVRD"}
            url = f"http://127.0.0.1:{port}/v1/dlr/{ROUTE}?secret={SECRET}"
            async with session.post(url, json=body) as resp:
                return resp.status

    return asyncio.run(go())

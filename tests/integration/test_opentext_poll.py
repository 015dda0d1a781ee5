"""OpenText has no push receipts: the status poller settles its messages from job status pages.

The send path and the poller run in-process here (memory token bucket, a list as task queue)
against the seed-built fake of the OpenText API on loopback.
"""

from __future__ import annotations

import json

from broadcaster.config import Settings
from broadcaster.services import poller, sending
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.db import engine_for, upgrade
from broadcaster.throttle import MemoryTokenBucket
from broadcaster.wiring import ProviderCache
from tests.support.fake_opentext import FAIL_SUFFIX, PASSWORD, USERNAME, FakeOpenText
from tests.support.inprocess import ListQueue


async def test_poller_settles_opentext_messages_from_job_status(
    aiohttp_server, sqlite_url, tmp_path
):
    fake = FakeOpenText()
    server = await aiohttp_server(fake.app())
    accounts = {
        "ot": {
            "provider": "opentext",
            "base_url": str(server.make_url("")).rstrip("/"),
            "username": USERNAME,
            "password": PASSWORD,
        }
    }
    upgrade(sqlite_url)
    settings = Settings(database_url=sqlite_url, accounts=json.dumps(accounts))
    engine = engine_for(sqlite_url)
    add_code(engine, settings, "55530", "short", mps=1000, provider="opentext", account="ot")
    numbers = [f"+5255100{i:05d}" for i in range(41)]
    assert sum(n.endswith(FAIL_SUFFIX) for n in numbers) == 1  # the fake fails this one
    (tmp_path / "list.txt").write_text("\n".join(numbers) + "\n")
    bid = create_from_file(
        engine, settings, tmp_path / "list.txt", NewBroadcast(sender="55530", text="Hola")
    ).id
    provider_for = ProviderCache(settings)

    queue = ListQueue()
    ctx = sending.SendContext(
        settings=settings,
        engine=engine,
        bucket=MemoryTokenBucket(),
        queue=queue,
        provider_for=provider_for,
    )
    await poller.tick(engine, settings, queue, provider_for)  # starts it and dispatches
    while queue.chunks:
        b, ids, _ = queue.chunks.pop(0)
        await sending.send_chunk(ctx, b, ids)
    try:
        await _settle(engine, settings, queue, provider_for, bid)
    finally:
        await provider_for.close()


async def _settle(engine, settings, queue, provider_for, bid) -> None:
    assert get_broadcast(engine, bid).counts == {"SENT": 41}
    for _ in range(4):  # each status request moves the fake's job one page on
        await poller.tick(engine, settings, queue, provider_for)
    final = get_broadcast(engine, bid)
    assert final.status == "COMPLETED"
    assert final.counts.get("DELIVRD") == 40
    assert sum(final.counts.values()) == 41 and "SENT" not in final.counts, final.counts

"""Token buckets and metrics per code and workspace, on a real Redis (issue 11 item 3).

A workspace cannot slow another by sending from its code: it cannot register it, and its own
codes' traffic never touches the other's bucket. A code an operator shares is one code at the
gateway with one rate: both workspaces meet its one bucket, and the metrics tell them apart.
"""

from __future__ import annotations

import pytest
import redis.asyncio
from prometheus_client import REGISTRY

from broadcaster.config import Settings
from broadcaster.errors import Conflict, InputError
from broadcaster.services import poller, sending
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code, share_code
from broadcaster.simulator.app import build_app
from broadcaster.simulator.config import SimulatorConfig
from broadcaster.store.db import engine_for, upgrade
from broadcaster.throttle import RedisTokenBucket
from broadcaster.wiring import ProviderCache
from tests.support.inprocess import ListQueue

#: A start time far enough ahead that the scheduler never starts the broadcast in a test.
LATER = "2099-01-01T00:00:00"


def _sent(code: str, workspace: str) -> float:
    labels = {"code": code, "provider": "simulator", "workspace": workspace}
    return REGISTRY.get_sample_value("broadcaster_messages_sent_total", labels) or 0.0


@pytest.fixture
async def stack(database_url, redis_url, aiohttp_server, tmp_path):
    server = await aiohttp_server(build_app(SimulatorConfig(dlr_delay_s=3600)))
    upgrade(database_url)
    settings = Settings(database_url=database_url, messangi_base_url=str(server.make_url("/v1")))
    engine = engine_for(database_url)
    client = redis.asyncio.Redis.from_url(redis_url)
    providers = ProviderCache(settings)
    queue = ListQueue()
    ctx = sending.SendContext(
        settings=settings,
        engine=engine,
        bucket=RedisTokenBucket(client),
        queue=queue,
        provider_for=providers,
    )

    def create(sender: str, workspace: str, n: int, at: str | None = None) -> int:
        f = tmp_path / f"{workspace}-{sender}.txt"
        f.write_text("".join(f"+5255300{i:05d}\n" for i in range(n)))
        req = NewBroadcast(sender=sender, text="Hola", workspace=workspace, at=at)
        return create_from_file(engine, settings, f, req).id

    async def run() -> None:
        await poller.tick(engine, settings, queue, ctx.provider_for)
        while queue.chunks:
            b, ids, _ = queue.chunks.pop(0)
            await sending.send_chunk(ctx, b, ids)

    yield settings, engine, ctx, client, create, run
    await providers.close()
    await client.aclose()


async def test_a_workspace_cannot_slow_another_through_its_code(stack):
    settings, engine, ctx, client, create, run = stack
    # Given acme's code 55501 and globex's own 55502
    add_code(engine, settings, "55501", "short", mps=50, workspace="acme")
    add_code(engine, settings, "55502", "short", mps=50, workspace="globex")
    acme_bid = create("55501", "acme", 1, at=LATER)  # scheduled: only to read its bucket key
    acme_key = sending._route(ctx, acme_bid).limits[0].key
    await client.flushdb()
    # When globex tries to take acme's code, it is refused, and so is a broadcast from it
    with pytest.raises(Conflict):
        add_code(engine, settings, "55501", "short", mps=50, workspace="globex")
    with pytest.raises(InputError, match="CODE_NOT_ALLOWED"):
        create("55501", "globex", 5)
    # And globex's traffic on its own code goes through its own bucket only
    before = _sent("55502", "globex")
    globex_bid = create("55502", "globex", 5)
    globex_key = sending._route(ctx, globex_bid).limits[0].key
    await run()
    assert get_broadcast(engine, globex_bid).sent_messages == 5
    assert globex_key != acme_key
    assert await client.exists(globex_key) == 1
    # Then acme's bucket was never touched (its key is absent: a full bucket) …
    assert await client.exists(acme_key) == 0
    assert get_broadcast(engine, acme_bid).status == "SCHEDULED"
    assert _sent("55502", "globex") - before == 5  # … and the metrics carry the workspace


async def test_a_shared_code_is_one_bucket_and_each_workspace_is_counted_apart(stack):
    settings, engine, ctx, client, create, run = stack
    add_code(engine, settings, "55501", "short", mps=50, workspace="acme")
    add_code(engine, settings, "55502", "short", mps=50, workspace="globex")
    # Given globex's traffic on its own code: acme's bucket stays untouched
    globex_own = create("55502", "globex", 3)
    await client.flushdb()
    await run()
    assert get_broadcast(engine, globex_own).sent_messages == 3
    acme_bid = create("55501", "acme", 2)
    acme_key = sending._route(ctx, acme_bid).limits[0].key
    assert await client.exists(acme_key) == 0
    # When an operator shares 55501 with globex and globex sends from it
    share_code(engine, settings, "55501", "globex")
    acme_before, globex_before = _sent("55501", "acme"), _sent("55501", "globex")
    shared_bid = create("55501", "globex", 4)
    assert sending._route(ctx, shared_bid).limits[0].key == acme_key  # one code, one rate
    await run()
    # Then both sent through the code's one bucket, and the metrics tell the workspaces apart
    assert await client.exists(acme_key) == 1
    assert get_broadcast(engine, shared_bid).sent_messages == 4
    assert get_broadcast(engine, acme_bid).sent_messages == 2
    assert _sent("55501", "globex") - globex_before == 4
    assert _sent("55501", "acme") - acme_before == 2

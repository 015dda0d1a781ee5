"""Rates are bounded (issue 11 item 8): ``mps`` of ``1e-300`` made every re-dispatch overflow.

A code stored before rates were checked must not break the send path either: the bucket is
built from a bounded rate, so a hand-back waits at most 1 / MIN_MPS seconds per token.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
import redis.asyncio
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.constants import MIN_MPS
from broadcaster.providers.registry import build_named_provider
from broadcaster.services import poller, sending
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.simulator.app import build_app
from broadcaster.simulator.config import SimulatorConfig
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import sender_codes
from broadcaster.throttle import MemoryTokenBucket, RedisTokenBucket


class ListQueue:
    def __init__(self) -> None:
        self.chunks: list[tuple[int, list[int], float]] = []

    def send_chunk(self, broadcast_id: int, ids: list[int], countdown_s: float = 0.0) -> None:
        self.chunks.append((broadcast_id, ids, countdown_s))


@pytest.mark.parametrize("bucket_kind", ["memory", "redis"])
@pytest.mark.parametrize("legacy_mps", [1e-300, 0.0, -5.0, float("nan"), 1e300])
async def test_a_legacy_absurd_rate_cannot_overflow_the_send_path(
    database_url, aiohttp_server, tmp_path, redis_url, bucket_kind, legacy_mps
):
    # Given a code whose stored rate predates the bounds (written straight to the table)
    server = await aiohttp_server(build_app(SimulatorConfig(dlr_delay_s=3600)))
    upgrade(database_url)
    settings = Settings(database_url=database_url, messangi_base_url=str(server.make_url("/v1")))
    engine = engine_for(database_url)
    add_code(engine, settings, "55501", "short", mps=10)
    with engine.begin() as conn:
        conn.execute(sa.update(sender_codes).values(mps=legacy_mps))
    f = tmp_path / "list.txt"
    f.write_text("".join(f"+5255300{i:05d}\n" for i in range(5)))
    bid = create_from_file(engine, settings, f, NewBroadcast(sender="55501", text="Hola")).id
    provider = build_named_provider(settings, "simulator")
    client = redis.asyncio.from_url(redis_url)
    bucket = MemoryTokenBucket() if bucket_kind == "memory" else RedisTokenBucket(client)
    queue = ListQueue()
    ctx = sending.SendContext(settings, engine, bucket, queue, lambda _key: provider)
    try:
        # When the poller starts it and its chunks run, and the poller ticks again later
        now = utcnow()
        await poller.tick(engine, settings, queue, lambda _key: provider, now=now)
        for _ in range(3):
            if not queue.chunks:
                break
            b, ids, _ = queue.chunks.pop(0)
            await sending.send_chunk(ctx, b, ids)
            now += timedelta(seconds=settings.redispatch_after_s + 1)
            await poller.tick(engine, settings, queue, lambda _key: provider, now=now)
    finally:
        await provider.close()
        await client.aclose()
    # Then nothing overflowed; hand-backs wait a finite, bounded time, and no message is lost
    assert all(math.isfinite(c) and 0 <= c <= 10 / MIN_MPS for _, _, c in queue.chunks)
    counts = get_broadcast(engine, bid).counts
    assert sum(counts.values()) == 5 and set(counts) <= {"QUEUE", "SENT"} and counts["SENT"] >= 1

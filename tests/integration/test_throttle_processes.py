"""One bucket, three OS processes: the rate holds globally, because it lives in Redis."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from broadcaster.constants import BUCKET_CODE_PREFIX

PROCESSES = 3
RATE_PER_S = 50.0
CAPACITY = 50.0  # the default: one second of rate
DURATION_S = 4.0
KEY = BUCKET_CODE_PREFIX + "hammered"

#: (sent at, answered at, tokens granted), wall-clock seconds shared by processes on one host.
Record = tuple[float, float, int]


def hammer(redis_url: str, start_at: float, stop_at: float, tokens_per_call: int) -> list[Record]:
    """Take tokens as fast as the bucket allows between two wall-clock instants."""
    return asyncio.run(_hammer(redis_url, start_at, stop_at, tokens_per_call))


async def _hammer(
    redis_url: str, start_at: float, stop_at: float, tokens_per_call: int
) -> list[Record]:
    import redis.asyncio

    from broadcaster.throttle import Limit, RedisTokenBucket

    client = redis.asyncio.Redis.from_url(redis_url)
    bucket = RedisTokenBucket(client)
    limit = Limit(KEY, rate_per_s=RATE_PER_S)
    records: list[Record] = []
    await client.ping()  # connect before the start
    await asyncio.sleep(max(0.0, start_at - time.time()))
    while time.time() < stop_at:
        sent = time.time()
        grant = await bucket.take([limit], tokens_per_call)
        answered = time.time()
        if grant.granted:
            records.append((sent, answered, grant.granted))
        if grant.wait_s:
            await asyncio.sleep(min(grant.wait_s, max(0.0, stop_at - time.time())))
    await client.aclose()
    return records


def max_in_any_window(records: list[Record], window_s: float) -> int:
    """Most tokens surely granted inside one window (the whole round trip within it)."""
    best = 0
    for start, _, _ in records:
        inside = sum(
            n for sent, answered, n in records if sent >= start and answered < start + window_s
        )
        best = max(best, inside)
    return best


@pytest.mark.slow
def test_three_processes_share_one_rate(redis_url: str) -> None:
    # Given three spawned processes that start together on one bucket of 50 segments/s
    start_at = time.time() + 3.0  # spawning and importing take a while on 2 cores
    stop_at = start_at + DURATION_S
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        futures = [pool.submit(hammer, redis_url, start_at, stop_at, 3) for _ in range(PROCESSES)]
        per_process = [f.result(timeout=60) for f in futures]

    # When we add up what all of them were granted
    records = sorted(r for rs in per_process for r in rs)
    assert all(per_process), "every process got some tokens"
    total = sum(n for _, _, n in records)
    elapsed_s = max(answered for _, answered, _ in records) - records[0][0]

    # Then the total stays within burst + rate x time, and nearly reaches it
    ceiling = CAPACITY + RATE_PER_S * elapsed_s
    assert total <= ceiling
    assert total >= 0.95 * ceiling, f"{total} tokens in {elapsed_s:.2f}s, ceiling {ceiling:.0f}"
    # And no one-second window holds more than burst + one second of rate
    assert max_in_any_window(records, 1.0) <= CAPACITY + RATE_PER_S

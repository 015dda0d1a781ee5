"""Contract of the token bucket, run over Redis (real server time) and the in-memory twin.

The memory twin runs on a fake clock that only moves when a test advances it; Redis runs on its
own clock, so those runs use slow rates (a token every 50-100 ms) and a tolerance on waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio

from broadcaster.constants import BUCKET_ACCOUNT_PREFIX, BUCKET_CODE_PREFIX
from broadcaster.throttle import (
    Grant,
    Limit,
    MemoryTokenBucket,
    RedisTokenBucket,
    TokenBucket,
    acquire,
)
from broadcaster.throttle.bucket import available, idle_ttl_ms, refill, wait_for

CODE = BUCKET_CODE_PREFIX + "12345"
ACCOUNT = BUCKET_ACCOUNT_PREFIX + "acme"


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.now_s += seconds


@dataclass
class Harness:
    bucket: TokenBucket
    #: Let time pass: the fake clock moves, or the test really sleeps.
    advance: Callable[[float], Awaitable[None]]
    #: Milliseconds until an idle key expires, None when it is gone.
    ttl_ms: Callable[[str], Awaitable[int | None]]
    #: Tolerance on waits in seconds: Redis' clock runs on while the test talks to it.
    tol_s: float
    #: Seconds on the clock the bucket runs on.
    now_s: Callable[[], float] = time.monotonic

    def wait(self, expected_s: float) -> object:
        return pytest.approx(expected_s, abs=self.tol_s)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["redis", "memory"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "memory":
        clock = FakeClock()
        memory = MemoryTokenBucket(clock)

        async def memory_ttl(key: str) -> int | None:
            return memory.ttl_ms(key)

        yield Harness(memory, clock.sleep, memory_ttl, tol_s=1e-9, now_s=clock)
        return

    client = redis.asyncio.Redis.from_url(request.getfixturevalue("redis_url"))

    async def redis_ttl(key: str) -> int | None:
        ttl = await client.pttl(key)
        return ttl if ttl >= 0 else None

    yield Harness(RedisTokenBucket(client), asyncio.sleep, redis_ttl, tol_s=0.03)
    await client.aclose()


# A token every 100 ms, a burst of 5.
CODE_10 = Limit(CODE, rate_per_s=10, capacity=5)


async def test_a_new_bucket_is_full_and_grants_part_of_a_bigger_request(harness: Harness) -> None:
    grant = await harness.bucket.take([CODE_10], 50)

    assert grant.granted == 5
    assert grant.wait_s == harness.wait(0.1)  # until the next token


async def test_a_request_within_the_level_is_granted_whole_with_no_wait(harness: Harness) -> None:
    assert await harness.bucket.take([CODE_10], 3) == Grant(granted=3, wait_s=0.0)

    grant = await harness.bucket.take([CODE_10], 5)
    assert grant.granted == 2
    assert grant.wait_s == harness.wait(0.1)


async def test_an_empty_bucket_grants_nothing_and_says_when_it_will(harness: Harness) -> None:
    await harness.bucket.take([CODE_10], 5)

    grant = await harness.bucket.take([CODE_10], 4)
    assert grant.granted == 0
    assert grant.wait_s == harness.wait(0.1)

    await harness.advance(grant.wait_s)
    assert (await harness.bucket.take([CODE_10], 4)).granted == 1


async def test_min_tokens_never_splits_a_message(harness: Harness) -> None:
    # Given 2 tokens left
    await harness.bucket.take([CODE_10], 3)

    # When a 3-segment message asks, it gets nothing and waits for the third token
    grant = await harness.bucket.take([CODE_10], 6, min_tokens=3)
    assert grant.granted == 0
    assert grant.wait_s == harness.wait(0.1)

    # Then after that wait it gets all three at once
    await harness.advance(grant.wait_s + 0.01)
    assert (await harness.bucket.take([CODE_10], 6, min_tokens=3)).granted == 3


async def test_several_buckets_grant_their_minimum_and_all_pay_it(harness: Harness) -> None:
    account = Limit(ACCOUNT, rate_per_s=20, capacity=8)

    # The code's bucket (5) binds; the account's pays 5 too.
    grant = await harness.bucket.take([CODE_10, account], 50)
    assert grant.granted == 5
    assert grant.wait_s == harness.wait(0.1)  # the slower bucket decides the wait

    account_alone = await harness.bucket.take([account], 50)
    assert account_alone.granted == 3
    assert account_alone.wait_s == harness.wait(0.05)


async def test_the_wait_is_the_longest_over_buckets(harness: Harness) -> None:
    account = Limit(ACCOUNT, rate_per_s=5, capacity=2)
    grant = await harness.bucket.take([CODE_10, account], 50)

    assert grant.granted == 2  # the account binds now
    assert grant.wait_s == harness.wait(0.2)  # and its next token is 200 ms away


async def test_a_fractional_rate_refills_one_token_every_two_seconds(harness: Harness) -> None:
    half = Limit(CODE, rate_per_s=0.5)  # capacity defaults to 1

    first = await harness.bucket.take([half], 5)
    assert first.granted == 1
    assert first.wait_s == harness.wait(2.0)

    await harness.advance(1.0)
    halfway = await harness.bucket.take([half], 5)
    assert halfway.granted == 0
    assert halfway.wait_s == harness.wait(1.0)

    await harness.advance(halfway.wait_s + 0.01)
    assert (await harness.bucket.take([half], 5)).granted == 1


async def test_a_message_bigger_than_the_burst_passes_a_full_bucket_and_leaves_debt(
    harness: Harness,
) -> None:
    long_code = Limit(CODE, rate_per_s=1)  # 1 segment/s, capacity 1

    assert (await harness.bucket.take([long_code], 3, min_tokens=3)).granted == 3

    after = await harness.bucket.take([long_code], 1)
    assert after.granted == 0
    assert after.wait_s == harness.wait(3.0)  # 2 tokens of debt, then 1 token


async def test_idle_keys_expire_after_a_few_refill_times(harness: Harness) -> None:
    await harness.bucket.take([CODE_10], 5)

    ttl_ms = await harness.ttl_ms(CODE)
    assert ttl_ms is not None
    assert 1_400 < ttl_ms <= 1_500  # 3 x (5 tokens / 10 per s)

    await harness.advance(1.55)
    assert await harness.ttl_ms(CODE) is None
    assert (await harness.bucket.take([CODE_10], 50)).granted == 5  # gone means full


async def test_greedy_demand_never_gets_more_than_burst_plus_rate_times_time(
    harness: Harness,
) -> None:
    fast = Limit(CODE, rate_per_s=40, capacity=4)
    granted, step_s = 0, 0.013
    start_s = harness.now_s()
    while (elapsed_s := harness.now_s() - start_s) < 1.0:
        granted += (await harness.bucket.take([fast], 7)).granted
        await harness.advance(step_s)

    # The last take happened before elapsed_s was read, at most one step earlier.
    assert granted <= 4 + 40 * elapsed_s
    assert granted >= 4 + 40 * (elapsed_s - step_s - harness.tol_s) - 1


async def test_the_default_burst_is_one_second_of_rate_and_at_least_one() -> None:
    assert Limit(CODE, rate_per_s=7).burst == 7
    assert Limit(CODE, rate_per_s=0.25).burst == 1
    assert Limit(CODE, rate_per_s=7, capacity=2).burst == 2


async def test_acquire_sleeps_within_its_budget(harness: Harness) -> None:
    await harness.bucket.take([CODE_10], 5)
    sleep = harness.advance

    got = await acquire(harness.bucket, [CODE_10], 3, max_wait_s=0.5, sleep=sleep)
    assert got.granted >= 1


async def test_acquire_hands_back_the_wait_when_it_exceeds_the_budget(harness: Harness) -> None:
    await harness.bucket.take([CODE_10], 5)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await harness.advance(seconds)

    got = await acquire(harness.bucket, [CODE_10], 3, max_wait_s=0.5, min_tokens=3, sleep=sleep)
    assert got.granted == 3
    assert sum(slept) == harness.wait(0.3)

    short = await acquire(harness.bucket, [CODE_10], 3, max_wait_s=0.05, min_tokens=3, sleep=sleep)
    assert short.granted == 0
    assert short.wait_s == harness.wait(0.3)


@pytest.mark.parametrize(
    ("tokens", "min_tokens", "limits"),
    [
        (1, 1, []),
        (1, 1, [CODE_10, CODE_10]),
        (-1, 1, [CODE_10]),
        (2, 0, [CODE_10]),
        (2, 3, [CODE_10]),
    ],
)
async def test_requests_that_make_no_sense_are_refused(
    harness: Harness, tokens: int, min_tokens: int, limits: list[Limit]
) -> None:
    with pytest.raises(ValueError):
        await harness.bucket.take(limits, tokens, min_tokens=min_tokens)


async def test_zero_tokens_is_a_free_no_op(harness: Harness) -> None:
    assert await harness.bucket.take([CODE_10], 0) == Grant(granted=0, wait_s=0.0)
    assert await harness.ttl_ms(CODE) is None


@pytest.mark.parametrize("rate_per_s", [0, -1, float("inf"), float("nan")])
def test_a_limit_needs_a_positive_finite_rate(rate_per_s: float) -> None:
    with pytest.raises(ValueError):
        Limit(CODE, rate_per_s=rate_per_s)


# --- the arithmetic the Lua script mirrors, as one table ---------------------------------------

L10 = Limit(CODE, rate_per_s=10, capacity=5)
L1 = Limit(CODE, rate_per_s=1)


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    [
        (refill, (0.0, 0.25, L10), 2.5),
        (refill, (4.0, 10.0, L10), 5.0),  # capped at the burst
        (refill, (1.0, -3.0, L10), 1.0),  # a clock that steps back adds nothing
        (available, (2.9999999999, L10, 1), 3),  # float error does not cost a token
        (available, (2.5, L10, 3), 2),
        (available, (1.0, L1, 3), 3),  # full: lends a message bigger than the burst
        (available, (0.99, L1, 3), 0),
        (wait_for, (0.0, L10, 1), 0.1),
        (wait_for, (2.0, L10, 3), 0.1),
        (wait_for, (-2.0, L1, 3), 3.0),  # debt, then the burst (not 3 tokens) is what's needed
        (wait_for, (4.0, L10, 1), 0.0),
        (idle_ttl_ms, (0.0, L10), 1_500),
        (idle_ttl_ms, (1.0, Limit(CODE, rate_per_s=100, capacity=1)), 1_000),  # the floor
        (idle_ttl_ms, (-2.0, L1), 9_000),  # debt of 2, burst of 1: 3 s to full, times 3
    ],
)
def test_bucket_arithmetic(
    function: Callable[..., float], args: tuple[object, ...], expected: float
) -> None:
    assert function(*args) == pytest.approx(expected)


# --- Redis only: the script survives losing its cache ------------------------------------------


async def test_take_survives_script_flush(redis_client: redis.asyncio.Redis) -> None:
    bucket = RedisTokenBucket(redis_client)
    assert (await bucket.take([CODE_10], 2)).granted == 2

    await redis_client.script_flush()

    assert (await bucket.take([CODE_10], 50)).granted == 3


async def test_take_survives_a_redis_restart_with_full_buckets(
    redis_client: redis.asyncio.Redis, redis_server: object
) -> None:
    bucket = RedisTokenBucket(redis_client)
    assert (await bucket.take([CODE_10], 5)).granted == 5

    redis_server.restart()  # type: ignore[attr-defined]

    # The pooled connection is dead; redis-py's default retry reconnects, the script reloads.
    assert (await bucket.take([CODE_10], 50)).granted == 5


async def test_the_memory_twin_forgets_expired_buckets() -> None:
    clock = FakeClock()
    bucket = MemoryTokenBucket(clock)
    for n in range(999):
        await bucket.take([Limit(f"{CODE}{n}", rate_per_s=10)], 1)
    clock.now_s += 10

    await bucket.take([CODE_10], 1)  # the 1,000th call sweeps

    assert len(bucket._buckets) <= 1

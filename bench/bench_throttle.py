"""Benchmark of the Redis token bucket: calls/s of ``take`` and granted-rate accuracy.

    python bench/bench_throttle.py                 # 20 s accuracy run
    python bench/bench_throttle.py --seconds 60    # the README figure

Without ``--redis-url`` it starts a private ``redis-server`` on a free port (never 6379's data).

1. ``take`` calls/s, one process, one call in flight at a time, a bucket that always grants:
   with 1 token and with 100 tokens per call (the script's cost does not depend on the count).
2. Accuracy: ``--processes`` spawned processes compete for one bucket of ``--rate`` tokens/s,
   each asking ``--tokens-per-call`` (partial grants allowed) and sleeping the returned wait.
   The first second (the initial burst of ``capacity`` tokens) is left out; the ratio is the
   tokens granted afterwards over ``rate x time``. The target is 1.00 +/- 0.02 over 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio  # noqa: E402

from broadcaster.constants import BUCKET_CODE_PREFIX  # noqa: E402
from broadcaster.errors import BroadcasterError  # noqa: E402
from broadcaster.net.loopback import free_port, redis_argv, wait_for_port  # noqa: E402
from broadcaster.throttle import Limit, RedisTokenBucket  # noqa: E402

#: Seconds left out at the start of the accuracy run: the burst is granted there.
BURST_SKIP_S = 1.0
#: Seconds given to spawned processes to import and connect before they start together.
SPAWN_GRACE_S = 3.0


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed; pass --redis-url")
    port = free_port()
    proc = subprocess.Popen(
        redis_argv(binary, port, tempfile.mkdtemp(prefix="bench-redis-")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 10, proc)
    except BroadcasterError:
        proc.kill()
        sys.exit("redis-server did not start")
    return proc, f"redis://127.0.0.1:{port}/0"


async def calls_per_s(redis_url: str, tokens: int, calls: int) -> float:
    client = redis.asyncio.Redis.from_url(redis_url)
    bucket = RedisTokenBucket(client)
    limit = Limit(BUCKET_CODE_PREFIX + f"bench-calls-{tokens}", rate_per_s=1e9, capacity=1e9)
    for _ in range(200):  # warm up: connect, load the script
        await bucket.take([limit], tokens)
    start = time.perf_counter()
    for _ in range(calls):
        await bucket.take([limit], tokens)
    elapsed_s = time.perf_counter() - start
    await client.aclose()
    return calls / elapsed_s


def compete(
    redis_url: str,
    key: str,
    rate_per_s: float,
    tokens_per_call: int,
    start_at: float,
    stop_at: float,
) -> tuple[list[tuple[float, int]], int]:
    """One competing process: (answered at, granted) of each non-zero grant, and calls made."""
    return asyncio.run(_compete(redis_url, key, rate_per_s, tokens_per_call, start_at, stop_at))


async def _compete(
    redis_url: str,
    key: str,
    rate_per_s: float,
    tokens_per_call: int,
    start_at: float,
    stop_at: float,
) -> tuple[list[tuple[float, int]], int]:
    client = redis.asyncio.Redis.from_url(redis_url)
    bucket = RedisTokenBucket(client)
    limit = Limit(key, rate_per_s=rate_per_s)
    grants: list[tuple[float, int]] = []
    calls = 0
    await client.ping()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    while (now := time.time()) < stop_at:
        grant = await bucket.take([limit], tokens_per_call)
        calls += 1
        if grant.granted:
            grants.append((time.time(), grant.granted))
        if grant.wait_s:
            await asyncio.sleep(min(grant.wait_s, stop_at - now))
    await client.aclose()
    return grants, calls


def accuracy(redis_url: str, args: argparse.Namespace) -> None:
    key = BUCKET_CODE_PREFIX + "bench-accuracy"
    start_at = time.time() + SPAWN_GRACE_S
    stop_at = start_at + args.seconds
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.processes, mp_context=context) as pool:
        futures = [
            pool.submit(compete, redis_url, key, args.rate, args.tokens_per_call, start_at, stop_at)
            for _ in range(args.processes)
        ]
        results = [f.result() for f in futures]
    grants = sorted(g for gs, _ in results for g in gs)
    calls = sum(c for _, c in results)
    total = sum(n for _, n in grants)
    end = grants[-1][0]
    steady_from = start_at + BURST_SKIP_S
    steady = sum(n for at, n in grants if at >= steady_from)
    steady_rate = steady / (end - steady_from)
    burst_bound = Limit(key, rate_per_s=args.rate).burst + args.rate * (end - start_at)
    print(
        f"accuracy: {args.processes} processes, {args.rate:g} tokens/s, "
        f"{args.tokens_per_call} tokens asked per call, {args.seconds:g} s, {calls:,} calls"
    )
    print(
        f"  granted after the first {BURST_SKIP_S:g} s: {steady_rate:.2f} tokens/s "
        f"= {steady_rate / args.rate:.4f} x configured"
    )
    print(
        f"  granted in all, burst included: {total} of at most {burst_bound:.0f} "
        f"(burst + rate x time) = {total / burst_bound:.4f}"
    )
    per_process = ", ".join(str(sum(n for _, n in gs)) for gs, _ in results)
    print(f"  per process: {per_process}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="accuracy run length (default 20)"
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="bucket rate, tokens/s (default 100)"
    )
    parser.add_argument("--processes", type=int, default=3, help="competing processes (default 3)")
    parser.add_argument(
        "--tokens-per-call", type=int, default=10, help="tokens asked per take (default 10)"
    )
    parser.add_argument(
        "--calls", type=int, default=20_000, help="calls per calls/s figure (default 20000)"
    )
    parser.add_argument("--redis-url", help="an existing Redis (default: a private redis-server)")
    args = parser.parse_args()

    proc = None
    redis_url = args.redis_url
    if redis_url is None:
        proc, redis_url = start_redis()
    try:
        for tokens in (1, 100):
            rate = asyncio.run(calls_per_s(redis_url, tokens, args.calls))
            print(
                f"take(): {rate:,.0f} calls/s with {tokens} token(s) a call "
                f"(one process, one call in flight)"
            )
        accuracy(redis_url, args)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(10)


if __name__ == "__main__":
    main()

"""Send-path benchmark, all figures in one run, printed as ratios.

1. loopback ceiling: a plain aiohttp client loop (100 in flight) against the simulator;
2. broadcaster unthrottled: a broadcast through the whole stack (Celery workers, Redis, SQLite or,
   with ``--database postgresql``, a PostgreSQL database of its own);
3. naive: one Celery task per message, each a blocking POST (what hand-rolled scripts do), POST
   only and with the row read and the status written back;
4. throttled accuracy: one code at a set rate, measured per second at the simulator.

This machine's speed drifts by up to 1.7x within minutes (the same code measured 100 and 175 us
of simulator CPU per request ten minutes apart), so 1-3 are read in rounds, next to each other,
and every ratio is taken within a round: the summary gives the median and the range over the
rounds. CPU per message (every broadcaster process, or every naive worker process, the
simulator excluded) is printed too: it depends less on how busy the machine is.

    python bench/bench_send.py                               # ~3 minutes
    python bench/bench_send.py --rounds 5 --throttle-s 60    # the README figures
    python bench/bench_send.py --database postgresql         # the same on PostgreSQL

Targets on 2 cores: >= 60 % of the loopback ceiling, >= 10x the naive sender, throttled rate
within +-2 % of the configured one and never above the bucket size in any second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from broadcaster.cli.devstack import DevStack, free_port  # noqa: E402
from broadcaster.config import Settings  # noqa: E402
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast  # noqa: E402
from broadcaster.services.codes import add_code  # noqa: E402
from broadcaster.store.db import engine_for, upgrade  # noqa: E402
from broadcaster.store.models import messages  # noqa: E402

NO_RECEIPTS = ["--dlr-delay-s", "3600"]  # receipts would load the same 2 cores mid-measurement


def sim(url: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body else None,
        method="POST" if body else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def write_list(path: Path, n: int, offset: int = 0) -> None:
    with path.open("w") as f:
        f.write("phone,name\n")
        for i in range(n):
            f.write(f"+5255{20_000_000 + offset + i:08d},Cliente {i}\n")


async def ceiling(base: str, n: int, in_flight: int = 100) -> float:
    import aiohttp

    sem = asyncio.Semaphore(in_flight)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as s:

        async def one(i: int) -> None:
            async with (
                sem,
                s.post(
                    f"{base}/messages",
                    headers={"Authorization": "Bearer simulator-key"},
                    json={"from": "1", "to": "+525500000000", "text": "x", "externalId": f"c{i}"},
                ) as r,
            ):
                await r.read()

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - start)


def accepted_rate(url: str, code: str) -> float:
    per = sorted(sim(url, f"/_sim/stats/rate?from={code}")["per_second"])
    if len(per) < 3:
        return float(sum(n for _, n in per))
    inner = per[1:-1]  # whole seconds only
    return sum(n for _, n in inner) / len(inner)


def run_broadcast(
    stack: DevStack, settings: Settings, code: str, mps: float, n: int, tmp: Path
) -> int:
    engine = engine_for(settings.database_url)
    add_code(engine, settings, code, "short", mps=mps)
    write_list(tmp / f"{code}.csv", n, offset=int(code) * 100)
    return create_from_file(
        engine, settings, tmp / f"{code}.csv", NewBroadcast(sender=code, text="Hola {name}")
    ).id


def wait_done(settings: Settings, bid: int, timeout_s: float) -> None:
    engine = engine_for(settings.database_url)
    deadline = time.monotonic() + timeout_s
    while get_broadcast(engine, bid).status != "COMPLETED":
        if time.monotonic() > deadline:
            raise SystemExit(f"broadcast {bid} did not complete in {timeout_s}s")
        time.sleep(0.2)


def tree_cpu_s(roots: list[int]) -> float:
    """CPU seconds (user + system) used so far by ``roots`` and every descendant still alive."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo.extend(child for child, (parent, _) in stats.items() if parent == pid)
    return total


def wait_idle(pids: list[int], *, below_cores: float = 0.15, timeout_s: float = 60.0) -> None:
    """Until ``pids`` (and children) use less than ``below_cores``: a ceiling read while workers
    still boot came out at two thirds of a quiet one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = tree_cpu_s(pids)
        time.sleep(0.5)
        if (tree_cpu_s(pids) - before) / 0.5 < below_cores:
            return


@contextlib.contextmanager
def naive_workers(redis_url: str, database_url: str, workers: int) -> Iterator[list[int]]:
    """The naive sender's Celery worker (its own broker db), running; yields its pid."""
    broker = redis_url.rsplit("/", 1)[0] + "/5"
    env = {
        **os.environ,
        "NAIVE_BROKER": broker,
        "NAIVE_DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "naive_sender",
            "worker",
            "-c",
            str(workers),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        cwd=ROOT / "bench",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ.update(NAIVE_BROKER=broker, NAIVE_DATABASE_URL=database_url)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        time.sleep(3)  # worker boot
        yield [proc.pid]
    finally:
        proc.terminate()
        proc.wait(10)


def naive(
    sim_url: str, pids: list[int], n: int, enqueue: Callable[[int], None]
) -> tuple[float, float]:
    """(messages/s, CPU seconds per message in the naive worker processes) for ``n`` sends."""
    before = sim(sim_url, "/_sim/stats")["accepted_total"]
    cpu = tree_cpu_s(pids)
    start = time.perf_counter()
    for i in range(n):
        enqueue(i)
    while sim(sim_url, "/_sim/stats")["accepted_total"] - before < n:
        time.sleep(0.1)
    rate = n / (time.perf_counter() - start)
    time.sleep(0.5)  # the last tasks write their rows after the gateway counted them
    return rate, (tree_cpu_s(pids) - cpu) / n


def naive_runs(
    stack: DevStack, settings: Settings, workers: int, n: int, tmp: Path, round_no: int
) -> dict[str, tuple[float, float]]:
    """Both naive variants: POST only, and read row + POST + write status (like for like)."""
    sim_url = f"http://127.0.0.1:{stack.simulator_port}"
    engine = engine_for(settings.database_url)
    code = f"{9001 + round_no}"
    add_code(engine, settings, code, "short", mps=1)
    write_list(tmp / f"naive{round_no}.csv", n, offset=900_000 + round_no * n)
    # Scheduled far ahead: broadcaster never starts it; the naive tasks send its rows.
    bid = create_from_file(
        engine,
        settings,
        tmp / f"naive{round_no}.csv",
        NewBroadcast(sender=code, text="Hola {name}", at="2099-01-01T00:00"),
    ).id
    with engine.connect() as conn:
        ids = [
            m
            for (m,) in conn.execute(
                sa.select(messages.c.id)
                .where(messages.c.broadcast_id == bid)
                .order_by(messages.c.id)
            )
        ]
    out = {}
    with naive_workers(stack.redis_url or "", settings.database_url, workers) as pids:
        import naive_sender

        out["post only"] = naive(
            sim_url,
            pids,
            n,
            lambda i: naive_sender.send_one.delay(
                f"{sim_url}/v1",
                "simulator-key",
                {"from": "9", "to": "+525500000001", "text": "x", "externalId": f"n{round_no}-{i}"},
            ),
        )
        out["row read + POST + status write"] = naive(
            sim_url,
            pids,
            n,
            lambda i: naive_sender.send_message.delay(
                f"{sim_url}/v1", "simulator-key", code, ids[i]
            ),
        )
    with engine.connect() as conn:
        sent = conn.execute(
            sa.select(sa.func.count()).where(
                messages.c.broadcast_id == bid, messages.c.status == "SENT"
            )
        ).scalar_one()
    if sent != n:
        raise SystemExit(f"the naive sender recorded {sent} of {n} messages as SENT")
    return out


def unthrottled(
    stack: DevStack, settings: Settings, code: str, n: int, tmp: Path
) -> tuple[float, float, float]:
    """(messages/s at the gateway, CPU seconds per message of broadcaster's processes, wall s)."""
    ours = [p.pid for name, p in stack.procs.items() if name != "simulator"]
    cpu = tree_cpu_s(ours)
    start = time.perf_counter()
    bid = run_broadcast(stack, settings, code, 1e5, n, tmp)
    wait_done(settings, bid, 600)
    total = time.perf_counter() - start
    return (
        accepted_rate(f"http://127.0.0.1:{stack.simulator_port}", code),
        (tree_cpu_s(ours) - cpu) / n,
        total,
    )


def start_stack(
    prefix: str, workers: int, database_url: str | None = None
) -> tuple[Path, DevStack, Settings]:
    """The whole stack in a fresh temp dir (SQLite there unless ``database_url``), receipts held
    back, and settings that see it."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    url = database_url or f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    stack = DevStack(
        database_url=url,
        simulator_port=free_port(),
        api_port=free_port(),
        send_workers=workers,
        simulator_args=NO_RECEIPTS,
        workdir=tmp,
        # secrets of its own: the processes refuse the defaults on PostgreSQL
        extra_env={
            "BROADCASTER_TICK_S": "1",
            "BROADCASTER_DLR_SECRET": "bench-send-dlr-secret",
            "BROADCASTER_CALLBACK_SECRET": "bench-send-callback-secret",
        },
    ).start()
    return tmp, stack, Settings(database_url=url, redis_url=stack.redis_url, tick_s=1)


@contextlib.contextmanager
def database(kind: str) -> Iterator[str | None]:
    """None for SQLite (the stack's temp dir); a PostgreSQL database of its own, dropped after."""
    if kind == "sqlite":
        yield None
        return
    from tests.support.services import PostgresDatabase

    pg = PostgresDatabase().start()
    try:
        yield pg.url
    finally:
        engine_for(pg.url).dispose()
        pg.stop()


@dataclass
class Round:
    """Readings taken next to each other: msg/s and CPU seconds per message."""

    ceiling: float
    ours: float
    our_cpu: float
    naive: dict[str, tuple[float, float]]


def one_round(
    stack: DevStack, settings: Settings, args: argparse.Namespace, tmp: Path, round_no: int
) -> Round:
    sim_url = f"http://127.0.0.1:{stack.simulator_port}"
    wait_idle([p.pid for p in stack.procs.values()])
    ceil = asyncio.run(ceiling(f"{sim_url}/v1", args.messages))
    print(f"round {round_no}: loopback ceiling (aiohttp, 100 in flight): {ceil:8,.0f} msg/s")
    rate, cpu, total = unthrottled(stack, settings, f"{7101 + round_no}", args.messages, tmp)
    print(
        f"round {round_no}: broadcaster, unthrottled, {args.workers} workers:  {rate:8,.0f} msg/s at the gateway "
        f"({args.messages:,} in {total:.1f} s incl. create + schedule; {cpu * 1e6:,.0f} us CPU per message "
        f"in all broadcaster processes)"
    )
    naives = naive_runs(stack, settings, args.workers, min(args.messages, 3000), tmp, round_no)
    for label, (slow, slow_cpu) in naives.items():
        print(
            f"round {round_no}: naive one-task-per-message, {args.workers} workers, {label}: {slow:8,.0f} msg/s "
            f"({slow_cpu * 1e6:,.0f} us CPU per message in its worker processes)"
        )
    return Round(ceil, rate, cpu, naives)


def spread(values: list[float], fmt: str) -> str:
    """``median (min-max)`` of per-round ratios."""
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def throttled(
    stack: DevStack, settings: Settings, args: argparse.Namespace, tmp: Path
) -> tuple[float, int, int]:
    """(granted msg/s at the gateway, most in one second, seconds counted) for one throttled code."""
    n = int(args.throttle_mps * (args.throttle_s + 5))
    run_broadcast(stack, settings, "7002", args.throttle_mps, n, tmp)
    time.sleep(args.throttle_s + 2)
    per = sorted(
        sim(f"http://127.0.0.1:{stack.simulator_port}", "/_sim/stats/rate?from=7002")["per_second"]
    )[1:-1]
    return sum(c for _, c in per) / max(1, len(per)), max(c for _, c in per), len(per)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="send worker processes")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of ceiling, broadcaster and naive readings"
    )
    parser.add_argument("--throttle-s", type=float, default=20.0)
    parser.add_argument("--throttle-mps", type=float, default=50.0)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with database(args.database) as url:
        run(args, url)


def run(args: argparse.Namespace, database_url: str | None) -> None:
    tmp, stack, settings = start_stack("bc-bench-send-", args.workers, database_url)
    print(f"database: {args.database}")
    try:
        rounds = [one_round(stack, settings, args, tmp, r) for r in range(1, args.rounds + 1)]
        rate, most, seconds = throttled(stack, settings, args, tmp)
        bucket = max(1.0, args.throttle_mps)
        print(
            f"throttled at {args.throttle_mps:g}/s over {seconds} s: {rate:.2f} msg/s, "
            f"max in one second {most} (bucket {bucket:g}; a token bucket allows at most "
            f"bucket + rate x 1 s = {bucket + args.throttle_mps:g} in any second, seen at the gateway "
            f"with network jitter at the second boundaries)"
        )
        print(f"\nratios within each round: median (min-max) over {len(rounds)} rounds")
        print(
            f"  broadcaster / loopback ceiling: {spread([r.ours / r.ceiling for r in rounds], '.2f')}"
            f"   (target >= 0.60)"
        )
        for label in rounds[0].naive:
            speed = spread([r.ours / r.naive[label][0] for r in rounds], ".1f")
            thrift = spread([r.naive[label][1] / r.our_cpu for r in rounds], ".1f")
            print(
                f"  broadcaster / naive sender, {label}: {speed}x throughput, {thrift}x less CPU per message"
                f"  (target >= 10x)"
            )
        print(
            f"  throttled / configured:         {rate / args.throttle_mps:6.3f} (target 0.98 .. 1.02)"
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()

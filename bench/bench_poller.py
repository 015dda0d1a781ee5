"""The poller's per-tick reconcile cost for one running broadcast of a million messages.

Builds the broadcast directly with repository inserts (statuses of a broadcast well under way),
then times, per tick: the full recount by status the tick used to run every time, and the
tick's whole reconcile step (expiry sweep, completion check, top-up, the recount when due) over
simulated ticks ``--tick-s`` apart. SQLite by default, or a private PostgreSQL database of its
own (dropped at the end).

    python bench/bench_poller.py                       # 1,000,000 messages on SQLite
    python bench/bench_poller.py --database postgresql
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from broadcaster.config import Settings  # noqa: E402
from broadcaster.domain.counts import derive_counters  # noqa: E402
from broadcaster.domain.states import BroadcastStatus, MessageStatus  # noqa: E402
from broadcaster.services import poller  # noqa: E402
from broadcaster.store import broadcasts_repo, codes_repo  # noqa: E402
from broadcaster.store.db import engine_for, upgrade, utcnow  # noqa: E402

BATCH = 10_000
#: (status, share of the messages): a broadcast most of the way through, not yet complete.
MIX = [
    (MessageStatus.DELIVRD, 0.60),
    (MessageStatus.SENT, 0.20),
    (MessageStatus.ENROUTE, 0.10),
    (MessageStatus.UNDELIV, 0.05),
    (MessageStatus.ERROR, 0.045),
    (MessageStatus.DEQUEUED, 0.005),
]


class Chunks:
    """The task queue: chunks are counted, not sent."""

    def __init__(self) -> None:
        self.chunks = 0

    def send_chunk(self, broadcast_id: int, ids: list[int], countdown_s: float = 0.0) -> None:
        self.chunks += 1


def build(url: str, n: int) -> int:
    """A RUNNING broadcast of ``n`` messages in MIX's statuses; its id."""
    engine = engine_for(url)
    now = utcnow()
    statuses = [s.value for s, share in MIX for _ in range(round(share * 1000))]
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn)
        bid = broadcasts_repo.insert_broadcast(
            conn,
            workspace_id=ws,
            name="bench-poller",
            sender_code="7777",
            template="Hola",
            status=BroadcastStatus.RUNNING.value,
            start_at=now,
            timezone="UTC",
            started_at=now,
        )
    for start in range(0, n, BATCH):
        rows = [
            {
                "broadcast_id": bid,
                "line": i + 1,
                "recipient": f"+1555{i:07d}",
                "text": "Hola",
                "encoding": "GSM",
                "segments": 1,
                "status": statuses[i % len(statuses)],
                "sent_at": now,
                "lease_until": now if statuses[i % len(statuses)] == "DEQUEUED" else None,
                "created_at": now,
            }
            for i in range(start, min(start + BATCH, n))
        ]
        with engine.begin() as conn:
            broadcasts_repo.insert_messages(conn, rows)
    return bid


def time_recount(url: str, bid: int, times: int) -> list[float]:
    """The old tick's recount (every tick, every broadcast), in ms."""
    engine = engine_for(url)
    out = []
    for _ in range(times):
        t0 = time.perf_counter()
        with engine.begin() as conn:
            counts = broadcasts_repo.status_counts(conn, bid)
            broadcasts_repo.set_counters(conn, bid, **derive_counters(counts))
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def time_ticks(url: str, ticks: int, tick_s: float) -> tuple[list[float], list[float]]:
    """The tick's reconcile step on simulated ticks ``tick_s`` apart: wall and CPU ms each.

    On SQLite the database runs in this process, so its CPU time is the whole cost of a tick,
    and unlike the wall time it does not grow with the machine's load (2 cores shared by every
    other job here); on PostgreSQL the server's share is not in it."""
    engine = engine_for(url)
    settings = Settings(database_url=url)
    offset = [0.0]
    poller.RECOUNTS = poller.Recounts(clock=lambda: time.monotonic() + offset[0])
    queue = Chunks()
    out, cpu = [], []
    for _ in range(ticks):
        report = poller.TickReport()
        t0, c0 = time.perf_counter(), time.process_time()
        poller.reconcile(engine, settings, queue, utcnow(), report)
        out.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
        if report.failed_steps:
            raise SystemExit(f"tick steps failed: {report.failed_steps}")
        offset[0] += tick_s
    return out, cpu


def run(url: str, args: argparse.Namespace) -> None:
    upgrade(url)
    t0 = time.perf_counter()
    bid = build(url, args.messages)
    print(f"{args.database}: built {args.messages:,} messages in {time.perf_counter() - t0:.1f} s")
    time_recount(url, bid, 2)  # warm the cache
    recount = time_recount(url, bid, 5)
    print(
        f"{args.database}: full recount (the old tick, every tick): median "
        f"{statistics.median(recount):.1f} ms per broadcast"
    )
    ticks, cpu = time_ticks(url, args.ticks, args.tick_s)
    recounted = sum(1 for t in ticks if t > statistics.median(ticks) * 4)
    print(
        f"{args.database}: reconcile step over {args.ticks} ticks {args.tick_s:g} s apart: "
        f"mean {statistics.mean(ticks):.1f} ms per tick (goal < 5), median "
        f"{statistics.median(ticks):.1f} ms, max {max(ticks):.1f} ms "
        f"({recounted} ticks with the full recount)"
    )
    print(
        f"{args.database}: CPU of this process per tick: mean {statistics.mean(cpu):.1f} ms, "
        f"median {statistics.median(cpu):.1f} ms (load average now "
        f"{os.getloadavg()[0]:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--tick-s", type=float, default=2.0)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    if args.database == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="bc-bench-poller-"))
        try:
            run(f"sqlite:///{tmp / 'bench.db'}", args)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # a million-message database
        return
    from tests.support.services import PostgresDatabase  # a database of its own, dropped after

    pg = PostgresDatabase().start()
    try:
        run(pg.url, args)
    finally:
        engine_for(pg.url).dispose()
        pg.stop()


if __name__ == "__main__":
    main()

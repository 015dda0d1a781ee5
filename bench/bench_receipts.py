"""Delivery receipts through the API server: CPU per receipt against CPU per send, and how soon
after the last send the last receipt is stored.

The whole stack (Celery workers, Redis, the simulator posting an ENROUTE 1 s and a final receipt
2 s after each accepted message, the API server storing them) on SQLite or on a private
PostgreSQL database of its own (dropped at the end); a broadcast per round. Printed per round:

- the API server's CPU per receipt and the send workers' CPU per message, and their ratio
  (goal: at most 1);
- the send time (broadcast created → last message SENT) and the settle lag (last receipt stored
  − last send − the simulator's receipt delay; goal: at most a quarter of the send time);
- the mean receipts per group the API applied (a group's receipts share one ``received_at``),
  and the simulator's CPU per receipt (it answers the sends too): with ``--connections`` posting
  connections (16 by default), no group is larger, and receipts land at most ``connections``
  per round trip (post, group window, commit, answer).

    python bench/bench_receipts.py                 # two rounds of 10,000 on SQLite
    python bench/bench_receipts.py --database postgresql --messages 10000
    python bench/bench_receipts.py --connections 64
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402
from bench_send import sim, tree_cpu_s, wait_idle, write_list  # noqa: E402

from broadcaster.cli.devstack import DevStack, free_port  # noqa: E402
from broadcaster.config import Settings  # noqa: E402
from broadcaster.services.broadcasts import NewBroadcast, create_from_file  # noqa: E402
from broadcaster.services.codes import add_code  # noqa: E402
from broadcaster.store.db import engine_for, upgrade  # noqa: E402

#: The simulator's delay from acceptance to the final receipt (the ENROUTE comes at half).
DLR_DELAY_S = 2.0
#: Receipts per message the simulator posts (ENROUTE and a final one).
RECEIPTS_PER_MESSAGE = 2
ROUND_TIMEOUT_S = 600


@dataclass
class Round:
    receipts: int
    api_us: float  # API CPU per receipt
    send_us: float  # send workers' CPU per message
    send_s: float  # created → last SENT
    lag_s: float  # last receipt stored − last send − DLR_DELAY_S
    sim_us: float  # the simulator's CPU per receipt (it also answers the sends)
    group: float  # mean receipts per group the API applied (0: not known)

    @property
    def ratio(self) -> float:
        return self.api_us / self.send_us


def receipts_sent(sim_url: str) -> int:
    return int(sim(sim_url, "/_sim/stats")["receipts_sent"])


def _times(url: str, bid: int) -> tuple[int, int, float, float]:
    """(receipts stored, groups they came in, s from create to the last send, s from the last send
    to the last receipt). A group's receipts share one ``received_at``: distinct ones count groups."""
    engine = engine_for(url)
    with engine.connect() as conn:
        created, last_sent = conn.execute(
            sa.text(
                "SELECT b.created_at, (SELECT max(sent_at) FROM messages WHERE broadcast_id = b.id)"
                " FROM broadcasts b WHERE b.id = :bid"
            ),
            {"bid": bid},
        ).one()
        count, groups, last_receipt = conn.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT r.received_at), max(r.received_at) FROM receipts r"
                " JOIN messages m ON m.id = r.message_id WHERE m.broadcast_id = :bid"
            ),
            {"bid": bid},
        ).one()

    def at(v: object) -> float:  # SQLite hands text back from raw SQL
        from datetime import datetime

        return (datetime.fromisoformat(v) if isinstance(v, str) else v).timestamp()  # type: ignore[union-attr,arg-type]

    return int(count), int(groups), at(last_sent) - at(created), at(last_receipt) - at(last_sent)


def one_round(stack: DevStack, settings: Settings, tmp: Path, n: int, round_no: int) -> Round:
    engine = engine_for(settings.database_url)
    sim_url = f"http://127.0.0.1:{stack.simulator_port}"
    code = f"{7301 + round_no}"
    add_code(engine, settings, code, "short", mps=1e5)
    write_list(tmp / f"{code}.csv", n, offset=round_no * n)
    api = [stack.procs["api"].pid]
    send = [stack.procs["worker-send"].pid]
    simulator = [stack.procs["simulator"].pid]
    wait_idle([p.pid for p in stack.procs.values()])
    before = receipts_sent(sim_url)
    api_cpu, send_cpu, sim_cpu = tree_cpu_s(api), tree_cpu_s(send), tree_cpu_s(simulator)
    start = time.perf_counter()
    bid = create_from_file(
        engine, settings, tmp / f"{code}.csv", NewBroadcast(sender=code, text="Hola {name}")
    ).id
    # a receipt counts as sent once the API answered 2xx
    while receipts_sent(sim_url) - before < n * RECEIPTS_PER_MESSAGE:
        if time.perf_counter() - start > ROUND_TIMEOUT_S:
            raise SystemExit(f"round {round_no}: receipts did not all arrive in 600 s")
        time.sleep(0.2)
    api_cpu, send_cpu = tree_cpu_s(api) - api_cpu, tree_cpu_s(send) - send_cpu
    sim_cpu = tree_cpu_s(simulator) - sim_cpu
    count, groups, send_s, last_gap_s = _times(settings.database_url, bid)
    return Round(
        count,
        api_cpu / count * 1e6,
        send_cpu / n * 1e6,
        send_s,
        last_gap_s - DLR_DELAY_S,
        sim_cpu / count * 1e6,
        count / groups if groups else 0.0,
    )


def run(url: str, args: argparse.Namespace, tmp: Path) -> list[Round]:
    upgrade(url)
    stack = DevStack(
        database_url=url,
        simulator_port=free_port(),
        api_port=free_port(),
        send_workers=2,
        simulator_args=[
            "--dlr-delay-s",
            str(DLR_DELAY_S),
            "--dlr-enroute",
            "--callback-workers",
            str(args.connections),
        ],
        workdir=tmp,
        # secrets of its own: the processes refuse the defaults on PostgreSQL
        extra_env={
            "BROADCASTER_TICK_S": "1",
            "BROADCASTER_DLR_SECRET": "bench-receipts-dlr-secret",
            "BROADCASTER_CALLBACK_SECRET": "bench-receipts-callback-secret",
        },
    ).start()
    settings = Settings(database_url=url, redis_url=stack.redis_url, tick_s=1)
    rounds = []
    try:
        for r in range(1, args.rounds + 1):
            one = one_round(stack, settings, tmp, args.messages, r)
            rounds.append(one)
            print(
                f"{args.database} round {r}: {args.messages:,} messages, {one.receipts:,} receipts "
                f"on {args.connections} connections; "
                f"API {one.api_us:,.0f} us CPU per receipt, send workers {one.send_us:,.0f} us "
                f"per message: ratio {one.ratio:.2f} (goal <= 1); sent in {one.send_s:.1f} s, "
                f"settle lag {one.lag_s:.2f} s after the last send + {DLR_DELAY_S:g} s receipt "
                f"delay (goal <= {one.send_s / 4:.2f} s); {one.group:.1f} receipts per group, "
                f"simulator {one.sim_us:,.0f} us CPU per receipt; load average "
                f"{os.getloadavg()[0]:.1f}",
                flush=True,
            )
    finally:
        stack.stop()
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--connections", type=int, default=16, help="connections the simulator posts receipts on"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bc-bench-receipts-"))
    try:
        if args.database == "sqlite":
            run(f"sqlite:///{tmp / 'bench.db'}", args, tmp)
            return
        from tests.support.services import PostgresDatabase  # a database of its own, dropped after

        pg = PostgresDatabase().start()
        try:
            run(pg.url, args, tmp)
        finally:
            engine_for(pg.url).dispose()
            pg.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the database, the stack's logs and Redis dir


if __name__ == "__main__":
    main()

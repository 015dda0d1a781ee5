"""Delivery receipts through the API server: CPU per receipt and how soon all are stored.

The whole stack on SQLite (Celery workers, Redis, the simulator posting receipts 2 s after each
accepted message, the API server storing them); a broadcast per round. CPU is the API server
process's own, per receipt.

    python bench/bench_receipts.py                 # two rounds of 10,000
    python bench/bench_receipts.py --messages 50000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_send import sim, tree_cpu_s, wait_idle, write_list  # noqa: E402

from broadcaster.config import Settings  # noqa: E402
from broadcaster.devstack import DevStack, free_port  # noqa: E402
from broadcaster.services.broadcasts import NewBroadcast, create_from_file  # noqa: E402
from broadcaster.services.codes import add_code  # noqa: E402
from broadcaster.store.db import engine_for, upgrade  # noqa: E402


def receipts_sent(sim_url: str) -> int:
    return int(sim(sim_url, "/_sim/stats")["receipts_sent"])


def one_round(
    stack: DevStack, settings: Settings, tmp: Path, n: int, round_no: int
) -> tuple[float, float]:
    """(seconds from create until the simulator had posted every receipt, API CPU s per receipt)."""
    engine = engine_for(settings.database_url)
    sim_url = f"http://127.0.0.1:{stack.simulator_port}"
    code = f"{7301 + round_no}"
    add_code(engine, settings, code, "short", mps=1e5)
    write_list(tmp / f"{code}.csv", n, offset=round_no * n)
    api = stack.procs["api"].pid
    before, cpu = receipts_sent(sim_url), tree_cpu_s([api])
    start = time.perf_counter()
    create_from_file(
        engine, settings, tmp / f"{code}.csv", NewBroadcast(sender=code, text="Hola {name}")
    )
    while receipts_sent(sim_url) - before < n:  # a receipt counts as sent once the API answered 2xx
        if time.perf_counter() - start > 600:
            raise SystemExit(f"round {round_no}: receipts did not all arrive in 600 s")
        time.sleep(0.2)
    return time.perf_counter() - start, (tree_cpu_s([api]) - cpu) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bc-bench-receipts-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    stack = DevStack(
        database_url=url,
        simulator_port=free_port(),
        api_port=free_port(),
        send_workers=2,
        simulator_args=["--dlr-delay-s", "2"],
        workdir=tmp,
        extra_env={"BROADCASTER_TICK_S": "1"},
    ).start()
    settings = Settings(database_url=url, redis_url=stack.redis_url, tick_s=1)
    try:
        wait_idle([p.pid for p in stack.procs.values()])
        for r in range(1, args.rounds + 1):
            took, cpu = one_round(stack, settings, tmp, args.messages, r)
            print(
                f"round {r}: {args.messages:,} receipts stored {took:.1f} s after the broadcast was created "
                f"(sent, then receipts 2 s later); API server {cpu * 1e6:,.0f} us CPU per receipt"
            )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()

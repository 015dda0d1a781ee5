"""Control latency: how many messages reach the gateway after a suspend is acknowledged, and how
long until sending stops. Also for stop.

    python bench/bench_control.py [--rounds 3]

The suspend is acknowledged when ``control.suspend`` returns (its transaction committed). The
gateway's accepted count is sampled every 20 ms from then on; sending "stopped" at the last
sample that still grew. Bound by design: what was already claimed, at most
SEND_CONCURRENCY per send-worker process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_send import run_broadcast, sim, start_stack  # noqa: E402

from broadcaster.services import control  # noqa: E402
from broadcaster.store.db import engine_for  # noqa: E402


def accepted(url: str) -> int:
    return sim(url, "/_sim/stats")["accepted_total"]


def after_ack(url: str, quiet_s: float = 1.5) -> tuple[int, float]:
    """(messages accepted after the ack, seconds until the last one), sampled until quiet."""
    t0, base = time.perf_counter(), accepted(url)
    last_n, last_t = base, t0
    while time.perf_counter() - last_t < quiet_s:
        time.sleep(0.02)
        n = accepted(url)
        if n != last_n:
            last_n, last_t = n, time.perf_counter()
    return last_n - base, last_t - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tmp, stack, settings = start_stack("bc-bench-control-", args.workers)
    engine = engine_for(settings.database_url)
    sim_url = f"http://127.0.0.1:{stack.simulator_port}"
    bound = args.workers * settings.send_concurrency
    try:
        for r in range(args.rounds):
            for action in ("suspend", "stop"):
                code = str(7100 + 2 * r + (action == "stop"))
                bid = run_broadcast(stack, settings, code, 1e5, 30_000, tmp)
                start = accepted(sim_url)
                while accepted(sim_url) - start < 3_000:
                    time.sleep(0.01)
                if action == "suspend":
                    control.suspend(engine, bid)
                else:
                    control.stop(engine, bid)
                n, secs = after_ack(sim_url)
                print(
                    f"{action:8} round {r + 1}: {n:4} messages after the ack (bound {bound}), "
                    f"sending stopped {secs * 1000:5.0f} ms after it"
                )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()

"""One long broadcast through the whole stack: steady rate, flat memory, CPU per process.

A million messages (by default) on SQLite with 2 send workers and the simulator, receipts held
back. Prints the time to create it, the time to complete it, the per-second rate at the gateway
(first and last ten seconds: does it slow down as the table fills?), each process's CPU per
message and peak RSS, and the simulator's duplicate count.

    python bench/bench_long_broadcast.py                  # ~3-4 minutes
    python bench/bench_long_broadcast.py --messages 200000
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_send import sim, start_stack, wait_idle, write_list  # noqa: E402

from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast  # noqa: E402
from broadcaster.services.codes import add_code  # noqa: E402
from broadcaster.store.db import engine_for  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def processes() -> dict[int, tuple[str, float, int]]:
    """pid -> (command line, CPU seconds, RSS bytes) of every live process."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                cmd = (
                    Path(f"/proc/{entry}/cmdline")
                    .read_bytes()
                    .replace(b"\0", b" ")
                    .decode(errors="replace")
                )
                rss = int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * PAGE
            except OSError:
                continue
            out[int(entry)] = (cmd[:80], (int(stat[11]) + int(stat[12])) / TICK, rss)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.messages
    tmp, stack, settings = start_stack("bc-bench-long-", 2)
    sim_url = f"http://127.0.0.1:{stack.simulator_port}"
    try:
        ours = {p.pid for p in stack.procs.values()}
        wait_idle(list(ours))
        engine = engine_for(settings.database_url)
        add_code(engine, settings, "7501", "short", mps=1e5)
        write_list(tmp / "long.csv", n)
        start = time.perf_counter()
        bid = create_from_file(
            engine, settings, tmp / "long.csv", NewBroadcast(sender="7501", text="Hola {name}")
        ).id
        print(f"created {n:,} messages in {time.perf_counter() - start:.1f} s", flush=True)
        before, start, peak = processes(), time.perf_counter(), collections.Counter[int]()
        while get_broadcast(engine, bid).status != "COMPLETED":
            if time.perf_counter() - start > 3600:
                raise SystemExit("the broadcast did not complete within an hour")
            for pid, (_, _, rss) in processes().items():
                peak[pid] = max(peak[pid], rss)
            time.sleep(2)
        took = time.perf_counter() - start
        after = processes()
        rates = [
            c for _, c in sorted(sim(sim_url, "/_sim/stats/rate?from=7501")["per_second"])[1:-1]
        ]
        print(
            f"completed in {took:.1f} s: {n / took:,.0f} msg/s on average; per second at the gateway: "
            f"median {statistics.median(rates):,.0f}, min {min(rates):,}, max {max(rates):,}"
        )
        print(f"first ten seconds: {rates[:10]}\nlast ten seconds:  {rates[-10:]}")
        used = {
            pid: cpu - before.get(pid, (cmd, 0.0, 0))[1] for pid, (cmd, cpu, _) in after.items()
        }
        for pid in sorted(used, key=lambda p: -used[p]):
            if used[pid] > 1:
                cmd, _, rss = after[pid]
                print(
                    f"  {used[pid] * 1e6 / n:6.1f} us CPU per message, peak RSS {max(peak[pid], rss) / 1e6:5.0f} MB  {cmd}"
                )
        stats = sim(sim_url, "/_sim/stats")
        print(
            f"accepted {stats['accepted_total']:,}, externalIds accepted twice: {len(stats['duplicates'])}"
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()

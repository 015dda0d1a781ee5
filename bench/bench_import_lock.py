"""A big import beside another writer, on SQLite: ingest rows/s and the writer's worst wait.

    python bench/bench_import_lock.py                 # 200k CSV rows
    python bench/bench_import_lock.py --rows 1000000

A child process writes one small row change every ~20 ms (what a send or a receipt costs the
database) while the main process imports the file through the real service. Printed: the
import's wall time, CPU time and rows/s, and the writer's worst and median wait and how many of
its writes failed (SQLite's busy timeout is 60 s). With one transaction per file the worst wait
was the whole import; with staged imports it is about one batch's INSERTs.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import TEXT, write_csv  # noqa: E402

#: Pause between two writes of the competing writer.
WRITE_EVERY_S = 0.02


def writer(url: str, started: mp.Event, stop: mp.Event, out: mp.Queue) -> None:
    """Touch one sender code per write, timing each transaction until ``stop``."""
    import sqlalchemy as sa

    from broadcaster.store.db import engine_for
    from broadcaster.store.models import sender_codes

    engine = engine_for(url)
    waits: list[float] = []
    failed = 0
    started.set()
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.update(sender_codes)
                    .where(sender_codes.c.code == "55501")
                    .values(mps=sender_codes.c.mps)
                )
        except sa.exc.OperationalError:
            failed += 1
        waits.append(time.perf_counter() - t0)
        time.sleep(WRITE_EVERY_S)
    out.put((waits, failed))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--no-writer", action="store_true", help="the import alone")
    args = parser.parse_args()

    from broadcaster.config import Settings
    from broadcaster.services.broadcasts import NewBroadcast, create_from_file
    from broadcaster.services.codes import add_code
    from broadcaster.store.db import engine_for, upgrade

    tmp = Path(tempfile.mkdtemp(prefix="bc-bench-lock-"))
    path = tmp / "list.csv"
    write_csv(path, args.rows)
    url = f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    settings = Settings(database_url=url)
    engine = engine_for(url)
    add_code(engine, settings, "55501", "short")

    ctx = mp.get_context("spawn")
    started, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=writer, args=(url, started, stop, out))
    if not args.no_writer:
        proc.start()
        started.wait()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    view = create_from_file(engine, settings, path, NewBroadcast(sender="55501", text=TEXT))
    elapsed = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    stop.set()
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    rows = view.expected_messages + view.invalid_rows + view.duplicates
    print(
        f"import: {rows:,} rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s "
        f"(CPU {cpu:.2f} s = {rows / cpu:,.0f} rows per CPU-second)"
    )
    if args.no_writer:
        return
    waits, failed = out.get()
    proc.join()
    print(
        f"writer: {len(waits)} writes, worst wait {max(waits) * 1000:,.0f} ms, "
        f"median {statistics.median(waits) * 1000:.1f} ms, failed {failed}"
    )


if __name__ == "__main__":
    main()

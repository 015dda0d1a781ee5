"""Ingest benchmark: recipient files into SQLite through the real service (parse, validate,
render, measure, store). Prints rows/s and peak RSS for 100k and 1M CSV rows and 200k XLSX rows.

    python bench/bench_ingest.py            # all figures
    python bench/bench_ingest.py --quick    # 100k CSV only

Each run is its own child process, so its peak RSS is its own. Targets (2 cores): 1M CSV rows
stored in <= 30 s, 200k XLSX rows in <= 10 s, peak RSS <= 200 MB and flat from 100k to 1M.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TEXT = "Hola {name}, tu saldo es {balance} MXN"


def write_csv(path: Path, n: int) -> None:
    rng = random.Random(n)
    with path.open("w") as f:
        f.write("phone,name,balance\n")
        for i in range(n):
            f.write(
                f"+5255{rng.randrange(10**7, 10**8)},Cliente {i},{rng.randrange(1, 10**6) / 100:.2f}\n"
            )


def write_xlsx(path: Path, n: int) -> None:
    import openpyxl

    rng = random.Random(n)
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("recipients")
    ws.append(["phone", "name", "balance"])
    for i in range(n):
        ws.append(
            [
                int(f"5255{rng.randrange(10**7, 10**8)}"),
                f"Cliente {i}",
                rng.randrange(1, 10**6) / 100,
            ]
        )
    wb.save(path)


def run(path: str, db: str, out: mp.Queue) -> None:
    from broadcaster.config import Settings
    from broadcaster.services.broadcasts import NewBroadcast, create_from_file
    from broadcaster.services.codes import add_code
    from broadcaster.store.db import engine_for, upgrade

    url = f"sqlite:///{db}"
    upgrade(url)
    settings = Settings(database_url=url)
    engine = engine_for(url)
    add_code(engine, settings, "55501", "short")
    start = time.perf_counter()
    view = create_from_file(engine, settings, path, NewBroadcast(sender="55501", text=TEXT))
    elapsed = time.perf_counter() - start
    out.put(
        (
            elapsed,
            view["expectedMessages"] + view["invalidRows"] + view["duplicates"],
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        )
    )


def measure(label: str, path: Path, tmp: Path) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=run, args=(str(path), str(tmp / f"{label}.db"), out))
    proc.start()
    elapsed, rows, rss_mb = out.get()
    proc.join()
    print(
        f"{label:>10}: {rows:>9,} rows in {elapsed:6.2f} s = {rows / elapsed:>9,.0f} rows/s, peak RSS {rss_mb:6.1f} MB"
    )
    return elapsed, rss_mb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bc-bench-ingest-"))
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    results = {}
    for n in sizes:
        f = tmp / f"{n}.csv"
        write_csv(f, n)
        results[n] = measure(f"csv {n // 1000}k", f, tmp)
    if not args.quick:
        x = tmp / "200k.xlsx"
        write_xlsx(x, 200_000)
        t, _ = measure("xlsx 200k", x, tmp)
        print(
            f"\n1M CSV: {results[1_000_000][0]:.1f} s (target <= 30 s, ratio {results[1_000_000][0] / 30:.2f})"
        )
        print(f"200k XLSX: {t:.1f} s (target <= 10 s, ratio {t / 10:.2f})")
        print(
            f"peak RSS 1M / 100k: {results[1_000_000][1] / results[100_000][1]:.2f} (flat = 1.0; target <= 200 MB)"
        )


if __name__ == "__main__":
    main()

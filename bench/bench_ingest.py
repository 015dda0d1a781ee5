"""Ingest benchmark: recipient files through the real service (parse, validate, render,
measure, store) into SQLite and PostgreSQL. Prints, in one run, rows/s and peak RSS for 100k
and 1M CSV rows on each database (the same file), and the XLSX reader's peak RSS (the reading
child's and the parent's) at 100k and 1M rows.

    python bench/bench_ingest.py                     # all figures
    python bench/bench_ingest.py --quick             # 100k CSV only
    python bench/bench_ingest.py --sizes 200000      # CSV sizes of your choice
    python bench/bench_ingest.py --pg-url URL        # PostgreSQL server (default local, trust)

PostgreSQL runs use a database of their own, ``bench_ingest_<pid>``, created and dropped here.

Each run is its own child process, so its peak RSS is its own. Targets (2 cores): 1M CSV rows
stored in <= 30 s, 200k XLSX rows in <= 10 s, peak RSS <= 200 MB and flat from 100k to 1M.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
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


PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def run(path: str, db: str, out: mp.Queue) -> None:
    from broadcaster.config import Settings
    from broadcaster.services.broadcasts import NewBroadcast, create_from_file
    from broadcaster.services.codes import add_code
    from broadcaster.store.db import engine_for, upgrade

    url = db if "://" in db else f"sqlite:///{db}"
    upgrade(url)
    settings = Settings(database_url=url)
    engine = engine_for(url)
    add_code(engine, settings, "55501", "short")
    cpu0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    server0 = _server_cpu(engine)
    start = time.perf_counter()
    view = create_from_file(engine, settings, path, NewBroadcast(sender="55501", text=TEXT))
    elapsed = time.perf_counter() - start
    cpu = _cpu(resource.RUSAGE_SELF) - cpu0[0], _cpu(resource.RUSAGE_CHILDREN) - cpu0[1]
    server = {pid: t - server0.get(pid, 0.0) for pid, t in _server_cpu(engine).items()}
    out.put(
        (
            elapsed,
            view.expected_messages + view.invalid_rows + view.duplicates,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            # the XLSX reading child (a waited-for subprocess) is the only child
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            cpu,
            sum(server.values()),
        )
    )


def _server_cpu(engine: object) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving this database (a local server: read from
    /proc); empty on SQLite, whose work is the storing process's own."""
    import sqlalchemy as sa

    if engine.dialect.name != "postgresql":  # type: ignore[attr-defined]
        return {}
    with engine.connect() as conn:  # type: ignore[attr-defined]
        pids = conn.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # not on this machine, or gone
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        return out


def _cpu(who: int) -> float:
    """User + system CPU seconds of this process (or of its waited-for children)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure(label: str, path: Path, db: str) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=run, args=(str(path), db, out))
    proc.start()
    elapsed, rows, rss_mb, child_mb, (cpu_self, cpu_child), cpu_server = out.get()
    proc.join()
    child = f", reader child {child_mb:6.1f} MB" if child_mb > 0 else ""
    print(
        f"{label:>16}: {rows:>9,} rows in {elapsed:6.2f} s = {rows / elapsed:>9,.0f} rows/s, "
        f"peak RSS {rss_mb:6.1f} MB{child}; CPU {cpu_self:.2f} s storing"
        f" + {cpu_child:.2f} s in the reader child = {1e6 * cpu_self / rows:.1f}"
        f" + {1e6 * cpu_child / rows:.1f} us/row"
        + (f", PostgreSQL server {1e6 * cpu_server / rows:.1f} us/row" if cpu_server else "")
        + f" (load {os.getloadavg()[0]:.1f})"
    )
    return elapsed, max(rss_mb, child_mb)


class PgDatabase:
    """A database of this run's own on the server, dropped afterwards."""

    def __init__(self, server: str) -> None:
        import sqlalchemy as sa

        self.name = f"bench_ingest_{os.getpid()}"
        self.admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        self.url = str(sa.engine.make_url(server).set(database=self.name).render_as_string(False))

    def fresh(self) -> str:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        return self.url

    def drop(self) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="*", help="CSV row counts")
    parser.add_argument("--xlsx-sizes", type=int, nargs="*", help="XLSX row counts")
    parser.add_argument("--pg-url", default=PG_SERVER, help="PostgreSQL server ('' = skip)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bc-bench-ingest-"))
    sizes = args.sizes or ([100_000] if args.quick else [100_000, 1_000_000])
    xlsx_sizes = (
        args.xlsx_sizes
        if args.xlsx_sizes is not None
        else []
        if args.quick
        else [100_000, 1_000_000]
    )
    pg = PgDatabase(args.pg_url) if args.pg_url else None
    results: dict[tuple[str, int], tuple[float, float]] = {}
    try:
        for n in sizes:
            f = tmp / f"{n}.csv"
            write_csv(f, n)
            results["sqlite", n] = measure(f"sqlite csv {n // 1000}k", f, str(tmp / f"{n}.db"))
            if pg is not None:
                results["pg", n] = measure(f"postgres csv {n // 1000}k", f, pg.fresh())
        for n in xlsx_sizes:
            x = tmp / f"{n}.xlsx"
            write_xlsx(x, n)
            results["xlsx", n] = measure(f"xlsx {n // 1000}k", x, str(tmp / f"x{n}.db"))
    finally:
        if pg is not None:
            pg.drop()
    print()
    for n in sizes:
        if ("pg", n) in results:
            ratio = results["pg", n][0] / results["sqlite", n][0]
            print(f"{n:,} CSV rows: PostgreSQL / SQLite time {ratio:.2f} (goal <= 1.0)")
    big = max(sizes)
    print(f"{big:,} CSV rows on SQLite: {results['sqlite', big][0]:.1f} s (goal <= 10 s for 1M)")
    if ("pg", big) in results:
        print(
            f"{big:,} CSV rows on PostgreSQL: {results['pg', big][0]:.1f} s (goal <= 30 s for 1M)"
        )
    for kind in ("sqlite", "pg", "xlsx"):
        ns = sorted(n for k, n in results if k == kind)
        if len(ns) > 1:
            a, b = results[kind, ns[0]][1], results[kind, ns[-1]][1]
            print(
                f"{kind} peak RSS {ns[-1]:,} / {ns[0]:,} rows: {b:.0f} / {a:.0f} MB = {b / a:.2f} (flat = 1.0; goal <= 200 MB)"
            )


if __name__ == "__main__":
    main()

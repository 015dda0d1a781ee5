"""Contact import benchmark: 1,000,000 contacts imported into a list next to a 1,000,000-row
broadcast import of the same file, in one run, on SQLite. Prints seconds, rows/s and peak RSS
of each (each in a child process of its own, so its peak RSS is its own).

    python bench/bench_contacts.py                  # 1,000,000 rows
    python bench/bench_contacts.py --rows 100000    # another size

The contact import runs twice (``contacts``: every row a new contact; ``update``: the same
file again, every row an update), and says how long its publishing transaction, the only one
that takes the database's write lock, lasted (``lock``).

The file has a header ``phone,first_name,balance``: the contact import stores ``first_name``
and ``balance`` as attributes, the broadcast renders ``Hola {first_name}, saldo {balance}``.
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

TEXT = "Hola {first_name}, saldo {balance}"


def write_csv(path: Path, n: int) -> None:
    rng = random.Random(n)
    with path.open("w") as f:
        f.write("phone,first_name,balance\n")
        for i in range(n):
            f.write(f"+5255{10**7 + i:08d},Cliente {i},{rng.randrange(1, 10**6) / 100:.2f}\n")


def run(kind: str, path: str, workdir: str, out: mp.Queue) -> None:
    from broadcaster.config import Settings
    from broadcaster.services.broadcasts import NewBroadcast, create_from_file
    from broadcaster.services.codes import add_code
    from broadcaster.services.contact_import import import_file
    from broadcaster.store.db import engine_for, upgrade

    url = f"sqlite:///{workdir}/{kind}.db"
    upgrade(url)
    engine = engine_for(url)
    settings = Settings(database_url=url, redis_url=None)
    lock = _time_publish()
    started = time.perf_counter()
    if kind == "contacts":
        import_file(engine, settings, path, "default", "everyone")
        lock.clear()
        started = time.perf_counter()  # the same file again: every row an update
        report = import_file(engine, settings, path, "default", "everyone")
        stored = report["updated"]
    elif kind == "create":
        report = import_file(engine, settings, path, "default", "everyone")
        stored = report["created"]
    else:
        add_code(engine, settings, "55501", "short")
        view = create_from_file(
            engine, settings, path, NewBroadcast(sender="55501", text=TEXT, name="bench")
        )
        stored = view.expected_messages
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put((stored, seconds, rss, sum(lock)))


def _time_publish() -> list[float]:
    """Seconds spent in the contact import's publishing transaction (the staging before it
    takes no lock on the database)."""
    from broadcaster.store import contact_stage

    spent: list[float] = []
    publish = contact_stage.publish

    def timed(*args: object, **kw: object) -> object:
        t = time.perf_counter()
        try:
            return publish(*args, **kw)  # type: ignore[arg-type]
        finally:
            spent.append(time.perf_counter() - t)

    contact_stage.publish = timed  # type: ignore[assignment]
    return spent


def measure(kind: str, path: Path, workdir: str) -> tuple[int, float, float, float]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=run, args=(kind, str(path), workdir, out))
    proc.start()
    got = out.get()
    proc.join()
    return got  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_contacts_") as workdir:
        path = Path(workdir) / "people.csv"
        write_csv(path, args.rows)
        print(f"{args.rows:,} rows, SQLite, one run each (noisy: a shared 2-core machine)")
        print(f"  load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for kind, label in (
            ("broadcast", "broadcast"),
            ("create", "contacts"),
            ("contacts", "update"),
        ):
            stored, seconds, rss, lock = measure(kind, path, workdir)
            print(
                f"  {label:9} import: {stored:>9,} stored in {seconds:6.1f} s "
                f"({stored / seconds:>9,.0f} rows/s), peak RSS {rss:6.1f} MB"
                + (f", write lock {lock:5.1f} s" if kind != "broadcast" else "")
            )
        print(f"  load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Ingest benchmark: recipient files through the real service (parse, validate, render,
measure, store) into SQLite and PostgreSQL. Prints, in one run, rows/s and peak RSS for 100k
and 1M CSV rows on each database (the same file), and the XLSX reader's peak RSS (the reading
child's and the parent's) and time at 100k and 1M rows, streamed and loaded by calamine side by
side, for two workbooks of the same rows: openpyxl's (inline strings) and one written the way
Excel writes (shared strings, a style per cell).

    python bench/bench_ingest.py                     # all figures
    python bench/bench_ingest.py --quick             # 100k CSV only
    python bench/bench_ingest.py --sizes 200000      # CSV sizes of your choice
    python bench/bench_ingest.py --sizes 100 --pg-url '' --xlsx-sizes 100000 1000000  # XLSX
    python bench/bench_ingest.py --pg-url URL        # PostgreSQL server (default local, trust)

PostgreSQL runs use a database of their own, ``bench_ingest_<pid>``, created and dropped here.

Each run is its own child process, so its peak RSS is its own. Targets (2 cores): 1M CSV rows
stored in <= 30 s, 200k XLSX rows in <= 10 s, peak RSS <= 200 MB and flat from 100k to 1M.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import random
import resource
import shutil
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


_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="recipients" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/styles" Target="styles.xml"/>'
        '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
    ),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
        '<borders count="1"><border/></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        "</cellXfs></styleSheet>"
    ),
}


def write_xlsx_excel(path: Path, n: int) -> None:
    """The rows of write_xlsx in the form Excel saves them: every text a shared string, the
    balance with a number format, each row with its spans (written by hand, streamed)."""
    import zipfile

    rng = random.Random(n)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in _XLSX_PARTS.items():
            zf.writestr(name, text)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                + f'<dimension ref="A1:C{n + 1}"/><sheetData>'.encode()
                + b'<row r="1" spans="1:3"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
                b'<c r="C1" t="s"><v>2</v></c></row>'
            )
            rows = []
            for i in range(n):
                r = i + 2
                rows.append(
                    f'<row r="{r}" spans="1:3"><c r="A{r}"><v>5255{rng.randrange(10**7, 10**8)}</v></c>'
                    f'<c r="B{r}" t="s"><v>{i + 3}</v></c>'
                    f'<c r="C{r}" s="1"><v>{rng.randrange(1, 10**6) / 100}</v></c></row>'
                )
                if len(rows) == 10_000:
                    f.write("".join(rows).encode())
                    rows = []
            f.write(("".join(rows) + "</sheetData></worksheet>").encode())
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
            f.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
                b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                + f'count="{n + 3}" uniqueCount="{n + 3}">'.encode()
                + b"<si><t>phone</t></si><si><t>name</t></si><si><t>balance</t></si>"
            )
            for start in range(0, n, 10_000):
                f.write(
                    "".join(
                        f"<si><t>Cliente {i}</t></si>" for i in range(start, min(n, start + 10_000))
                    ).encode()
                )
            f.write(b"</sst>")


PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def run(path: str, db: str, out: mp.Queue, stream_min_cells: int | None = None) -> None:
    if stream_min_cells is not None:
        from broadcaster.ingest import xlsx_reader

        xlsx_reader.XLSX_STREAM_MIN_CELLS = stream_min_cells
    from broadcaster.config import Settings
    from broadcaster.services.broadcasts import NewBroadcast, create_from_file
    from broadcaster.services.codes import add_code
    from broadcaster.store.db import engine_for, upgrade

    url = db if "://" in db else f"sqlite:///{db}"
    upgrade(url)
    settings = Settings(database_url=url)
    engine = engine_for(url)
    add_code(engine, settings, "55501", "short")
    sampler = ChildPeak()
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
            sampler.stop() / 1024**2,  # the XLSX reader or CSV producer, sampled
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


class ChildPeak:
    """Samples the RSS of this process's children (the XLSX reader, the CSV producer) every
    20 ms and keeps the highest. Not ru_maxrss: Linux carries a process's peak over fork and
    exec, so a child started by an 80 MB parent would report at least 80 MB whatever it does."""

    def __init__(self) -> None:
        import threading

        import psutil

        self.peak = 0
        self._me = psutil.Process()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._done.is_set():
            for child in self._me.children():
                with contextlib.suppress(psutil.Error):
                    self.peak = max(self.peak, child.memory_info().rss)
            self._done.wait(0.02)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def measure(
    label: str, path: Path, db: str, stream_min_cells: int | None = None
) -> tuple[float, float, float]:
    """One import in a child of its own: (seconds, peak RSS in MB, storing CPU us per row, the
    PostgreSQL server's included)."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    load = os.getloadavg()[0]
    proc = ctx.Process(target=run, args=(str(path), db, out, stream_min_cells))
    proc.start()
    elapsed, rows, rss_mb, child_mb, (cpu_self, cpu_child), cpu_server = out.get()
    proc.join()
    child = f", reader child {child_mb:6.1f} MB" if child_mb > 0 else ""
    print(
        f"{label:>26}: {rows:>9,} rows in {elapsed:6.2f} s = {rows / elapsed:>9,.0f} rows/s, "
        f"peak RSS {rss_mb:6.1f} MB{child}; CPU {cpu_self:.2f} s storing"
        f" + {cpu_child:.2f} s in the reader child = {1e6 * cpu_self / rows:.1f}"
        f" + {1e6 * cpu_child / rows:.1f} us/row"
        + (f", PostgreSQL server {1e6 * cpu_server / rows:.1f} us/row" if cpu_server else "")
        + f" (load {load:.1f} -> {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    return elapsed, max(rss_mb, child_mb), 1e6 * (cpu_self + cpu_server) / rows


def floor_run(db: str, out: mp.Queue) -> None:
    """The database's own cost of storing the rows just imported: the same rows copied, by one
    INSERT ... SELECT per batch of ``INSERT_BATCH_ROWS`` (each its own transaction, as the import
    commits), into a second broadcast of the same database. No Python touches a row, so this
    is SQLite's or PostgreSQL's B-tree and WAL work alone, the floor under any ingest through
    this schema; a little pessimistic, as the indexes already hold the first copy."""
    import sqlalchemy as sa

    from broadcaster.constants import INSERT_BATCH_ROWS
    from broadcaster.store import broadcasts_repo
    from broadcaster.store.db import engine_for
    from broadcaster.store.models import broadcasts, messages

    url = db if "://" in db else f"sqlite:///{db}"
    engine = engine_for(url)
    copied = [c for c in broadcasts.c if c.name != "id"]
    with engine.begin() as conn:
        src = conn.execute(sa.select(sa.func.min(broadcasts.c.id))).scalar_one()
        new = conn.execute(
            sa.insert(broadcasts)
            .from_select(copied, sa.select(*copied).where(broadcasts.c.id == src))
            .returning(broadcasts.c.id)
        ).scalar_one()
        lo, hi = conn.execute(
            sa.select(sa.func.min(messages.c.id), sa.func.max(messages.c.id)).where(
                messages.c.broadcast_id == src
            )
        ).one()
    names = ["created_at", *broadcasts_repo.MESSAGE_ROW_COLUMNS]
    chunk = sa.select(sa.literal(new), *(messages.c[n] for n in names)).where(
        messages.c.broadcast_id == src,
        messages.c.id >= sa.bindparam("lo"),
        messages.c.id < sa.bindparam("hi"),
    )
    insert = sa.insert(messages).from_select(["broadcast_id", *names], chunk)
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        insert = pg_insert(messages).from_select(["broadcast_id", *names], chunk)
        insert = insert.on_conflict_do_nothing()
    else:
        insert = insert.prefix_with("OR IGNORE")
    cpu0, server0 = _cpu(resource.RUSAGE_SELF), _server_cpu(engine)
    for start in range(lo, hi + 1, INSERT_BATCH_ROWS):
        with engine.connect() as conn, broadcasts_repo.import_cache(conn), conn.begin():
            conn.execute(insert, {"lo": start, "hi": start + INSERT_BATCH_ROWS})
    cpu = _cpu(resource.RUSAGE_SELF) - cpu0
    server = sum(t - server0.get(pid, 0.0) for pid, t in _server_cpu(engine).items())
    with engine.connect() as conn:  # psycopg gives no rowcount for INSERT ... SELECT here
        rows = conn.execute(
            sa.select(sa.func.count()).where(messages.c.broadcast_id == new)
        ).scalar_one()
    engine.dispose()
    out.put((rows, cpu + server))


def measure_floor(label: str, db: str, stored_cpu_us: float) -> None:
    """Print the database's own cost per row (:func:`floor_run`) beside the import's storing."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=floor_run, args=(db, out))
    proc.start()
    rows, cpu = out.get()
    proc.join()
    floor_us = 1e6 * cpu / rows
    print(
        f"{label:>26}: the database alone stores the same {rows:,} rows at {floor_us:.1f} us/row"
        f" of CPU; the import's storing {stored_cpu_us:.1f} us/row = {stored_cpu_us / floor_us:.2f}"
        " x the floor",
        flush=True,
    )


#: The XLSX readers compared: the default (big sheets streamed) and calamine for every sheet.
XLSX_READERS = {"stream": None, "calamine": 10**12}


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


XLSX_FLAVOURS = {"openpyxl": write_xlsx, "excel": write_xlsx_excel}


def measure_xlsx(
    tmp: Path, sizes: list[int], results: dict[tuple[str, int], tuple[float, float]]
) -> None:
    """Each size, each workbook flavour, each reader: one ingest into a fresh SQLite file."""
    for n in sizes:
        for flavour, write in XLSX_FLAVOURS.items():
            x = tmp / f"{n}-{flavour}.xlsx"
            write(x, n)
            for reader, min_cells in XLSX_READERS.items():
                key = f"xlsx {flavour} {reader}"
                db = str(tmp / f"x{n}{flavour}{reader}.db")
                results[key, n] = measure(f"{key} {n // 1000}k", x, db, min_cells)[:2]
            x.unlink()


def print_xlsx(sizes: list[int], results: dict[tuple[str, int], tuple[float, float]]) -> None:
    for n in sizes:
        for flavour in XLSX_FLAVOURS:
            stream = results[f"xlsx {flavour} stream", n]
            loaded = results[f"xlsx {flavour} calamine", n]
            print(
                f"xlsx {flavour} {n:,} rows: streamed / calamine time {stream[0] / loaded[0]:.2f}, "
                f"peak RSS {stream[1]:.0f} / {loaded[1]:.0f} MB"
            )


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
            db = str(tmp / f"{n}.db")
            elapsed, rss, stored_us = measure(f"sqlite csv {n // 1000}k", f, db)
            results["sqlite", n] = elapsed, rss
            measure_floor(f"sqlite csv {n // 1000}k", db, stored_us)
            if pg is not None:
                url = pg.fresh()
                elapsed, rss, stored_us = measure(f"postgres csv {n // 1000}k", f, url)
                results["pg", n] = elapsed, rss
                measure_floor(f"postgres csv {n // 1000}k", url, stored_us)
        measure_xlsx(tmp, xlsx_sizes, results)
    finally:
        if pg is not None:
            pg.drop()
        shutil.rmtree(tmp, ignore_errors=True)  # the generated files and databases
    print()
    for n in sizes:
        if ("pg", n) in results:
            ratio = results["pg", n][0] / results["sqlite", n][0]
            print(f"{n:,} CSV rows: PostgreSQL / SQLite time {ratio:.2f} (goal <= 1.0)")
    print_xlsx(xlsx_sizes, results)
    big = max(sizes)
    print(f"{big:,} CSV rows on SQLite: {results['sqlite', big][0]:.1f} s (goal <= 10 s for 1M)")
    if ("pg", big) in results:
        print(
            f"{big:,} CSV rows on PostgreSQL: {results['pg', big][0]:.1f} s (goal <= 30 s for 1M)"
        )
    kinds = list(dict.fromkeys(k for k, _ in results))
    for kind in kinds:
        ns = sorted(n for k, n in results if k == kind)
        if len(ns) > 1:
            a, b = results[kind, ns[0]][1], results[kind, ns[-1]][1]
            print(
                f"{kind} peak RSS {ns[-1]:,} / {ns[0]:,} rows: {b:.0f} / {a:.0f} MB = {b / a:.2f} (flat = 1.0; goal <= 200 MB)"
            )


if __name__ == "__main__":
    main()

"""Benchmark of the ingest readers alone: rows/s and peak memory.

Generates a 1,000,000-row CSV (and a 100,000-row one, to show memory does not grow with rows) and
a 200,000-row XLSX (openpyxl write_only) in a temp dir, then reads each in a fresh subprocess so
that ``ru_maxrss`` (peak RSS) belongs to that reader alone. Prints one line per file: "base RSS"
is the peak after imports, before reading; "peak RSS" the peak after reading every row.

    .venv/bin/python bench/bench_ingest_readers.py [--csv-rows N] [--xlsx-rows N] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("phone,name,amount\n")
        for i in range(rows):
            f.write(f"+5255{i:08d},Name {i % 1000},{i % 997}.{i % 100:02d}\n")


def write_xlsx(path: Path, rows: int) -> None:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Recipients")
    ws.append(["phone", "name", "amount"])
    for i in range(rows):
        ws.append([525500000000 + i, f"Name {i % 1000}", (i % 997) + 0.25])
    wb.save(path)


def write_json(path: Path, rows: int) -> None:
    items = ",".join(
        f'{{"to":"+5255{i:08d}","params":["Name {i % 1000}",{i % 997}.5]}}' for i in range(rows)
    )
    path.write_text(f'{{"from":"12345","text":"Hi {{0}}","to":[{items}]}}', encoding="utf-8")


def measure(path: str) -> dict[str, float]:
    """Read one file to the end (in this process); the caller runs this in a fresh subprocess."""
    sys.path.insert(0, str(ROOT))
    from broadcaster.ingest import RowProblem, open_recipients

    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    rows = problems = 0
    with open_recipients(path) as table:
        for item in table.rows:
            if isinstance(item, RowProblem):
                problems += 1
            else:
                rows += 1
    elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": rows,
        "problems": problems,
        "seconds": elapsed,
        "rows_per_s": rows / elapsed,
        "base_rss_mb": base_kb / 1024,
        "peak_rss_mb": peak_kb / 1024,
    }


def generate(tmp: Path, csv_rows: int, xlsx_rows: int, with_json: bool) -> list[Path]:
    files: list[Path] = []
    for rows in (csv_rows // 10, csv_rows):
        path = tmp / f"recipients_{rows}.csv"
        write_csv(path, rows)
        files.append(path)
    started = time.perf_counter()
    xlsx = tmp / f"recipients_{xlsx_rows}.xlsx"
    write_xlsx(xlsx, xlsx_rows)
    print(f"(wrote {xlsx.name} with openpyxl write_only in {time.perf_counter() - started:.1f} s)")
    files.append(xlsx)
    if with_json:
        path = tmp / "recipients_200000.json"
        write_json(path, 200_000)
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=200_000)
    parser.add_argument("--json", action="store_true", help="also a 200,000-recipient JSON batch")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    if args.generate:
        files = generate(Path(args.generate), args.csv_rows, args.xlsx_rows, args.json)
        print(json.dumps([str(f) for f in files]))
        return
    # This process stays small and only starts others: Linux carries ru_maxrss over fork and
    # exec, so a parent that had generated the files would inflate every child's figure.
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        extra = ["--json"] if args.json else []
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--generate",
                tmp,
                "--csv-rows",
                str(args.csv_rows),
                "--xlsx-rows",
                str(args.xlsx_rows),
                *extra,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        print("\n".join(out[:-1]))
        files = [Path(f) for f in json.loads(out[-1])]
        print(
            f"{'file':28} {'MB':>7} {'rows':>10} {'s':>7} {'rows/s':>10} {'base RSS':>9} {'peak RSS':>9}"
        )
        for path in files:
            out_text = subprocess.run(
                [sys.executable, __file__, "--measure", str(path)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out_text)
            print(
                f"{path.name:28} {path.stat().st_size / 1e6:7.1f} {r['rows']:10,} {r['seconds']:7.2f} "
                f"{r['rows_per_s']:10,.0f} {r['base_rss_mb']:7.0f}MB {r['peak_rss_mb']:7.0f}MB"
            )


if __name__ == "__main__":
    main()

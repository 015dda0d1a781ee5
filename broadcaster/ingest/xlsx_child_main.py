"""The reading side of :mod:`xlsx_child`: the interpreter that opens an untrusted workbook.

It bounds itself (address space, CPU, no core dumps) before it touches the file, loads or
streams one sheet (:func:`xlsx_reader.load_sheet`) and writes the protocol of
:mod:`xlsx_child` to stdout. Apart from ``xlsx_child`` so that the parent's side, which
``xlsx_reader`` imports, does not import the reader back.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from broadcaster.errors import FileRejected
from broadcaster.ingest.xlsx_child import BATCH_ROWS, XLSX_READER_CPU_S, death_reason
from broadcaster.ingest.xlsx_reader import load_sheet


def _limit_self(memory_bytes: int) -> None:
    """Bound this process before it touches the file (Linux; elsewhere, no limits)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not Linux
        return
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (XLSX_READER_CPU_S, XLSX_READER_CPU_S + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _messages(args: dict[str, Any]) -> Iterator[list[Any]]:
    more = (
        {}
        if args.get("stream_min_cells") is None
        else {"stream_min_cells": args["stream_min_cells"]}
    )
    name, names, records = load_sheet(
        Path(args["path"]),
        source=args["source"],
        sheet=args["sheet"],
        max_rows=args["max_rows"],
        **more,
    )
    yield ["table", name, names]
    batch: list[tuple[int, list[str]]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= BATCH_ROWS:
            yield ["rows", batch]
            batch = []
    if batch:
        yield ["rows", batch]
    yield ["end"]


def main() -> None:
    """Read one sheet as the parent asked (argv[1], JSON) and stream it to stdout."""
    args = json.loads(sys.argv[1])
    _limit_self(int(args["memory_bytes"]))
    out = sys.stdout.buffer
    try:
        try:
            for message in _messages(args):
                out.write(json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n")
        except FileRejected as exc:
            out.write(json.dumps(["rejected", exc.reason, exc.line]).encode() + b"\n")
        except MemoryError:
            reason = death_reason(1, "MemoryError", int(args["memory_bytes"]))
            out.write(json.dumps(["rejected", reason, None]).encode() + b"\n")
        out.flush()
    except BrokenPipeError:  # the parent stopped reading (it refused the file, or was told to)
        os._exit(0)


if __name__ == "__main__":
    main()

"""The entry points: open a recipient file (or uploaded bytes) as a RecipientTable.

Format is chosen by content first (zip with ``xl/workbook.xml`` = xlsx; first non-space ``[`` or
``{`` = json), the extension second (``.txt`` = txt, anything else = csv): a ``.csv`` that is
really a workbook is read as a workbook, an ``.xlsx`` that is really text is read as text.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from broadcaster.errors import FileRejected
from broadcaster.ingest.csv_reader import open_delimited
from broadcaster.ingest.detect import read_sample, sniff_format
from broadcaster.ingest.json_reader import open_json
from broadcaster.ingest.rows import RecipientTable
from broadcaster.ingest.xlsx_reader import open_xlsx

#: Default most data rows in one file (header not counted).
DEFAULT_MAX_ROWS = 2_000_000
#: Default largest file accepted, in bytes.
DEFAULT_MAX_FILE_BYTES = 500 * 1024 * 1024


@contextmanager
def open_recipients(
    path: str | Path,
    *,
    sheet: str | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    source: str | None = None,
) -> Iterator[RecipientTable]:
    """Open a recipient file; its rows are a lazy iterator valid inside the ``with`` block.

    Raises FileRejected (at once) for a file that cannot be read at all: missing, empty, too
    big, binary, a corrupt/encrypted/bomb workbook, bad JSON, a header with no phone column, no
    rows. ``table.rows`` may raise FileRejected while iterated (more than ``max_rows`` rows):
    the caller must then drop everything it took from the file. ``sheet`` picks a worksheet of
    an .xlsx by name (ignored for other formats). ``source`` names the file in messages (default:
    the path as given).
    """
    path = Path(path)
    source = source if source is not None else str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FileRejected(source, "no such file") from None
    except OSError as exc:
        raise FileRejected(source, f"cannot read the file: {exc.strerror}") from None
    if not path.is_file():
        raise FileRejected(source, "not a regular file")
    if size > max_file_bytes:
        raise FileRejected(source, f"file is {size:,} bytes, over the limit of {max_file_bytes:,}")
    with ExitStack() as stack:
        try:
            sample = read_sample(path)
        except OSError as exc:
            raise FileRejected(source, f"cannot read the file: {exc.strerror}") from None
        fmt = sniff_format(path, sample, source)
        if fmt == "xlsx":
            table = open_xlsx(path, source=source, sheet=sheet, max_rows=max_rows, stack=stack)
        elif fmt == "json":
            table = open_json(path, sample, source=source, max_rows=max_rows, stack=stack)
        else:
            table = open_delimited(
                path, sample, source=source, fmt=fmt, max_rows=max_rows, stack=stack
            )
        table.reopen = {
            "path": str(path),
            "sheet": sheet,
            "max_rows": max_rows,
            "max_file_bytes": max_file_bytes,
            "source": source,
        }
        yield table


@contextmanager
def read_recipients_bytes(data: bytes, filename: str, **kw: Any) -> Iterator[RecipientTable]:
    """Like :func:`open_recipients` for an upload held in memory; spills it to a temp file.

    ``filename`` (the client's name for it) gives the extension hint and names it in messages.
    """
    max_file_bytes = kw.get("max_file_bytes", DEFAULT_MAX_FILE_BYTES)
    name = os.path.basename(filename.replace("\\", "/")) or "upload"
    if len(data) > max_file_bytes:
        raise FileRejected(
            name, f"file is {len(data):,} bytes, over the limit of {max_file_bytes:,}"
        )
    suffix = Path(name).suffix if len(Path(name).suffix) <= 16 else ""
    with tempfile.TemporaryDirectory(prefix="broadcaster-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        kw.setdefault("source", name)
        with open_recipients(path, **kw) as table:
            yield table

"""Streaming readers for recipient files: CSV, TXT, XLSX, JSON -> a RecipientTable of rows.

::

    open_recipients(path) / read_recipients_bytes(data, filename)
      └── reader.py          size limits, format by content then extension
          ├── detect.py      format, encoding (BOMs, UTF-16 without BOM, UTF-8, cp1252), delimiter
          ├── csv_reader.py  delimited text, streamed (CSV, TSV, TXT)
          ├── xlsx_guard.py  zip bomb / corruption checks before parsing
          ├── xlsx_reader.py python-calamine, cells as text
          ├── json_reader.py Messangi batch, lists of numbers or objects
          └── header.py      header detection, phone column, rows and max_rows (CSV/TXT/XLSX)

Readers do not validate numbers or render templates; the domain does.
"""

from broadcaster.ingest.header import PHONE_HEADERS
from broadcaster.ingest.reader import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_ROWS,
    open_recipients,
    read_recipients_bytes,
)
from broadcaster.ingest.rows import RecipientRow, RecipientTable, RowProblem

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_ROWS",
    "PHONE_HEADERS",
    "RecipientRow",
    "RecipientTable",
    "RowProblem",
    "open_recipients",
    "read_recipients_bytes",
]

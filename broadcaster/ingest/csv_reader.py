"""Delimited text (CSV, TSV, TXT with one number per line): a streaming reader.

The file is decoded incrementally (``open(..., encoding=...)`` over a buffered binary stream) and
parsed by :mod:`csv` one record at a time, so memory stays flat whatever the file's size. Bytes
the detected encoding cannot decode become U+FFFD while reading and the row holding them becomes a
RowProblem: a file that is UTF-8 for 64 KB and Windows-1252 after that loses only those rows.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

from broadcaster.errors import FileRejected
from broadcaster.ingest.detect import SAMPLE_BYTES, decode_sample, detect_delimiter, detect_encoding
from broadcaster.ingest.header import Record, tabulate
from broadcaster.ingest.rows import RecipientTable, RowProblem

#: A cell longer than this many characters makes its row a RowProblem ("field too long").
MAX_FIELD_CHARS = 64 * 1024
#: What :mod:`csv` may hold in one field before it gives up (its default, 128 KiB, is too small
#: to survive a 1 MB line; an unclosed quote stops growing here instead of eating the memory).
CSV_FIELD_LIMIT_CHARS = 16 * 1024 * 1024
#: A physical line longer than this is never held whole: it is skipped and its row becomes a
#: RowProblem (a 500 MB file with no line break would otherwise become one 500 MB string).
MAX_LINE_CHARS = 4 * 1024 * 1024
#: Read buffer of the binary stream under the decoder, in bytes.
READ_BUFFER_BYTES = 1024 * 1024
_UNDECODABLE = "\ufffd"
# Stands in for a skipped over-long line: NUL sends the row to _row_problem, U+FDD0 (a Unicode
# noncharacter, never in real text) tells it why.
_LONG_LINE = "\x00\ufdd0\n"
_SEP_LINE = re.compile(r"\ufeff?sep=([,;\t|])[ \t]*(?:\r\n|\n|\r)", re.IGNORECASE)


def open_delimited(
    path: Path, sample: bytes, *, source: str, fmt: str, max_rows: int, stack: ExitStack
) -> RecipientTable:
    """Open a delimited text file; the stack closes it. ``fmt`` is ``"csv"`` or ``"txt"``."""
    encoding = detect_encoding(sample, source)
    complete = len(sample) < SAMPLE_BYTES
    text = decode_sample(sample, encoding)
    declared = _SEP_LINE.match(text)  # Excel's "sep=;" first line names the delimiter
    if declared:
        delimiter: str | None = declared.group(1)
    else:
        delimiter = detect_delimiter(text, complete=complete)
    if csv.field_size_limit() < CSV_FIELD_LIMIT_CHARS:
        csv.field_size_limit(CSV_FIELD_LIMIT_CHARS)  # process-wide; only ever raised
    f = stack.enter_context(
        open(path, encoding=encoding, errors="replace", newline="", buffering=READ_BUFFER_BYTES)  # noqa: SIM115
    )
    skipped = 0
    if declared:
        f.readline()
        skipped = 1
    layout, rows = tabulate(_records(f, delimiter or ",", source, skipped), source, max_rows)
    meta = {"encoding": encoding, "delimiter": delimiter, **layout.meta()}
    return RecipientTable(source=source, format=fmt, columns=layout.columns, meta=meta, rows=rows)


def _records(
    f: TextIO, delimiter: str, source: str, skipped: int = 0
) -> Iterator[Record | RowProblem]:
    """Non-empty records as (start line, trimmed cells); unreadable ones as RowProblems.

    The parser is strict about quotes so that damage is reported, not guessed: ``"Ana" Lopez``
    is a RowProblem, and a quote that never closes (it would swallow every line after it) rejects
    the whole file.
    """
    lines = _bounded_lines(f, MAX_LINE_CHARS)
    reader = csv.reader(lines, delimiter=delimiter, strict=True, skipinitialspace=True)
    end = skipped  # physical lines consumed so far
    while True:
        try:
            for row in reader:
                start, end = end + 1, skipped + reader.line_num
                if not row:
                    continue
                joined = "\x1f".join(row)
                if len(joined) > MAX_FIELD_CHARS or "\x00" in joined or _UNDECODABLE in joined:
                    problem = _row_problem(start, row, joined)
                    if problem is not None:
                        yield problem
                        continue
                cells = [cell.strip() for cell in row]
                if any(cells):
                    yield start, cells
            return
        except csv.Error as exc:
            start, end = end + 1, skipped + reader.line_num
            if "unexpected end of data" in str(exc):
                raise FileRejected(
                    source,
                    f"unclosed quote: the quoted field opened on line {start:,} "
                    f"never closes (it runs to line {end:,}, the end of the file)",
                    start,
                ) from None
            # The parser drops the rest of the bad line, resets, and goes on with the next one.
            yield RowProblem.of(start, "", _explain(str(exc)))


def _bounded_lines(f: TextIO, limit: int) -> Iterator[str]:
    """The physical lines of ``f``, none held longer than ``limit`` (see MAX_LINE_CHARS)."""
    readline = f.readline
    while True:
        line = readline(limit)
        if not line:
            return
        if len(line) == limit and line[-1] not in "\r\n":
            while True:  # drop the rest of the line, a limit at a time
                rest = readline(limit)
                if len(rest) < limit or rest[-1] in "\r\n":
                    break
            yield _LONG_LINE
            continue
        yield line


def _row_problem(line: int, row: list[str], joined: str) -> RowProblem | None:
    if _LONG_LINE[:2] in joined:
        return RowProblem.of(line, "", f"line too long: over {MAX_LINE_CHARS:,} characters")
    longest = max(row, key=len)
    if len(longest) > MAX_FIELD_CHARS:
        hint = " (an unclosed quote?)" if "\n" in longest or "\r" in longest else ""
        return RowProblem.of(
            line,
            longest,
            f"field too long: {len(longest):,} characters, over {MAX_FIELD_CHARS:,}{hint}",
        )
    if "\x00" in joined:
        return RowProblem.of(
            line,
            joined.replace("\x1f", ",").replace("\x00", "\\0"),
            "NUL byte in the row: binary data?",
        )
    if _UNDECODABLE in joined:
        return RowProblem.of(
            line,
            joined.replace("\x1f", ","),
            "undecodable bytes: the row is not in the file's encoding",
        )
    return None


def _explain(error: str) -> str:
    if "expected after" in error:
        return (
            "bad quoting: a closing quote must be followed by the delimiter "
            f"(write a quote inside a quoted field as two quotes) [{error}]"
        )
    if "field limit" in error:
        return f"field too long: over {CSV_FIELD_LIMIT_CHARS:,} characters [{error}]"
    return f"unreadable record: {error}"

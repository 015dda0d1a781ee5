"""Header row detection, the phone column, and turning cells into rows (shared by CSV, TXT, XLSX).

A reader hands over its non-empty records as ``(line, cells)`` with cells already trimmed text,
interleaved with the RowProblems it met. :func:`tabulate` looks at the first record, decides
whether it is a header and where the phone column is, and returns the columns plus a lazy
iterator of rows that enforces ``max_rows``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from broadcaster.errors import FileRejected
from broadcaster.ingest.rows import RecipientRow, RowProblem

#: Header names that mark the phone column, compared after :func:`normalize_header`.
PHONE_HEADERS: tuple[str, ...] = (
    "phone",
    "phonenumber",
    "phoneno",
    "mobile",
    "mobilenumber",
    "mobilephone",
    "msisdn",
    "to",
    "number",
    "cell",
    "cellphone",
    "cellular",
    "telephone",
    "tel",
    "destination",
    "recipient",
    "telefono",
    "numerotelefono",
    "celular",
    "numerocelular",
    "movil",
    "numeromovil",
    "numero",
)
_PHONE_HEADER_SET = frozenset(PHONE_HEADERS)

Record = tuple[int, list[str]]


def normalize_header(name: str) -> str:
    """``" Phone_Number "`` -> ``"phonenumber"``, ``"Teléfono"`` -> ``"telefono"``, ``"to:"`` -> ``"to"``."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in folded if ch.isalnum() and not unicodedata.combining(ch))


def is_phone_header(name: str) -> bool:
    return normalize_header(name) in _PHONE_HEADER_SET


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the phone is, and the params columns' names (None without a header)."""

    phone_index: int
    columns: tuple[str, ...] | None
    #: The phone column's own header name; None without a header.
    phone_header: str | None = None

    def meta(self) -> dict[str, object]:
        """Facts for RecipientTable.meta: ``phone_column`` (0-based) and ``phone_header``."""
        return {"phone_column": self.phone_index, "phone_header": self.phone_header}


def detect_layout(first: list[str], source: str, line: int) -> Layout:
    """Decide from the first non-empty record whether it is a header, and find the phone column.

    A header is a row with a cell named like a phone column, or whose first cell has no digit
    (a phone number always has some). A header without a phone-named column is refused: guessing
    would send messages to whatever the first column holds.
    """
    width = len(first)
    while width > 1 and not first[width - 1]:
        width -= 1  # trailing delimiters / Excel's padding: no column there
    first = first[:width]
    for index, cell in enumerate(first):
        if is_phone_header(cell):
            return Layout(index, tuple(c for i, c in enumerate(first) if i != index), cell)
    if _has_digit(first[0]):
        return Layout(0, None)
    names = ", ".join(repr(c) for c in first if c) or "(empty)"
    raise FileRejected(
        source,
        "no phone column found in the header row (name one column phone, mobile, msisdn, to or "
        f"number); columns: {names}",
        line,
    )


def split_cells(line: int, cells: list[str], layout: Layout) -> RecipientRow:
    """One record's cells -> a row: phone out, params padded to the header or right-trimmed."""
    index = layout.phone_index
    if index == 0:
        phone = cells[0]
        params = cells[1:]
    elif index < len(cells):
        phone = cells[index]
        params = cells[:index] + cells[index + 1 :]
    else:
        phone = ""
        params = cells
    columns = layout.columns
    width = 0 if columns is None else len(columns)
    count = len(params)
    if count < width:
        params = params + [""] * (width - count)
    elif count > width:
        while count > width and not params[count - 1]:
            count -= 1
        params = params[:count]
    return RecipientRow(line, phone, tuple(params))


def tabulate(
    records: Iterator[Record | RowProblem], source: str, max_rows: int
) -> tuple[Layout, Iterator[RecipientRow | RowProblem]]:
    """Find the layout from the first record and return it with the lazy rows.

    Refuses (FileRejected, at once) a file with no records or with a header and nothing after
    it; the returned iterator raises FileRejected once more than ``max_rows`` rows came out.
    """
    leading: list[RowProblem] = []
    first: Record | None = None
    for item in records:
        if isinstance(item, RowProblem):
            leading.append(item)
            continue
        first = item
        break
    if first is None:
        if leading:
            p = leading[0]
            raise FileRejected(source, f"no readable rows: {p.reason}", p.line)
        raise FileRejected(source, "no rows: the file holds no recipients")
    layout = detect_layout(first[1], source, first[0])
    pending: list[Record | RowProblem] = []
    if layout.columns is None:
        pending.append(first)
    else:
        for item in records:  # peek: a header alone is no broadcast
            pending.append(item)
            break
        if not pending and not leading:
            raise FileRejected(source, "no rows after the header row", first[0])
    return layout, _rows(leading, pending, records, layout, source, max_rows)


def _rows(
    leading: list[RowProblem],
    pending: list[Record | RowProblem],
    records: Iterator[Record | RowProblem],
    layout: Layout,
    source: str,
    max_rows: int,
) -> Iterator[RecipientRow | RowProblem]:
    count = 0
    for item in (*leading, *pending):
        count += 1
        _check_count(count, max_rows, item, source)
        yield item if isinstance(item, RowProblem) else split_cells(item[0], item[1], layout)
    del leading[:], pending[:]
    phone_index = layout.phone_index
    width = 0 if layout.columns is None else len(layout.columns)
    for item in records:
        count += 1
        if count > max_rows:
            _check_count(count, max_rows, item, source)
        if isinstance(item, RowProblem):
            yield item
            continue
        line, cells = item
        # Fast path of split_cells for the common shape: phone first, as wide as the header.
        if phone_index == 0 and (len(cells) == width + 1 if width else cells[-1] != ""):
            yield RecipientRow(line, cells[0], tuple(cells[1:]))
        else:
            yield split_cells(line, cells, layout)


def _check_count(count: int, max_rows: int, item: Record | RowProblem, source: str) -> None:
    if count > max_rows:
        line = item.line if isinstance(item, RowProblem) else item[0]
        raise FileRejected(source, f"more than {max_rows:,} rows", line)

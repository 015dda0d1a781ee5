"""How big a worksheet will be once loaded, measured on its XML while the zip guard inflates it.

python-calamine loads a sheet as a dense grid from its first used cell to its last. Two cells at
``A1`` and ``XFD1048576`` make a 1 KB file that asks for 17 billion cells: the allocation aborts
the whole process (a native abort, not a Python exception). So the extent of every worksheet is
taken from the cell references in its XML (``<c r="B7">``, ``<row r="7">``) before calamine sees
the file, and a sheet whose grid would be too large is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Most cells (rows x columns of the used range) a loaded sheet may hold. calamine keeps ~32 bytes
#: a cell, so this caps its memory near 640 MB; 1,000,000 rows x 20 columns still fit.
XLSX_MAX_CELLS = 20_000_000
# ' r="B7"' in a <c> tag or ' r="7"' in a <row> tag (attribute order varies, so not anchored).
# Two patterns with one group each: far cheaper than one pattern with two groups.
_REF_ROW = re.compile(rb' r="[A-Z]{0,3}([0-9]{1,9})"')
_REF_COLUMN = re.compile(rb' r="([A-Z]{1,3})[0-9]')
#: Bytes of the previous chunk scanned again with the next, so a reference cut in two is seen.
OVERLAP_BYTES = 32


def column_number(letters: bytes) -> int:
    """``b"A"`` -> 1, ``b"XFD"`` -> 16384."""
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


@dataclass
class SheetExtent:
    """Rows and the used range of one worksheet, fed its XML a chunk at a time."""

    row_tags: int = 0
    first_row: int = 0  # 0: no reference seen
    last_row: int = 0
    first_col: int = 0
    last_col: int = 0

    def feed(self, tail: bytes, fresh: bytes) -> None:
        """Scan ``fresh`` bytes; ``tail`` is the end of the previous chunk (OVERLAP_BYTES)."""
        window = tail + fresh
        self.row_tags += window.count(b"<row") - tail.count(b"<row")
        # Seeing a reference twice (in the overlap) does not change an extent.
        rows = list(map(int, _REF_ROW.findall(window)))
        if rows:
            low, high = min(rows), max(rows)
            self.first_row = low if not self.first_row else min(self.first_row, low)
            self.last_row = max(self.last_row, high)
        columns = [column_number(c) for c in set(_REF_COLUMN.findall(window))]
        if columns:
            low, high = min(columns), max(columns)
            self.first_col = low if not self.first_col else min(self.first_col, low)
            self.last_col = max(self.last_col, high)

    @property
    def rows(self) -> int:
        """Rows of the used range (at least the number of ``<row>`` elements)."""
        spanned = self.last_row - self.first_row + 1 if self.last_row else 0
        return max(self.row_tags, spanned)

    @property
    def columns(self) -> int:
        return self.last_col - self.first_col + 1 if self.last_col else 1

    @property
    def cells(self) -> int:
        """Cells of the dense grid calamine will allocate."""
        return self.rows * self.columns

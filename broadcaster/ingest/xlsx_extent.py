"""How big a worksheet will be once loaded, measured on its XML while the zip guard inflates it.

python-calamine loads a sheet as a dense grid from its first used cell to its last, and reserves
room for the whole ``<dimension ref="…">`` up front. Two cells at ``A1`` and ``XFD1048576`` (or a
dimension saying so) make a 1 KB file that asks for 17 billion cells: the allocation aborts the
whole process (a native abort, not a Python exception). So the extent of every part calamine may
read is taken from its XML before calamine sees the file, and a sheet whose grid would be too
large is refused.

The XML is parsed for real (expat, fed the inflated bytes a chunk at a time: memory stays flat),
so attribute quoting, spacing, namespace prefixes and character references cannot hide a
reference the way they could from a pattern. A document type declaration is refused outright:
Excel never writes one, and without one no entity can be declared, so no entity bomb expands.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from xml.parsers import expat

from broadcaster.errors import FileRejected

#: Most cells (rows x columns of the used range) a loaded sheet may hold. calamine keeps ~32 bytes
#: a cell, so this caps its memory near 640 MB; 1,000,000 rows x 20 columns still fit.
XLSX_MAX_CELLS = 20_000_000
#: Excel's grid: the last cell is XFD1048576. A reference beyond it is no Excel file's.
EXCEL_MAX_ROW = 1_048_576
EXCEL_MAX_COLUMN = 16_384
_CELL_REF = re.compile(r"([A-Za-z]{1,4})([0-9]{1,10})")
_ROW_NUMBER = re.compile(r"[0-9]{1,10}")
#: Longest start tag of a cell, row or dimension (attributes and all) taken from a sheet.
MAX_TAG_BYTES = 64 * 1024
# The lexer's patterns (see SheetScan). A name's prefix is anything up to a colon.
_PREFIX = rb"(?:[^\s/<>!?:=\"']{1,64}:)?"
_ANY_C = re.compile(rb"<c[\s/>]")  # unprefixed: a literal start makes these fast
_ANY_ROW = re.compile(rb"<row[\s/>]")
# any prefixed one: tag by tag (a prefixed sheetData: not plain, which the stream needs)
_PREFIXED = re.compile(rb":(?:c|row|dimension|sheetData)[\s/>]")
_ANY_DIMENSION = re.compile(rb"<" + _PREFIX + rb"dimension[\s/>]")
_ANY_TAG = re.compile(rb"<" + _PREFIX + rb"(?:c|row|dimension)[\s/>]")
_INTEREST_AT = re.compile(rb"<" + _PREFIX + rb"(?:c|row|dimension)(?:[\s/>]|\Z)")
_PREFIX_BYTES = 80  # a tail shorter than this may still become a tag of interest
_PLAIN_C_ROW = re.compile(rb'<c r="[A-Z]{1,3}([0-9]{1,7})"')
_PLAIN_C_COL = re.compile(rb'<c r="([A-Z]{1,3})[0-9]{1,7}"')
_PLAIN_ROW = re.compile(rb'<row r="([0-9]{1,7})"')
_TAG_AT = re.compile(rb"""<([^\s/<>!?=]+)((?:\s+[^\s/<>=]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*/?>""")
_ATTRIBUTE = re.compile(rb"""([^\s/<>=]+)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')""")
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_UTF8_NAMES = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})


def _utf8_document(head: bytes) -> bool:
    """Whether a part's first bytes say UTF-8 (the lexer reads bytes as UTF-8/ASCII)."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    if not head.startswith(b"<"):
        return False
    if not head.startswith(b"<?xml"):
        return True
    end = head.find(b"?>", 0, 1024)
    if end < 0:
        return False
    declared = _DECLARED_ENCODING.match(head[: end + 2])
    return declared is None or declared[1].lower() in _UTF8_NAMES


def column_number(letters: bytes | str) -> int:
    """``b"A"`` -> 1, ``b"XFD"`` -> 16384 (case-insensitive)."""
    n = 0
    for ch in letters.upper() if isinstance(letters, str) else letters.upper().decode("ascii"):
        n = n * 26 + ord(ch) - 64
    return n


@dataclass
class SheetExtent:
    """Rows and the used range of one worksheet part (0: nothing seen yet)."""

    row_tags: int = 0
    #: Whether the part is in the plain form spreadsheet applications write: UTF-8, no namespace
    #: prefixes on its cells and rows, no comments, CDATA sections or processing instructions.
    #: Only then may :mod:`xlsx_stream` read it by patterns.
    plain: bool = True
    first_row: int = 0
    last_row: int = 0
    first_col: int = 0
    last_col: int = 0

    def add_row(self, row: int) -> None:
        self.first_row = row if not self.first_row else min(self.first_row, row)
        self.last_row = max(self.last_row, row)

    def add_cell(self, row: int, col: int) -> None:
        self.add_row(row)
        self.first_col = col if not self.first_col else min(self.first_col, col)
        self.last_col = max(self.last_col, col)

    @property
    def seen(self) -> bool:
        """Whether the part held any row, cell or dimension (a sheet, as calamine reads one)."""
        return bool(self.row_tags or self.last_row or self.last_col)

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


def _local(name: str) -> str:
    """``"x:row"`` -> ``"row"``: calamine matches elements by local name, whatever the prefix."""
    return name.rpartition(":")[2]


def _attr(attrs: dict[str, str], local: str) -> str | None:
    """An attribute by local name (``r`` or ``x:r``): the conservative reading of both."""
    value = attrs.get(local)
    if value is not None:
        return value
    for key, v in attrs.items():
        if _local(key) == local:
            return v
    return None


class SafeXml:
    """An expat parser fed bytes a piece at a time that refuses DTDs and reports bad XML.

    Subclasses handle elements in ``start(local_name, attributes)``. Every failure is a
    FileRejected naming the workbook (``source``) and the part.
    """

    def __init__(self, source: str, part: str) -> None:
        self.source, self.part = source, part
        parser = expat.ParserCreate()
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._doctype
        parser.EntityDeclHandler = self._doctype
        parser.StartElementHandler = self._element
        self._parser = parser

    def refuse(self, reason: str) -> FileRejected:
        return FileRejected(self.source, f"{reason} in {self.part!r}")

    def _doctype(self, *_: object) -> None:
        raise self.refuse("XML with a document type declaration (entities) is not accepted")

    def _element(self, name: str, attrs: dict[str, str]) -> None:
        self.start(_local(name), attrs)

    def start(self, local: str, attrs: dict[str, str]) -> None:
        """One start tag; the base class keeps nothing."""

    def feed(self, data: bytes, final: bool = False) -> None:
        try:
            self._parser.Parse(data, final)
        except expat.ExpatError as exc:
            raise self.refuse(f"malformed XML ({exc})") from None

    def close(self) -> None:
        self.feed(b"", final=True)


class SheetScan(SafeXml):
    """Measures a part as calamine would load it: ``<dimension>``, ``<row>`` and ``<c>``.

    A row without ``r`` follows the previous row, a cell without ``r`` the previous cell, as
    calamine places them.

    Two ways, one result. A Python callback for each of a big sheet's millions of elements costs
    ~4x the whole old guard, so for UTF-8 parts expat only checks the document (well-formed, no
    DTD: C speed) while the start tags of ``c``/``row``/``dimension`` are found in the same bytes
    by patterns: in well-formed XML every ``<`` outside comments, CDATA and processing
    instructions starts markup and no attribute value holds a ``<``, so the patterns find every
    real tag (and perhaps some inside comments, which only make the extent larger). Chunks whose
    tags are all of the plain form Excel writes (``<c r="B7"``, ``<row r="7"``) are measured in
    bulk; any other chunk tag by tag, each tag's attributes parsed in full (any quoting, spacing,
    prefixes, character references). Other encodings take expat's callbacks for every element.
    """

    def __init__(self, source: str, part: str, extent: SheetExtent) -> None:
        super().__init__(source, part)
        self.extent = extent
        parser = self._parser
        parser.CommentHandler = self._not_plain
        parser.StartCdataSectionHandler = self._not_plain
        parser.ProcessingInstructionHandler = self._not_plain
        self._row = 0
        self._col = 0
        self._columns: dict[bytes, int] = {}  # plain column letters seen -> number
        self._mode = ""  # "" until the first bytes say: "lex" (UTF-8) or "exact"
        self._pending = b""  # an unfinished tag of interest carried to the next chunk

    def feed(self, data: bytes, final: bool = False) -> None:
        if not self._mode and (data or final):
            self._mode = "lex" if _utf8_document(data) else "exact"
            self.extent.plain = self.extent.plain and self._mode == "lex"
            if self._mode == "lex":
                self._parser.StartElementHandler = None
        super().feed(data, final)  # well-formedness first: the lexer relies on it
        if self._mode == "lex":
            self._lex(data, final)

    def _element(self, name: str, attrs: dict[str, str]) -> None:
        self.start(_local(name), attrs)

    def _not_plain(self, *_: object) -> None:
        self.extent.plain = False

    def _lex(self, data: bytes, final: bool) -> None:
        buf = self._pending + data if self._pending else data
        cut = len(buf) if final else buf.rfind(b"<")
        if cut < 0:
            self._pending = b""
            self._scan(buf)
            return
        self._scan(buf[:cut])
        rest = buf[cut:]
        self._pending = rest if len(rest) < _PREFIX_BYTES or _INTEREST_AT.match(rest) else b""
        if len(self._pending) > MAX_TAG_BYTES:
            whole = _TAG_AT.match(self._pending)
            if whole is None:
                raise self.refuse(f"a <c>, <row> or <dimension> tag over {MAX_TAG_BYTES:,} bytes")
            self._scan(whole[0])
            self._pending = b""

    def _scan(self, text: bytes) -> None:
        """Measure the tags of interest in ``text`` (which ends where a tag may begin)."""
        if not text:
            return
        if _PREFIXED.search(text):
            self.extent.plain = False
            self._tag_by_tag(text)
            return
        cells, rows = _ANY_C.findall(text), _ANY_ROW.findall(text)
        cell_rows = _PLAIN_C_ROW.findall(text) if cells else []
        row_numbers = _PLAIN_ROW.findall(text) if rows else []
        if (
            len(cell_rows) != len(cells)
            or len(row_numbers) != len(rows)
            or not (self._bulk(cell_rows, row_numbers, text))
        ):
            self._tag_by_tag(text)
        elif b"dimension" in text:
            for match in _ANY_DIMENSION.finditer(text):
                self._parse_tag(text, match.start())

    def _bulk(self, cell_rows: list[bytes], row_numbers: list[bytes], text: bytes) -> bool:
        """Plain tags only: measure them at once; False if any needs the careful path."""
        numbers = list(map(int, row_numbers + cell_rows))
        if numbers and not (min(numbers) > 0 and max(numbers) <= EXCEL_MAX_ROW):
            return False
        letters = _PLAIN_C_COL.findall(text) if cell_rows else []
        columns = []
        for name in set(letters):
            col = self._columns.get(name)
            if col is None:
                col = column_number(name)
                if col > EXCEL_MAX_COLUMN:
                    return False
                self._columns[name] = col
            columns.append(col)
        extent = self.extent
        if row_numbers:
            extent.row_tags += len(row_numbers)
            self._row = int(row_numbers[-1])
            self._col = 0
        if numbers:
            extent.add_row(min(numbers))
            extent.add_row(max(numbers))
        if columns:
            extent.add_cell(extent.last_row, min(columns))
            extent.add_cell(extent.last_row, max(columns))
            self._col = self._columns[letters[-1]]
        return True

    def _tag_by_tag(self, text: bytes) -> None:
        for match in _ANY_TAG.finditer(text):
            self._parse_tag(text, match.start())

    def _parse_tag(self, text: bytes, at: int) -> None:
        whole = _TAG_AT.match(text, at)
        if whole is None:  # not a tag: the pattern met it in a comment or CDATA section
            return
        attrs = {
            m[1].decode("utf-8", "replace"): html.unescape(
                (m[2] if m[2] is not None else m[3]).decode("utf-8", "replace")
            )
            for m in _ATTRIBUTE.finditer(whole[2])
        }
        self.start(_local(whole[1].decode("utf-8", "replace")), attrs)

    def start(self, local: str, attrs: dict[str, str]) -> None:
        if local == "c":
            ref = _attr(attrs, "r")
            if ref:
                row, self._col = self._cell(ref)
                self.extent.add_cell(row, self._col)
            else:
                self._col += 1
                self.extent.add_cell(max(self._row, 1), self._col)
        elif local == "row":
            number = _attr(attrs, "r")
            self._row = self._row_number(number) if number else self._row + 1
            self._col = 0
            self.extent.row_tags += 1
            self.extent.add_row(self._row)
        elif local == "dimension":
            for corner in (_attr(attrs, "ref") or "").split(":"):
                if corner:
                    self.extent.add_cell(*self._cell(corner))

    def _row_number(self, text: str) -> int:
        if not _ROW_NUMBER.fullmatch(text) or not 1 <= int(text) <= EXCEL_MAX_ROW:
            raise self.refuse(
                f"row number {text[:20]!r} outside Excel's grid (1-{EXCEL_MAX_ROW:,})"
            )
        return int(text)

    def _cell(self, ref: str) -> tuple[int, int]:
        """``"B7"`` -> (7, 2); anything else, or beyond XFD1048576, is refused."""
        match = _CELL_REF.fullmatch(ref.replace("$", ""))
        if match is None:
            raise self.refuse(f"cell reference {ref[:20]!r} is not a cell of Excel's grid")
        col, row = column_number(match[1]), int(match[2])
        if not (1 <= row <= EXCEL_MAX_ROW and col <= EXCEL_MAX_COLUMN):
            raise self.refuse(f"cell reference {ref[:20]!r} is beyond Excel's last cell XFD1048576")
        return row, col

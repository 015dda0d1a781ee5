"""A worksheet read as a stream: its XML through expat, one row at a time.

python-calamine loads a whole sheet before it gives the first row (~250 bytes a row for three
columns: ~256 MB at 1,000,000 rows) and has no lazy reader. This module reads the same values
from the same parts without holding the sheet: the part is inflated and parsed a chunk at a time
(``xml.parsers.expat``, the C parser) and each row is handed on when it closes, so memory holds
the shared strings, the styles and a few rows. :mod:`xlsx_reader` uses it for big sheets.

It gives what calamine gives, cell for cell (tests compare both on the same workbooks): sheet
row numbers, columns from the first column that holds a value, shared and inline strings (runs
joined, phonetic runs left out, ``_x000D_`` escapes decoded, a ``<t>`` trimmed unless it
preserves space), numbers, booleans, dates and times by the cell's number format (Excel's
built-in date formats or a custom one with date/time codes; the 1904 date system), durations
(``[h]:mm``), ISO dates (``t="d"``), a formula's cached value, an error as empty text. What
calamine refuses (a shared string that is not in the table, a number that is not one, an unknown
cell type) is refused here too, and so are rows out of order, which calamine would sort: Excel
writes rows in order, and a stream cannot go back. Every part read here was inflated and checked
first by :mod:`xlsx_guard` (sizes, CRCs, no DTD, well-formed XML, the extent).
"""

from __future__ import annotations

import array
import codecs
import datetime as dt
import html
import io
import itertools
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from xml.parsers import expat

from broadcaster.errors import FileRejected
from broadcaster.ingest.header import Record
from broadcaster.ingest.xlsx_extent import EXCEL_MAX_COLUMN, EXCEL_MAX_ROW, SafeXml, column_number

STYLES_PART = "xl/styles.xml"
SHARED_STRINGS_PART = "xl/sharedStrings.xml"
_CHUNK_BYTES = 256 * 1024
#: Rows kept while the first column is not known yet; past it, a first pass finds it.
PENDING_ROWS = 2000
#: Excel's built-in number formats that show a date or time (14-22, 45, 47) or a duration (46).
_BUILTIN_DATE_FORMATS = frozenset({14, 15, 16, 17, 18, 19, 20, 21, 22, 45, 47})
_BUILTIN_DURATION_FORMATS = frozenset({46})
_DATE, _DURATION = 1, 2
#: Literal text of a number format: an escaped, width or fill character, or a quoted string
#: (in which those escape too). Each becomes one NUL, a character without meaning.
_FORMAT_LITERAL = re.compile(r'[\\_*].?|"(?:[\\_*].?|[^"])*"?', re.DOTALL)
_DATE_CODES = "dmhysDMHYS"
_AMPM_CODES = "pm/PM"
#: Excel's 1900 system counts a 29 February 1900 that never was: from serial 60 on, day 0 is
#: 1899-12-30, before it 1899-12-31. The 1904 system's day 0 is 1904-01-01.
_EPOCH_1900 = dt.datetime(1899, 12, 30)
_EPOCH_1904 = dt.datetime(1904, 1, 1)
_MS_PER_DAY = 86_400_000
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_XML_SPACE = " \t\r\n"
_REFERENCES = re.compile(r"&(?:#([0-9]+)|#x([0-9A-Fa-f]+)|([A-Za-z]+));")
_PREDEFINED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
#: The error values calamine knows (it refuses a file with any other).
_ERRORS = frozenset({"#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!"})
_BOOLEANS = {"0": "FALSE", "false": "FALSE", "1": "TRUE", "true": "TRUE"}
#: A number as calamine parses one (Rust's float syntax): no spaces, no ``_``, no hex.
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE,
)  # one way to match each text (``[0-9]+\.?[0-9]*`` split a run of digits every way: O(n²))
#: Most characters one row may take in the plain form (a real one holds a few hundred).
MAX_ROW_CHARS = 16 * 1024 * 1024
_TAIL = 64
_INF = float("inf")
_SHEET_DATA = re.compile(r"<sheetData(?:\s[^>]*?)?(/?)>")  # lazy: sees a "/>" after attributes
_SHEET_DATA_END = re.compile(r"</sheetData\s*>")
#: A whole row: its attributes (group 1, perhaps with trailing spaces), its body (group 2);
#: its end tag may hold spaces, as XML allows.
#: Each character of the tag is tried once (a ``\s*`` after a lazy ``[^>]*?`` tried every
#: split of a run of spaces in an attribute value: O(n²)).
_ROW = re.compile(r"\s*<row(?=[\s/>])([^>]*?)(?:/>|>(.*?)</row\s*>)", re.DOTALL)
#: A row's attributes: ``r`` (group 1) among any others, in the plain form.
_ROW_ATTRS = re.compile(r'(?:\s+(?:r="([0-9]{1,7})"|[A-Za-z0-9:]+="[^"]*"))*\s*')
_ROW_NUMBER = re.compile(r'<row r="([0-9]{1,7})"')
#: A cell in the plain form: reference, attributes, perhaps a formula, then a value or an
#: inline string of one ``<t>``. Groups: letters, digits, attributes, "<v>", v's text, "<is>",
#: the preserve marker, t's text.
_CELL = re.compile(
    r'<c\s+r="([A-Z]{1,3})([0-9]{1,7})"((?:\s+[A-Za-z0-9:]+="[^"]*")*)\s*'
    r"(?:/>|>(?:<f(?:\s[^>]*)?/>|<f(?:\s[^>]*)?>[^<]*</f>)?"
    r'(?:(<v>)([^<]*)</v>|(<is>)<t( xml:space="preserve")?>([^<]*)</t></is>)?</c>)'
)
_PLAIN_SI = re.compile(r'<si><t( xml:space="preserve")?>([^<]*)</t></si>')
_ATTR = re.compile(r'\s+([A-Za-z0-9:]+)="([^"]*)"')
_PLAIN_NUMBER, _SHARED, _OTHER = 0, 1, 2
_CELL_CHILDREN = frozenset({"v", "f", "is"})
_TEXT_TYPES = frozenset({"str", "d"})
#: Types whose ``<v>`` may hold a character reference (calamine decodes only a text's).
_REFERENCE_TYPES = frozenset({"str", "d", "inlineStr"})
_CELL_TYPES = frozenset({None, "n", "s", "b", "e", "str", "d", "inlineStr"})


def number_format_kind(code: str) -> int:
    """0, ``_DATE`` or ``_DURATION``: whether a custom number format shows a date or time.

    Text in quotes and escaped (``\\x``), width (``_x``) and fill (``*x``) characters are
    literals; only the first section counts (up to ``;``); ``[...]`` holds colours and
    conditions, except ``[h]``, ``[mm]``, ``[ss]``: elapsed time, a duration. An ``a``/``A``
    opens an AM/PM marker, in which ``m``, ``p`` or ``/`` mark a time.
    """
    ampm = elapsed = False
    brackets = 0
    prev = " "
    for ch in _FORMAT_LITERAL.sub("\0", code):
        if ch == ";":
            return 0
        if ch == "[":
            brackets += 1
        elif ch == "]":
            if brackets == 1 and elapsed:
                return _DURATION
            brackets = max(0, brackets - 1)
        elif brackets == 0 and ch in (_AMPM_CODES if ampm else _DATE_CODES):
            return _DATE
        elif brackets == 0 and not ampm and ch in "aA":
            ampm = True
        elif not (elapsed and ch.lower() == prev.lower()):
            elapsed = prev == "[" and ch in "mhsMHS"
        prev = ch
    return 0


def _local(name: str) -> str:
    return name.rpartition(":")[2] if ":" in name else name


def _attr(attrs: dict[str, str], local: str) -> str | None:
    value = attrs.get(local)
    if value is None and attrs:
        for key, v in attrs.items():
            if _local(key) == local:
                return v
    return value


def _int(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    return int(text)


def _string_piece(text: str, preserve: bool) -> str:
    return text if preserve else text.strip(_XML_SPACE)


def _reference(match: re.Match[str]) -> str:
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        return _PREDEFINED.get(name, match[0])
    # leading zeros are allowed, and int() refuses over 4,300 digits
    number = int(decimal.lstrip("0") or "0") if decimal else int(hexadecimal.lstrip("0") or "0", 16)
    return chr(number)


def _xml_text(text: str) -> str:
    """Raw text of a plain part as an XML parser gives it: line ends normalised, then references
    decoded (a ``&#13;`` stays a CR; well-formed and without a DTD, only the predefined entities
    can occur; not ``html.unescape``, which reads ``&#128;`` as cp1252's '€')."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "&" in text:
        text = _REFERENCES.sub(_reference, text)
    return text


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m[1], 16)), text) if "_x" in text else text


class _Styles(SafeXml):
    """``cellXfs``: whether each cell style's number format shows a date or a duration."""

    def __init__(self, source: str, part: str) -> None:
        super().__init__(source, part)
        self.custom: dict[int, str] = {}
        self.xf_formats: list[int] = []
        self._in_cell_xfs = False
        self._parser.EndElementHandler = self._end

    def start(self, local: str, attrs: dict[str, str]) -> None:
        if local == "numFmt":
            number = _int(_attr(attrs, "numFmtId"))
            if number is not None:
                self.custom[number] = _attr(attrs, "formatCode") or ""
        elif local == "cellXfs":
            self._in_cell_xfs = True
        elif local == "xf" and self._in_cell_xfs:
            self.xf_formats.append(_int(_attr(attrs, "numFmtId")) or 0)

    def _end(self, name: str) -> None:
        if _local(name) == "cellXfs":
            self._in_cell_xfs = False

    def kinds(self) -> list[int]:
        out = []
        for number in self.xf_formats:
            code = self.custom.get(number)
            if code is not None:
                out.append(number_format_kind(code))
            elif number in _BUILTIN_DATE_FORMATS:
                out.append(_DATE)
            else:
                out.append(_DURATION if number in _BUILTIN_DURATION_FORMATS else 0)
        return out


class SharedStrings:
    """The shared strings table, compact: one text and the offsets of its strings (Excel keeps
    every distinct string of a workbook there, a million for a million distinct names: as
    Python objects they would take ~70 MB, here ~16 MB). Strings are kept trimmed."""

    def __init__(self) -> None:
        self._buffer: io.StringIO | None = io.StringIO()
        self._offsets = array.array("q", [0])
        self._text = ""

    def append(self, text: str) -> None:
        assert self._buffer is not None
        self._offsets.append(self._offsets[-1] + self._buffer.write(text.strip()))

    def close(self) -> None:
        if self._buffer is not None:
            self._text, self._buffer = self._buffer.getvalue(), None

    def extend(self, texts: list[str]) -> None:
        """Add strings at once (each trimmed)."""
        assert self._buffer is not None
        texts = [text.strip() for text in texts]
        self._buffer.write("".join(texts))
        ends = itertools.accumulate(map(len, texts), initial=self._offsets[-1])
        next(ends)
        self._offsets.extend(ends)

    def parts(self) -> tuple[str, array.array[int], int]:
        """The text, the offsets (string i is ``text[offsets[i]:offsets[i + 1]]``), the count."""
        return self._text, self._offsets, len(self)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> str:
        return self._text[self._offsets[index] : self._offsets[index + 1]]


class _Strings(SafeXml):
    """The shared strings table: each ``<si>``'s text, its runs joined, ``<rPh>`` left out."""

    def __init__(self, source: str, part: str) -> None:
        super().__init__(source, part)
        self.strings = SharedStrings()
        self._pieces: list[str] = []
        self._text: list[str] = []
        self._skip = 0  # depth inside <rPh> (a reading aid, not the value)
        self._in_t = False
        self._preserve = False
        parser = self._parser
        parser.buffer_text = True
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._data

    def start(self, local: str, attrs: dict[str, str]) -> None:
        if self._skip or local == "rPh":
            self._skip += 1
        elif local == "si":
            self._pieces = []
        elif local == "t":
            self._in_t, self._text = True, []
            self._preserve = _attr(attrs, "space") == "preserve"

    def _end(self, name: str) -> None:
        if self._skip:
            self._skip -= 1
            return
        local = _local(name)
        if local == "t" and self._in_t:
            self._in_t = False
            self._pieces.append(_string_piece("".join(self._text), self._preserve))
        elif local == "si":
            self.strings.append(_unescape("".join(self._pieces)))

    def _data(self, data: str) -> None:
        if self._in_t and not self._skip:
            self._text.append(data)


@dataclass
class BookContext:
    """What the cells of a sheet need: shared strings, style kinds, the date system."""

    strings: SharedStrings = field(default_factory=SharedStrings)
    kinds: list[int] = field(default_factory=list)
    date1904: bool = False


def _feed_part(zf: zipfile.ZipFile, part: str, scan: SafeXml) -> None:
    for chunk in part_chunks(zf, part):
        scan.feed(chunk)
    scan.close()


def read_context(
    zf: zipfile.ZipFile, source: str, *, date1904: bool, plain_strings: bool = False
) -> BookContext:
    """Shared strings and styles of an open workbook (parts the guard has checked);
    ``plain_strings``: the guard found the shared strings part plain (``SheetExtent.plain``)."""
    names = set(zf.namelist())
    context = BookContext(date1904=date1904)
    if SHARED_STRINGS_PART in names and not (
        plain_strings and _read_plain_strings(zf, source, context.strings)
    ):
        strings = _Strings(source, SHARED_STRINGS_PART)
        _feed_part(zf, SHARED_STRINGS_PART, strings)
        context.strings = strings.strings
    context.strings.close()
    if STYLES_PART in names:
        styles = _Styles(source, STYLES_PART)
        _feed_part(zf, STYLES_PART, styles)
        context.kinds = styles.kinds()
    return context


def _read_plain_strings(zf: zipfile.ZipFile, source: str, table: SharedStrings) -> bool:
    """The shared strings of a plain part by patterns, as ``_Strings`` reads them: a region of
    whole ``<si>`` elements at a time, all at once when each is one plain ``<t>``, else by
    expat (rich-text runs, phonetic runs). False, the table left half full, if a ``<si>`` may
    have a prefix (``<x:si>``, an ``<si>`` for calamine, which the patterns do not see)."""
    for region in _regions(part_chunks(zf, SHARED_STRINGS_PART), "<si"):
        if ":si" in region:
            return False
        found = _PLAIN_SI.findall(region)
        if len(found) == region.count("<si"):
            table.extend(
                [
                    _unescape(_xml_text(text))
                    if "&" in text or "\r" in text or "_x" in text
                    else text
                    for _, text in found
                ]
            )
            continue
        first, last = region.find("<si"), region.rfind("</si>")
        if first < 0 or last < 0:
            continue
        strings = _Strings(source, SHARED_STRINGS_PART)
        strings.strings = table
        strings.feed(("<sst>" + region[first : last + 5] + "</sst>").encode("utf-8"), final=True)
    return True


def _regions(chunks: Iterator[bytes], start: str) -> Iterator[str]:
    """The decoded text of ``chunks`` cut just before occurrences of ``start``: each region
    but the last ends where a ``start`` begins. Only new text is searched, and text held over
    chunks without a ``start`` is joined once (one string of a gigabyte spans thousands of
    chunks: joining and searching all of it at each was O(n²))."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    held: list[str] = []  # text since the last cut, in pieces
    tail = ""  # its last characters: a start may straddle two chunks
    for chunk in chunks:
        text = decoder.decode(chunk)
        probe = tail + text
        at = probe.rfind(start)
        tail = probe[-(len(start) - 1) :]
        if at < 0:
            held.append(text)
            continue
        held.append(text)
        whole = "".join(held)
        cut = len(whole) - (len(probe) - at)
        region, held = whole[:cut], [whole[cut:]]
        if region:
            yield region
    held.append(decoder.decode(b"", True))
    region = "".join(held)
    if region:
        yield region


def part_chunks(zf: zipfile.ZipFile, part: str) -> Iterator[bytes]:
    with zf.open(part) as f:
        while chunk := f.read(_CHUNK_BYTES):
            yield chunk


def date_text(value: float, date1904: bool) -> str:
    """A number shown as a date: a time below 1, a date when whole, else a date and time."""
    serial = value + 1 if not date1904 and value < 60 else value
    try:
        moment = (_EPOCH_1904 if date1904 else _EPOCH_1900) + dt.timedelta(
            milliseconds=round(serial * _MS_PER_DAY)
        )
    except (OverflowError, ValueError):
        return ""
    if value < 1:
        return moment.time().isoformat()
    if value == int(value):
        return moment.date().isoformat()
    return moment.isoformat()


def duration_text(value: float) -> str:
    try:
        return str(dt.timedelta(milliseconds=round(value * _MS_PER_DAY)))
    except (OverflowError, ValueError):
        return ""


def _plain_float(v: str) -> str | None:
    """float_text of a ``<v>`` that is a number in Rust's syntax and Python's alike; None for
    anything else (spaces, ``_``, not a number: the careful path decides)."""
    try:
        number = float(v)
    except ValueError:
        return None
    if "_" in v or v[0].isspace() or v[-1].isspace():
        return None
    return str(int(number)) if number.is_integer() else repr(number)


def float_text(value: float) -> str:
    """A number as :func:`xlsx_reader.cell_text` prints calamine's float."""
    return str(int(value)) if value.is_integer() else repr(value)


#: A row as the parser hands it on: (sheet row number, {column: text}); "" for a cell that
#: holds empty text (it counts for the first column, as in calamine, but is no value).
RawRow = tuple[int, dict[int, str]]


class SheetRows:
    """One worksheet part parsed as a stream: its rows with cells, in order, as they close."""

    def __init__(self, source: str, part: str, context: BookContext) -> None:
        self.source, self.part = source, part
        self._strings, self._kinds, self._date1904 = (
            context.strings,
            context.kinds,
            context.date1904,
        )
        self._ready: list[RawRow] = []
        self._last = 0  # the last row number handed on
        self._row = 0  # 0-based, as calamine counts: a <row> without r= is this one
        self._col = 1  # the column of the next cell without r=
        self._cells: dict[int, str] = {}
        self._cells_row = -1
        self._in_cell = False
        self._depth = 0  # inside <c>: 1 = a direct child
        self._c_row = self._c_col = 0
        self._c_type: str | None = None
        self._c_style: str | None = None
        self._child = ""  # the last direct child of <c> (calamine keeps the last one's value)
        self._value: str | None = None
        self._text: list[str] = []
        self._t_text: list[str] = []
        self._in_t = False
        self._preserve = False
        self._skip = 0
        self._attrs: dict[str, tuple[str | None, str | None, int]] = {}
        self._columns: dict[str, int] = {}
        self._fragment: tuple[expat.XMLParserType, bytes] | None = None  # the row expat reads
        self._v_at = 0  # where the <v> being read starts in it

    def refuse(self, reason: str) -> FileRejected:
        return FileRejected(self.source, f"unreadable .xlsx: {reason} in {self.part!r}")

    # expat's callbacks, for a row that is not all plain ------------------------------------

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        if self._in_cell:
            self._depth += 1
            if self._depth == 1:
                self._child = _local(name)
                if self._child not in _CELL_CHILDREN:
                    raise self.refuse(f"a <{self._child[:20]}> in a cell (a cell holds v, f or is)")
                self._value, self._text, self._v_at = None, [], self._byte_index()
            elif self._child == "is":
                local = _local(name)
                if self._skip or local == "rPh":
                    self._skip += 1
                elif local == "t":
                    self._in_t, self._t_text = True, []
                    self._preserve = _attr(attrs, "space") == "preserve"
            return
        local = _local(name)
        if local == "c":
            ref = _attr(attrs, "r")
            if ref:
                self._c_row, self._c_col = self._ref(ref)
            else:
                self._c_row, self._c_col = self._row, self._col
            self._col = self._c_col + 1
            self._c_type, self._c_style = _attr(attrs, "t"), _attr(attrs, "s")
            self._in_cell, self._depth, self._child, self._value = True, 0, "", None
        elif local == "row":
            number = _attr(attrs, "r")
            if number is not None:
                if not number.isdigit() or not 1 <= int(number) <= EXCEL_MAX_ROW:
                    raise self.refuse(f"row number {number[:20]!r} outside Excel's grid")
                self._row = int(number) - 1
            self._col = 1

    def _end(self, name: str) -> None:
        if self._in_cell:
            depth = self._depth
            if depth == 0:
                self._in_cell = False
                self._cell()
            elif depth == 1:
                self._value = "".join(self._text)
                if self._child == "v" and self._c_type not in _REFERENCE_TYPES:
                    self._no_reference()
            elif self._skip:
                self._skip -= 1
            elif self._in_t and _local(name) == "t":
                self._in_t = False
                self._text.append(_string_piece("".join(self._t_text), self._preserve))
            self._depth = depth - 1
            return
        local = _local(name)
        if local == "row":
            self._row += 1
            self._col = 1

    def _data(self, data: str) -> None:
        if self._depth == 1 and self._child == "v":
            self._text.append(data)
        elif self._in_t and not self._skip:
            self._t_text.append(data)

    # -------------------------------------------------------------------------------

    def _ref(self, ref: str) -> tuple[int, int]:
        letters = ref.rstrip("0123456789")
        digits = ref[len(letters) :]
        if not (digits and letters.isalpha() and letters.isascii() and len(letters) <= 3):
            raise self.refuse(f"cell reference {ref[:20]!r} is not a cell of Excel's grid")
        row, col = int(digits), column_number(letters)
        if not (1 <= row <= EXCEL_MAX_ROW and col <= EXCEL_MAX_COLUMN):
            raise self.refuse(f"cell reference {ref[:20]!r} is beyond Excel's last cell")
        return row - 1, col

    def _cell(self) -> None:
        text = self._text_of()
        if text is None:
            return
        if self._c_row != self._cells_row:
            self._start_row(self._c_row)
        self._cells[self._c_col] = text

    def _start_row(self, row: int) -> None:
        """Hand on the row being filled; the next cells are ``row``'s (0-based), which must
        come after every row handed on."""
        self._flush()
        if row + 1 <= self._last:
            raise self.refuse(f"row {row + 1:,} comes after row {self._last:,}")
        self._cells_row = row

    def _flush(self) -> None:
        if self._cells:
            self._last = self._cells_row + 1
            self._ready.append((self._last, self._cells))
            self._cells = {}

    def _text_of(self) -> str | None:
        return self.convert(self._c_type, self._c_style, self._child, self._value)

    def convert(
        self, t: str | None, style: str | None, child: str, value: str | None
    ) -> str | None:
        """A cell's text from its type, style, last child element and that child's text; None
        for a cell calamine keeps as empty (no value at all)."""
        if t not in _CELL_TYPES:
            raise self.refuse(f"unknown cell type {t[:20]!r}" if t else "unknown cell type")
        if value is None:
            return None
        if child == "is":
            return _unescape(value).strip()  # empty: no value, but it counts for the first column
        if child != "v" or t == "inlineStr":
            return None
        if t is None or t == "n":
            return self._numeric(value, t, style)
        if t == "str":
            return _unescape(value).strip()
        if t == "d":
            return value.strip()
        if not value:
            return None
        if t == "e":  # an error reads as empty text (which counts for the first column)
            if value not in _ERRORS:
                raise self.refuse(f"the error value {value[:20]!r} is not one")
            return ""
        return self._shared(value) if t == "s" else self._boolean(value)

    def _numeric(self, value: str, t: str | None, style: str | None) -> str | None:
        if not value:
            return None
        if not _NUMBER.fullmatch(value):
            if t is None:  # no type: calamine keeps what is not a number as text
                return value.strip()
            raise self.refuse(f"the number {value[:20]!r} is not a number")
        number = float(value)
        index = _int(style)
        kind = self._kinds[index] if index is not None and index < len(self._kinds) else 0
        if kind == 0 or number != number or number in (_INF, -_INF):
            return float_text(number)
        if kind == _DURATION:
            return duration_text(number)
        return date_text(number, self._date1904)

    def _boolean(self, value: str) -> str:
        text = _BOOLEANS.get(value)
        if text is None:
            raise self.refuse(f"the boolean {value[:20]!r} is not one")
        return text

    # the plain form, by patterns -------------------------------------------------------

    def rows_plain(self, chunks: Iterator[bytes]) -> Iterator[RawRow]:
        """The rows of a part the guard found plain (see ``SheetExtent.plain``), by patterns.

        In such a part every ``<`` starts a tag, no attribute value holds one, and rows do not
        nest: the text before the last ``<row`` seen holds whole rows only. Those are read a
        region at a time: all of a region's cells at once when every cell and row is of the
        plain form Excel writes (``<c r="B7" s="1" t="s"><v>3</v></c>``), else row by row, and
        a row whose cells are not all plain is parsed by expat on its own.
        """
        decoder = codecs.getincrementaldecoder("utf-8")()
        buf = ""
        state = 0  # 0: before <sheetData>, 1: inside it, 2: after it
        for chunk in itertools.chain(chunks, [b""]):
            buf += decoder.decode(chunk, not chunk)
            if state == 0:
                found = _SHEET_DATA.search(buf)
                if found is None:  # keep an unfinished <sheetData tag (it may be long)
                    at = buf.rfind("<sheetData")
                    buf = buf[at:] if at >= 0 else buf[-_TAIL:]
                    if len(buf) > MAX_ROW_CHARS:
                        raise self.refuse(f"a <sheetData> tag over {MAX_ROW_CHARS:,} characters")
                    continue
                state = 2 if found[1] else 1
                buf = buf[found.end() :]
            if state == 1:
                end = _SHEET_DATA_END.search(buf)
                if end is not None:
                    region, buf, state = buf[: end.start()], "", 2
                else:
                    cut = buf.rfind("<row")
                    if len(buf) - max(cut, 0) > MAX_ROW_CHARS:
                        raise self.refuse(f"a row over {MAX_ROW_CHARS:,} characters")
                    region, buf = (buf[:cut], buf[cut:]) if cut > 0 else ("", buf)
                if region:
                    self._region(region)
            if self._ready:
                yield from self._ready
                self._ready = []
            if state == 2:
                break
        else:
            raise self.refuse("the sheet's data is cut short")
        self._flush()
        yield from self._ready
        self._ready = []

    def _region(self, region: str) -> None:
        """Whole rows of a plain part: all at once if every cell and row is plain."""
        found = _CELL.findall(region)
        rows = _ROW_NUMBER.findall(region)
        if len(found) == region.count("<c") and len(rows) == region.count("<row"):
            self._plain_cells(found)
            if rows:
                self._row, self._col = int(rows[-1]), 1  # a row without r= follows the last
        else:
            self._plain_rows(region)

    def _plain_cells(self, found: list[tuple[str, ...]]) -> None:
        """Cells matched by ``_CELL``, each placed by its reference (as calamine places them)."""
        attrs_of, columns = self._attrs, self._columns
        cells = self._cells
        pool, offsets, count = self._strings.parts()
        digits_now = ""
        for letters, digits, attrs, v_tag, v, is_tag, preserve, t_text in found:
            if digits != digits_now:
                digits_now = digits
                if int(digits) - 1 != self._cells_row:
                    self._cells = cells
                    self._start_row(int(digits) - 1)
                    cells = self._cells
            info = attrs_of.get(attrs) or self._parse_attrs(attrs)
            kind = info[2]
            text: str | None
            if not v_tag or kind == _OTHER:
                text = self._plain_text(info, v_tag, v, is_tag, preserve, t_text)
            elif kind == _SHARED:  # the table's string, inline: most texts of Excel's files
                index = int(v) if v.isdigit() else count
                text = pool[offsets[index] : offsets[index + 1]] if index < count else None
                if text is None:
                    text = self._shared(v)
            elif v.isdigit() and len(v) < 16 and v[0] != "0":
                text = v  # a whole number, as float_text prints it: most phones
            else:
                text = _plain_float(v)
                if text is None:
                    text = self._number(v, info[0])
            if text is not None:
                col = columns.get(letters)
                if col is None:
                    col = self._column(letters, digits)
                cells[col] = text
        self._cells = cells

    def _plain_text(
        self,
        info: tuple[str | None, str | None, int],
        v_tag: str,
        v: str,
        is_tag: str,
        preserve: str,
        t_text: str,
    ) -> str | None:
        """One plain cell's text (see ``_region``)."""
        t, style, kind = info
        if v_tag:
            if "&" in v and t not in _REFERENCE_TYPES:
                raise self._reference()
            if kind == _PLAIN_NUMBER:
                return self._number(v, t)
            if kind == _SHARED:
                return self._shared(v)
            return self.convert(t, style, "v", _xml_text(v) if t in _TEXT_TYPES else v)
        if is_tag:
            text = t_text if preserve else t_text.strip(_XML_SPACE)
            if "&" in text or "\r" in text or "_x" in text:
                return self.convert(t, style, "is", _xml_text(text))
            return self.convert(t, style, "is", text)
        return self.convert(t, style, "", None)

    def _column(self, letters: str, digits: str) -> int:
        col = column_number(letters)
        if col > EXCEL_MAX_COLUMN:
            raise self.refuse(f"cell reference {letters + digits!r} is beyond Excel's last cell")
        self._columns[letters] = col
        return col

    def _plain_rows(self, region: str) -> None:
        """Whole rows of a plain part, one at a time; a row not all plain goes to expat."""
        pos = 0
        while True:
            m = _ROW.match(region, pos)
            if m is None:
                if region[pos:].strip():
                    raise self.refuse("an element other than <row> in the sheet's data")
                return
            pos = m.end()
            attrs, body = m[1], m[2] or ""
            number = _ROW_ATTRS.fullmatch(attrs)
            found = _CELL.findall(body)
            if number is None or len(found) != body.count("<c"):
                self._row_fragment(m[0])
                continue
            if number[1]:
                self._row = int(number[1]) - 1  # in Excel's grid: the guard checked it
            if found:
                self._plain_cells(found)
            self._row += 1
            self._col = 1

    def _parse_attrs(self, attrs: str) -> tuple[str | None, str | None, int]:
        """A plain cell's ``t``, ``s`` and how to read it (cached: few forms repeat)."""
        values = {name: html.unescape(value) for name, value in _ATTR.findall(attrs)}
        t, style = values.get("t"), values.get("s")
        if t not in _CELL_TYPES:
            raise self.refuse(f"unknown cell type {t[:20]!r}" if t else "unknown cell type")
        kind = _OTHER
        if t is None or t == "n":
            index = _int(style)
            if index is None or index >= len(self._kinds) or not self._kinds[index]:
                kind = _PLAIN_NUMBER
        elif t == "s":
            kind = _SHARED
        info = (t, style, kind)
        if len(self._attrs) < 10_000:
            self._attrs[attrs] = info
        return info

    def _number(self, v: str, t: str | None) -> str | None:
        if not v:
            return None
        if "&" in v:
            raise self._reference()
        try:
            number = float(v)
        except ValueError:
            number = None
        if number is None or "_" in v or v.strip() != v:
            if t is None:  # no type: calamine keeps what is not a number as text
                return v.strip()
            raise self.refuse(f"the number {v[:20]!r} is not a number")
        return float_text(number)

    def _shared(self, v: str) -> str | None:
        if not v:
            return None
        index = _int(v)
        if index is None or index >= len(self._strings):
            raise self.refuse("a cell's string index is not in the shared strings table")
        return self._strings[index]

    def _row_fragment(self, text: str) -> None:
        """One row that is not all plain: parsed by expat on its own, as the careful path."""
        parser = expat.ParserCreate()
        parser.buffer_text = True
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._data
        data = text.encode("utf-8")
        self._fragment = (parser, data)
        try:
            parser.Parse(data, True)
        except expat.ExpatError as exc:
            raise self.refuse(f"malformed XML ({exc})") from None
        finally:
            self._fragment = None

    def _byte_index(self) -> int:
        """Where expat is in the row it reads (0 outside one)."""
        return self._fragment[0].CurrentByteIndex if self._fragment is not None else 0

    def _no_reference(self) -> None:
        """Refuse the ``<v>`` expat just read if it held a character reference (see
        ``_reference``)."""
        if self._fragment is not None:
            parser, data = self._fragment
            if b"&" in data[self._v_at : parser.CurrentByteIndex]:
                raise self._reference()

    def _reference(self) -> FileRejected:
        """A reference in a value that is not text: calamine reads it up to the reference, the
        patterns would keep it raw and expat decoded; no application writes one."""
        return self.refuse("a character reference in a value that is not text")


def stream_records(rows_of: Callable[[], Iterator[RawRow]], low: int = 1) -> Iterator[Record]:
    """Records from a part's rows, each cell list from the sheet's first column that holds a
    value, as calamine starts its rows (``low``: no cell lies left of it, the guard's extent).

    Until a cell in column ``low`` shows up, rows wait (at most PENDING_ROWS of them); past
    that, a first pass over the part finds the first column, and the rows are read again.
    """
    rows = rows_of()
    pending: list[RawRow] = []
    first = 0
    for number, cells in rows:
        column = min(cells)
        first = column if not first else min(first, column)
        pending.append((number, cells))
        if first <= low:
            break
        if len(pending) > PENDING_ROWS:
            pending = []
            first = min((min(cells) for _, cells in rows), default=first)
            rows = rows_of()
            break
    if not first:
        return
    for number, cells in itertools.chain(pending, rows):
        if any(cells.values()):
            yield number, [cells.get(c, "") for c in range(first, max(cells) + 1)]

"""Sniffing: what a file is (by content first, extension second), its text encoding, its delimiter.

All functions work on a sample of the file's first bytes (:data:`SAMPLE_BYTES`), never the whole.
"""

from __future__ import annotations

import codecs
import zipfile
from collections import Counter
from pathlib import Path

from broadcaster.errors import FileRejected

#: Bytes read from the start of a file to sniff format, encoding and delimiter.
SAMPLE_BYTES = 64 * 1024
#: Records of the sample used to choose the delimiter.
SAMPLE_RECORDS = 50
#: Candidate delimiters, in order of preference when the evidence ties.
DELIMITERS = (",", ";", "\t", "|")
#: Share of control characters above which a "text" sample is binary.
MAX_CONTROL_SHARE = 0.05

ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: Well-known binary formats someone may drop by mistake: magic -> what it is.
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (
        _OLE_MAGIC,
        "a legacy .xls or a password-protected workbook (save it as .xlsx or CSV, "
        "without a password)",
    ),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive (unpack it first)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_TEXT_CONTROLS = frozenset("\t\n\r\f\v\x1a")  # \x1a: DOS end-of-file marker, seen in old exports


def read_sample(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SAMPLE_BYTES)


def sniff_format(path: Path, sample: bytes, source: str) -> str:
    """``"xlsx" | "json" | "csv" | "txt"`` from the content, the extension only between csv and txt.

    Raises FileRejected for empty files and recognisable non-text binaries.
    """
    if not sample:
        raise FileRejected(source, "empty file")
    if sample.startswith(ZIP_MAGIC):
        return "xlsx" if _is_xlsx(path) else _refuse_zip(path, source)
    for magic, what in _BINARY_MAGIC:
        if sample.startswith(magic):
            raise FileRejected(source, f"not a recipient list: the content is {what}")
    encoding = detect_encoding(sample, source)
    text = decode_sample(sample, encoding)
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise FileRejected(source, "no rows: the file holds only blank space")
    if stripped[0] in "[{":
        return "json"
    return "txt" if path.suffix.lower() == ".txt" else "csv"


def _is_xlsx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return "xl/workbook.xml" in zf.NameToInfo
    except (zipfile.BadZipFile, OSError, ValueError):
        return True  # looks like one from its first bytes: the xlsx reader says what is wrong


def _refuse_zip(path: Path, source: str) -> str:
    with zipfile.ZipFile(path) as zf:
        names = set(zf.NameToInfo)
    if "content.xml" in names and "mimetype" in names:
        what = "an OpenDocument file (.ods/.odt): save it as .xlsx or CSV"
    elif "word/document.xml" in names:
        what = "a Word document"
    else:
        what = "a zip archive that is not an .xlsx workbook (unpack it first)"
    raise FileRejected(source, f"not a recipient list: the content is {what}")


def detect_encoding(sample: bytes, source: str) -> str:
    """The codec to read a text file with.

    A BOM decides (UTF-8, UTF-16 LE/BE, UTF-32). Without one: UTF-16 LE/BE when every other byte
    is NUL (ASCII-range text in UTF-16 without a BOM: read rather than refused), else UTF-8 when
    the sample decodes as UTF-8, else cp1252 (what Excel's plain "CSV" writes on Western Windows). NUL bytes in any other pattern, or
    a sample full of control characters, mean a binary file: refused.
    """
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return encoding
    if b"\x00" in sample:
        utf16 = _utf16_without_bom(sample)
        if utf16 is None:
            raise FileRejected(source, "binary content (NUL bytes) in what should be a text file")
        return utf16
    encoding = "utf-8" if _decodes(sample, "utf-8") else "cp1252"
    if not _decodes(sample, encoding):
        raise FileRejected(source, "undecodable text: neither UTF-8 nor Windows-1252")
    text = decode_sample(sample, encoding)
    controls = sum(1 for ch in text if ch < " " and ch not in _TEXT_CONTROLS)
    if controls > MAX_CONTROL_SHARE * len(text):
        raise FileRejected(
            source, "binary content (control characters) in what should be a text file"
        )
    return encoding


def _utf16_without_bom(sample: bytes) -> str | None:
    even, odd = sample[0::2], sample[1::2]
    if len(sample) < 4:
        return None
    even_nul, odd_nul = even.count(0) / len(even), odd.count(0) / max(len(odd), 1)
    if odd_nul > 0.9 and even_nul < 0.1:
        return "utf-16-le"
    if even_nul > 0.9 and odd_nul < 0.1:
        return "utf-16-be"
    return None


def _decodes(sample: bytes, encoding: str) -> bool:
    try:
        decode_sample(sample, encoding, errors="strict")
    except UnicodeDecodeError:
        return False
    return True


def decode_sample(sample: bytes, encoding: str, errors: str = "replace") -> str:
    """Decode a sample that may end in the middle of a character."""
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    return decoder.decode(sample, final=len(sample) < SAMPLE_BYTES)


def detect_delimiter(text: str, *, complete: bool) -> str | None:
    """The delimiter of a delimited text sample, or None for a single column.

    For each candidate, count its occurrences outside quotes in each record of the sample; the
    candidate whose count is the same (and non-zero) in the most records wins, ties going to the
    larger count, then to the order of :data:`DELIMITERS`. ``complete`` says the sample is the whole
    file; otherwise an unterminated last record is left out, since it may be partial.
    """
    records = _sample_records(text, complete)
    if not records:
        return None
    best: tuple[float, int, int] | None = None
    choice = None
    for rank, delimiter in enumerate(DELIMITERS):
        counts = [r.get(delimiter, 0) for r in records]
        modal, _ = Counter(c for c in counts if c).most_common(1)[0] if any(counts) else (0, 0)
        if not modal:
            continue
        consistency = sum(1 for c in counts if c == modal) / len(counts)
        score = (consistency, modal, -rank)
        if best is None or score > best:
            best, choice = score, delimiter
    return choice


def _sample_records(text: str, complete: bool) -> list[Counter[str]]:
    """Per record of the sample (newlines inside quotes do not end one), delimiter counts."""
    records: list[Counter[str]] = []
    current: Counter[str] = Counter()
    in_quotes, blank = False, True
    for ch in text:
        if ch == '"':
            in_quotes = not in_quotes
            blank = False
        elif in_quotes:
            continue
        elif ch == "\n" or ch == "\r":
            if not blank:
                records.append(current)
                if len(records) > SAMPLE_RECORDS:
                    break
            current, blank = Counter(), True
        else:
            if ch in DELIMITERS:
                current[ch] += 1
            if not ch.isspace():
                blank = False
    else:
        if not blank and complete:
            records.append(current)
    return records[:SAMPLE_RECORDS]

"""Checks on an .xlsx zip BEFORE any parser expands it: zip bombs, corrupt or truncated archives.

The central directory's sizes are only claims, so the parts a reader will parse (``*.xml`` and
``*.rels``) are inflated here for real, in bounded chunks, counting bytes and checking CRCs; an
entry that expands beyond what it declares, past the ratio or past the total budget is refused
before python-calamine sees it. While inflating, worksheet rows (``<row`` elements) are counted so
that an oversized sheet is refused before it is loaded.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

from broadcaster.errors import FileRejected

#: Most bytes all entries of one workbook may expand to.
XLSX_MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
#: Most entries in one workbook.
XLSX_MAX_ENTRIES = 10_000
#: Highest expansion ratio allowed for an entry bigger than XLSX_RATIO_MIN_BYTES. Real sheets
#: compress 5-30x (a sheet of one repeated value ~100x); bombs go 1000x and more.
XLSX_MAX_RATIO = 200
XLSX_RATIO_MIN_BYTES = 8 * 1024 * 1024
#: Most bytes of workbook.xml and its rels parsed to map sheet names to parts.
XLSX_MAX_INDEX_BYTES = 16 * 1024 * 1024
_CHUNK_BYTES = 1024 * 1024
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_ROW_TAG = re.compile(rb"<(?:\w+:)?row[\s/>]")
_ROW_TAG_OVERLAP = 8  # bytes kept between chunks so that a tag cut in two is still seen


@dataclass
class ZipReport:
    """What the guard learnt: rows per worksheet part, and sheet name -> part."""

    rows_by_part: dict[str, int] = field(default_factory=dict)
    part_by_sheet: dict[str, str] = field(default_factory=dict)

    def sheet_rows(self, sheet: str) -> int | None:
        """The ``<row>`` elements of a sheet's part; None when the part is unknown."""
        part = self.part_by_sheet.get(sheet)
        return None if part is None else self.rows_by_part.get(part)


def check_xlsx_zip(path: Path, source: str) -> ZipReport:
    """Refuse a corrupt, encrypted or bomb-like .xlsx; report its sheets' row counts."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check_directory(infos, source)
            report = ZipReport()
            with path.open("rb") as raw:
                for info in infos:
                    if info.filename.endswith((".xml", ".rels")):
                        rows = _inflate_and_count(raw, info, source)
                        if info.filename.startswith("xl/worksheets/"):
                            report.rows_by_part[info.filename] = rows
            report.part_by_sheet = _sheet_parts(zf)
            return report
    except zipfile.BadZipFile as exc:
        raise FileRejected(
            source, f"corrupt .xlsx (truncated or damaged zip archive): {exc}"
        ) from None
    except (EOFError, OSError, ValueError, struct.error, zlib.error) as exc:
        raise FileRejected(source, f"corrupt .xlsx: {exc}") from None


def _check_directory(infos: list[zipfile.ZipInfo], source: str) -> None:
    if len(infos) > XLSX_MAX_ENTRIES:
        raise FileRejected(source, f"zip bomb suspected: {len(infos):,} entries in the workbook")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise FileRejected(source, "password-protected .xlsx: save it without a password")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise FileRejected(source, f"unsupported compression in {info.filename!r}")
        total += info.file_size
        _check_ratio(info.filename, info.file_size, info.compress_size, source)
    if total > XLSX_MAX_UNCOMPRESSED_BYTES:
        raise FileRejected(
            source,
            f"zip bomb suspected: the workbook expands to {total:,} bytes, "
            f"over {XLSX_MAX_UNCOMPRESSED_BYTES:,}",
        )


def _check_ratio(name: str, size: int, compressed: int, source: str) -> None:
    if size > XLSX_RATIO_MIN_BYTES and size > XLSX_MAX_RATIO * max(compressed, 1):
        raise FileRejected(
            source,
            f"zip bomb suspected: {name!r} expands {size // max(compressed, 1):,}x "
            f"({compressed:,} -> {size:,} bytes)",
        )


def _inflate_and_count(raw, info: zipfile.ZipInfo, source: str) -> int:  # noqa: ANN001
    """Inflate one entry for real, bounded by its declared size; return its ``<row`` count."""
    raw.seek(info.header_offset)
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
    raw.seek(name_len + extra_len, 1)
    inflater = (
        zlib.decompressobj(-zlib.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
    )
    left, produced, crc, rows, tail = info.compress_size, 0, 0, 0, b""
    while left > 0:
        chunk = raw.read(min(_CHUNK_BYTES, left))
        if not chunk:
            raise zipfile.BadZipFile(f"{info.filename!r} is cut short")
        left -= len(chunk)
        while chunk:
            if inflater is None:
                out, chunk = chunk, b""
            else:
                out = inflater.decompress(chunk, _CHUNK_BYTES)
                chunk = inflater.unconsumed_tail
            produced += len(out)
            if produced > info.file_size:
                raise FileRejected(
                    source,
                    f"zip bomb suspected: {info.filename!r} expands beyond the "
                    f"{info.file_size:,} bytes it declares",
                )
            crc = zlib.crc32(out, crc)
            window = tail + out
            rows += len(_ROW_TAG.findall(window)) - len(_ROW_TAG.findall(tail))
            tail = window[-_ROW_TAG_OVERLAP:]
    if inflater is not None:
        out = inflater.flush()
        produced += len(out)
        crc = zlib.crc32(out, crc)
        rows += len(_ROW_TAG.findall(tail + out)) - len(_ROW_TAG.findall(tail))
        if not inflater.eof:
            raise zipfile.BadZipFile(f"{info.filename!r} is cut short")
    if produced != info.file_size or crc != info.CRC:
        raise zipfile.BadZipFile(f"{info.filename!r} is damaged (size or CRC mismatch)")
    return rows


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> worksheet part path, from workbook.xml and its rels (namespace-agnostic)."""
    try:
        book = _parse(zf, "xl/workbook.xml")
        rels = _parse(zf, "xl/_rels/workbook.xml.rels")
    except (KeyError, ElementTree.ParseError):
        return {}
    targets: dict[str, str] = {}
    for el in rels.iter():
        if _local(el.tag) == "Relationship" and el.get("Id") and el.get("Target"):
            target = el.get("Target", "")
            full = (
                target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
            )
            targets[el.get("Id", "")] = full
    parts: dict[str, str] = {}
    for el in book.iter():
        if _local(el.tag) != "sheet":
            continue
        rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), None)
        name = el.get("name")
        if name is not None and rid in targets:
            parts[name] = targets[rid]
    return parts


def _parse(zf: zipfile.ZipFile, name: str) -> ElementTree.Element:
    if zf.getinfo(name).file_size > XLSX_MAX_INDEX_BYTES:
        raise ElementTree.ParseError(f"{name} too large")
    return ElementTree.fromstring(zf.read(name))

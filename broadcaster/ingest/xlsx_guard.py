"""Checks on an .xlsx zip BEFORE any parser expands it: zip bombs, corrupt or truncated archives.

The central directory's sizes are only claims, so the parts a reader will parse (``*.xml`` and
``*.rels``) are inflated here for real, in bounded chunks, counting bytes and checking CRCs; an
entry that expands beyond what it declares, past the ratio or past the total budget is refused
before python-calamine sees it. While inflating, each worksheet's extent is measured
(:mod:`xlsx_extent`) so that an oversized sheet is refused before it is loaded.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from xml.etree import ElementTree

from broadcaster.errors import FileRejected
from broadcaster.ingest.xlsx_extent import OVERLAP_BYTES, SheetExtent

#: Most bytes all entries of one workbook may expand to (a 1,048,576-row sheet of a phone and
#: two short values is ~170 MB of XML).
XLSX_MAX_UNCOMPRESSED_BYTES = 1024**3
#: Most entries in one workbook.
XLSX_MAX_ENTRIES = 10_000
#: Highest expansion ratio allowed for an entry bigger than XLSX_RATIO_MIN_BYTES. Real sheets
#: compress 5-20x (measured: ~9x for varied rows, ~15x for one value repeated 200,000 times,
#: since every cell reference differs); bombs go 1000x and more.
XLSX_MAX_RATIO = 200
XLSX_RATIO_MIN_BYTES = 8 * 1024 * 1024
#: Most bytes of workbook.xml and its rels parsed to map sheet names to parts.
XLSX_MAX_INDEX_BYTES = 16 * 1024 * 1024
_CHUNK_BYTES = 1024 * 1024
_LOCAL_HEADER = struct.Struct("<4s22xHH")


@dataclass
class ZipReport:
    """What the guard learnt: each worksheet part's extent, and sheet name -> part."""

    extent_by_part: dict[str, SheetExtent] = field(default_factory=dict)
    part_by_sheet: dict[str, str] = field(default_factory=dict)

    def sheet_extent(self, sheet: str) -> SheetExtent | None:
        """The extent of a sheet's part; when the part is unknown, the largest of any worksheet."""
        part = self.part_by_sheet.get(sheet)
        if part in self.extent_by_part:
            return self.extent_by_part[part]
        return max(self.extent_by_part.values(), key=lambda e: e.cells, default=None)


def check_xlsx_zip(path: Path, source: str) -> ZipReport:
    """Refuse a corrupt, encrypted or bomb-like .xlsx; report its sheets' extents."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check_directory(infos, source)
            report = ZipReport()
            with path.open("rb") as raw:
                for info in infos:
                    if info.filename.endswith((".xml", ".rels")):
                        extent = (
                            SheetExtent() if info.filename.startswith("xl/worksheets/") else None
                        )
                        _inflate(raw, info, source, extent)
                        if extent is not None:
                            report.extent_by_part[info.filename] = extent
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


class _Meter:
    """Counts, checksums and scans an entry's inflated bytes; refuses more than it declares."""

    def __init__(self, info: zipfile.ZipInfo, source: str, extent: SheetExtent | None) -> None:
        self.info, self.source, self.extent = info, source, extent
        self.produced, self.crc, self.tail = 0, 0, b""

    def take(self, out: bytes) -> None:
        if not out:
            return
        self.produced += len(out)
        if self.produced > self.info.file_size:
            raise FileRejected(
                self.source,
                f"zip bomb suspected: {self.info.filename!r} expands beyond the "
                f"{self.info.file_size:,} bytes it declares",
            )
        self.crc = zlib.crc32(out, self.crc)
        if self.extent is not None:
            self.extent.feed(self.tail, out)
            self.tail = (self.tail + out)[-OVERLAP_BYTES:]


def _inflate(raw: BinaryIO, info: zipfile.ZipInfo, source: str, extent: SheetExtent | None) -> None:
    """Inflate one entry for real, in bounded pieces; feed ``extent`` if given."""
    raw.seek(info.header_offset)
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
    raw.seek(name_len + extra_len, 1)
    inflater = (
        zlib.decompressobj(-zlib.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
    )
    meter = _Meter(info, source, extent)
    left = info.compress_size
    while left > 0:
        chunk = raw.read(min(_CHUNK_BYTES, left))
        if not chunk:
            raise zipfile.BadZipFile(f"{info.filename!r} is cut short")
        left -= len(chunk)
        if inflater is None:
            meter.take(chunk)
            continue
        while chunk:  # at most _CHUNK_BYTES of output a call, however dense the input
            meter.take(inflater.decompress(chunk, _CHUNK_BYTES))
            chunk = inflater.unconsumed_tail
    if inflater is not None:
        while not inflater.eof and meter.produced <= info.file_size:
            out = inflater.decompress(b"", _CHUNK_BYTES)  # output still pending inside zlib
            if not out:
                break
            meter.take(out)
        if not inflater.eof:
            raise zipfile.BadZipFile(f"{info.filename!r} is cut short")
    if meter.produced != info.file_size or meter.crc != info.CRC:
        raise zipfile.BadZipFile(f"{info.filename!r} is damaged (size or CRC mismatch)")


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

"""Checks on an .xlsx zip BEFORE any parser expands it: zip bombs, corrupt or truncated archives.

The central directory's sizes are only claims, so every part python-calamine may read is inflated
here for real, in bounded chunks, counting bytes and checking CRCs; an entry that expands beyond
what it declares, past the ratio or past the total budget is refused before calamine sees it.
"What calamine may read" is every ``*.xml``/``*.rels`` part and, whatever their names, every part
the workbook's relationships (``xl/_rels/workbook.xml.rels``, ``_rels/.rels``) point to, under
each way a target can be resolved. While inflating, each such part is parsed (:mod:`xlsx_extent`,
no DTDs, no entities) and its extent measured, so that an oversized sheet is refused before it is
loaded and malformed XML is refused before calamine's lenient parser reads past it.
"""

from __future__ import annotations

import posixpath
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from broadcaster.errors import FileRejected
from broadcaster.ingest.xlsx_extent import SafeXml, SheetExtent, SheetScan

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


WORKBOOK_PART = "xl/workbook.xml"
WORKBOOK_RELS_PART = "xl/_rels/workbook.xml.rels"
ROOT_RELS_PART = "_rels/.rels"
#: Parts whose names say XML: always parsed, whatever the relationships say.
_XML_SUFFIXES = (".xml", ".rels")


@dataclass(frozen=True)
class SheetEntry:
    """One sheet of ``xl/workbook.xml``: its name, whether it is shown, whether a worksheet."""

    name: str
    visible: bool
    worksheet: bool


@dataclass
class ZipReport:
    """What the guard learnt: each parsed part's extent, and sheet name -> part(s)."""

    extent_by_part: dict[str, SheetExtent] = field(default_factory=dict)
    #: Sheet name -> its part, resolved the usual way (``xl/`` + a relative target).
    part_by_sheet: dict[str, str] = field(default_factory=dict)
    #: Sheet name -> every existing part its target may name (one reader resolves differently).
    parts_of_sheet: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: The workbook's sheets in order (what :mod:`xlsx_stream`'s reader chooses from).
    sheets: list[SheetEntry] = field(default_factory=list)
    #: Whether dates count from 1904 (``<workbookPr date1904="1"/>``).
    date1904: bool = False

    def sheet_extent(self, sheet: str) -> SheetExtent | None:
        """The largest extent among a sheet's parts; unknown parts: the largest of any part."""
        known = [self.extent_by_part[p] for p in self.parts_of_sheet.get(sheet, ())]
        pool = known or list(self.extent_by_part.values())
        return max(pool, key=lambda e: e.cells, default=None)


@dataclass
class _Index:
    """Sheet names and relationship targets, read from the workbook before anything else."""

    sheets: dict[str, str] = field(default_factory=dict)  # name -> relationship target
    targets: set[str] = field(default_factory=set)  # existing entries some target may name
    order: list[SheetEntry] = field(default_factory=list)
    date1904: bool = False


def check_xlsx_zip(path: Path, source: str) -> ZipReport:
    """Refuse a corrupt, encrypted or bomb-like .xlsx; report its sheets' extents."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check_directory(infos, source)
            names = {info.filename for info in infos}
            index = _read_index(zf, names, source)
            report = ZipReport()
            with path.open("rb") as raw:
                for info in infos:
                    if info.filename.lower().endswith(_XML_SUFFIXES) or info.filename in (
                        index.targets
                    ):
                        extent = SheetExtent()
                        _inflate(raw, info, source, SheetScan(source, info.filename, extent))
                        report.extent_by_part[info.filename] = extent
            report.sheets, report.date1904 = index.order, index.date1904
            for sheet, target in index.sheets.items():
                parts = tuple(p for p in _resolutions(target) if p in names)
                report.parts_of_sheet[sheet] = parts
                if parts:
                    report.part_by_sheet[sheet] = parts[0]
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
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise FileRejected(source, f"corrupt .xlsx: the entry {twice!r} is in the archive twice")
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
    """Counts, checksums and parses an entry's inflated bytes; refuses more than it declares."""

    def __init__(self, info: zipfile.ZipInfo, source: str, scan: SafeXml | None) -> None:
        self.info, self.source, self.scan = info, source, scan
        self.produced, self.crc = 0, 0

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
        if self.scan is not None:
            self.scan.feed(out)


def _inflate(raw: BinaryIO, info: zipfile.ZipInfo, source: str, scan: SafeXml | None) -> None:
    """Inflate one entry for real, in bounded pieces; feed ``scan`` (then close it) if given."""
    raw.seek(info.header_offset)
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
    raw.seek(name_len + extra_len, 1)
    inflater = (
        zlib.decompressobj(-zlib.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
    )
    meter = _Meter(info, source, scan)
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
    if scan is not None:
        scan.close()


class _Collect(SafeXml):
    """Keeps the attributes of the elements named ``wanted`` (by local name)."""

    def __init__(self, source: str, part: str, wanted: str) -> None:
        super().__init__(source, part)
        self.wanted = wanted
        self.found: list[dict[str, str]] = []

    def start(self, local: str, attrs: dict[str, str]) -> None:
        if local == self.wanted:
            self.found.append(attrs)


def _elements(zf: zipfile.ZipFile, name: str, wanted: str, source: str) -> list[dict[str, str]]:
    """The ``wanted`` elements of an index part, parsed safely and at most XLSX_MAX_INDEX_BYTES."""
    info = zf.getinfo(name)
    if info.file_size > XLSX_MAX_INDEX_BYTES:
        raise FileRejected(
            source, f"{name!r} is {info.file_size:,} bytes, over {XLSX_MAX_INDEX_BYTES:,}"
        )
    scan = _Collect(source, name, wanted)
    with zf.open(info) as part:
        while chunk := part.read(_CHUNK_BYTES):
            scan.feed(chunk)
    scan.close()
    return scan.found


def _resolutions(target: str) -> list[str]:
    """Every entry name a relationship target may mean, the most usual first.

    ``worksheets/s.xml`` is relative to ``xl/``; ``/xl/s.xml`` absolute; readers differ on
    ``xl/s.xml``, ``..`` and backslashes, so each reading is listed and each is guarded.
    """
    t = target.replace("\\", "/")
    bare = t.lstrip("/")
    usual = bare if t.startswith("/") else posixpath.normpath(f"xl/{t}")
    found = [usual, bare, f"xl/{t}", f"xl/{bare}", t, posixpath.normpath(bare)]
    return list(dict.fromkeys(found))


def _read_index(zf: zipfile.ZipFile, names: set[str], source: str) -> _Index:
    """Sheets and the parts every workbook and package relationship names (existing ones only)."""
    index = _Index()
    ids: dict[str, str] = {}
    types: dict[str, str] = {}
    for rels in (ROOT_RELS_PART, WORKBOOK_RELS_PART):
        if rels not in names:
            continue
        for rel in _elements(zf, rels, "Relationship", source):
            target = rel.get("Target")
            if target is None or rel.get("TargetMode", "").lower() == "external":
                continue
            if rels == WORKBOOK_RELS_PART and rel.get("Id"):
                ids[rel["Id"]] = target
                types[rel["Id"]] = rel.get("Type", "")
            index.targets.update(p for p in _resolutions(target) if p in names)
    if WORKBOOK_PART in names:
        for sheet in _elements(zf, WORKBOOK_PART, "sheet", source):
            rid = next((v for k, v in sheet.items() if k.rpartition(":")[2] == "id"), None)
            name = sheet.get("name")
            if name is not None and rid in ids:
                index.sheets[name] = ids[rid]
                index.order.append(
                    SheetEntry(
                        name,
                        sheet.get("state", "visible") not in ("hidden", "veryHidden"),
                        types[rid].rpartition("/")[2] == "worksheet",
                    )
                )
        for props in _elements(zf, WORKBOOK_PART, "workbookPr", source):
            index.date1904 = props.get("date1904", "").lower() in ("1", "true")
    return index

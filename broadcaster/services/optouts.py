"""The suppression list of a workspace: list, add, remove, CSV import and export.

Numbers are stored in E.164; an entry keeps its source (``inbound``, ``gateway``, ``operator``,
``import``) and time. Import reads ``number[,detail]`` lines (a header row whose first cell is
not a number is skipped) and refuses the whole file, naming the line, when one number is bad.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterator

from broadcaster.domain.phones import normalize_phone
from broadcaster.domain.wire import iso8601
from broadcaster.errors import InputError, NotFound
from broadcaster.services.views import OptoutView
from broadcaster.store import codes_repo, optouts_repo
from broadcaster.store.db import Engine, utcnow

#: Most entries one page returns.
MAX_PAGE = 1000
#: Most numbers one import may add (a bigger list is split by the caller).
MAX_IMPORT_ROWS = 1_000_000
CSV_HEADER = ("number", "source", "detail", "created_at")
#: Longest detail of an entry (the column's width).
DETAIL_CHARS = 200


def e164(number: str, region: str | None) -> str:
    """The number in E.164, or InputError naming it."""
    phone = normalize_phone(number, region)
    if not phone.ok or phone.e164 is None:
        why = phone.reason.value if phone.reason else "invalid"
        raise InputError(f"{number!r} is not a valid phone number ({why})")
    return phone.e164


def list_optouts(
    engine: Engine, workspace: str, *, after: str = "", limit: int = 100
) -> list[OptoutView]:
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        rows = optouts_repo.page(conn, ws, after=after, limit=max(1, min(limit, MAX_PAGE)))
    return [OptoutView.of(r) for r in rows]


def add_optout(
    engine: Engine,
    workspace: str,
    number: str,
    *,
    region: str | None,
    detail: str | None = None,
    source: str = optouts_repo.SOURCE_OPERATOR,
) -> OptoutView:
    """Suppress ``number``; an entry already there is kept as it was (and returned)."""
    n = e164(number, region)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        optouts_repo.add(conn, ws, [(n, source, detail)], utcnow())
        row = optouts_repo.get(conn, ws, n)
    assert row is not None
    return OptoutView.of(row)


def remove_optout(engine: Engine, workspace: str, number: str, *, region: str | None) -> None:
    n = e164(number, region)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        if not optouts_repo.remove(conn, ws, n):
            raise NotFound(f"{n} is not on the suppression list of workspace {workspace!r}")


def _rows(lines: Iterator[list[str]], region: str | None) -> Iterator[tuple[str, str | None]]:
    line_no = 0
    while True:
        line_no += 1
        try:
            cells = next(lines)
        except StopIteration:
            return
        except csv.Error as exc:  # a cell over csv's field limit (128 KiB), a stray quote...
            raise InputError(f"line {line_no}: not readable as CSV ({exc})") from None
        if not cells or not cells[0].strip():
            continue
        try:
            number = e164(cells[0].strip(), region)
        except InputError as exc:
            if line_no == 1:  # a header row
                continue
            raise InputError(f"line {line_no}: {exc}") from None
        detail = cells[1].strip() if len(cells) > 1 and cells[1].strip() else None
        if detail is not None and (len(detail) > DETAIL_CHARS or "\x00" in detail):
            raise InputError(
                f"line {line_no}: the detail must be at most {DETAIL_CHARS} characters "
                "without NUL characters"
            )
        yield number, detail


def import_csv(engine: Engine, workspace: str, text: str, *, region: str | None) -> dict[str, int]:
    """Add every number of a CSV (all or nothing); returns ``{"read", "added"}``."""
    rows = list(_rows(csv.reader(io.StringIO(text)), region))
    if not rows:  # nothing that reads as a number: a wrong file, not an empty success
        raise InputError("no phone number in the CSV: send number[,detail] per line")
    if len(rows) > MAX_IMPORT_ROWS:
        raise InputError(f"{len(rows):,} numbers; one import takes at most {MAX_IMPORT_ROWS:,}")
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        added = optouts_repo.add(
            conn, ws, [(n, optouts_repo.SOURCE_IMPORT, d) for n, d in rows], utcnow()
        )
    return {"read": len(rows), "added": added}


def export_pieces(
    engine: Engine, workspace: str, page_rows: int = MAX_PAGE
) -> Generator[bytes, None, None]:
    """Every entry of the workspace as UTF-8 CSV (``number,source,detail,created_at``), one
    piece per page of ``page_rows`` entries read in its own short transaction: an export of
    millions of numbers holds one page in memory, never the whole file, and no transaction
    spans it."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_HEADER)
    yield out.getvalue().encode()
    after = ""
    while True:
        page = list_optouts(engine, workspace, after=after, limit=page_rows)
        out.seek(0)
        out.truncate()
        for e in page:
            created = iso8601(e.created_at, millis=True)
            w.writerow([e.number, e.source, e.detail or "", created])
        if page:
            yield out.getvalue().encode()
        if len(page) < min(page_rows, MAX_PAGE):
            return
        after = page[-1].number

"""The suppression list of a workspace: list, add, remove, CSV import and export.

Numbers are stored in E.164; an entry keeps its source (``inbound``, ``gateway``, ``operator``,
``import``) and time. Import reads ``number[,detail]`` lines (a header row whose first cell is
not a number is skipped) and refuses the whole file, naming the line, when one number is bad.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from broadcaster.domain.phones import normalize_phone
from broadcaster.domain.wire import iso8601, utc_naive
from broadcaster.errors import InputError, NotFound
from broadcaster.store import codes_repo, optouts_repo
from broadcaster.store.db import Engine, utcnow

#: Most entries one page returns.
MAX_PAGE = 1000
#: Most numbers one import may add (a bigger list is split by the caller).
MAX_IMPORT_ROWS = 1_000_000
CSV_HEADER = ("number", "source", "detail", "created_at")


def e164(number: str, region: str | None) -> str:
    """The number in E.164, or InputError naming it."""
    phone = normalize_phone(number, region)
    if not phone.ok or phone.e164 is None:
        why = phone.reason.value if phone.reason else "invalid"
        raise InputError(f"{number!r} is not a valid phone number ({why})")
    return phone.e164


def entry_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": row["number"],
        "source": row["source"],
        "detail": row["detail"],
        "createdAt": iso8601(utc_naive(row["created_at"]), millis=True),
    }


def list_optouts(
    engine: Engine, workspace: str, *, after: str = "", limit: int = 100
) -> list[dict[str, Any]]:
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        rows = optouts_repo.page(conn, ws, after=after, limit=max(1, min(limit, MAX_PAGE)))
    return [entry_view(r) for r in rows]


def add_optout(
    engine: Engine,
    workspace: str,
    number: str,
    *,
    region: str | None,
    detail: str | None = None,
    source: str = optouts_repo.SOURCE_OPERATOR,
) -> dict[str, Any]:
    """Suppress ``number``; an entry already there is kept as it was (and returned)."""
    n = e164(number, region)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        optouts_repo.add(conn, ws, [(n, source, detail)], utcnow())
        row = optouts_repo.get(conn, ws, n)
    assert row is not None
    return entry_view(row)


def remove_optout(engine: Engine, workspace: str, number: str, *, region: str | None) -> None:
    n = e164(number, region)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        if not optouts_repo.remove(conn, ws, n):
            raise NotFound(f"{n} is not on the suppression list of workspace {workspace!r}")


def _rows(lines: Iterable[list[str]], region: str | None) -> Iterator[tuple[str, str | None]]:
    for line_no, cells in enumerate(lines, start=1):
        if not cells or not cells[0].strip():
            continue
        try:
            number = e164(cells[0].strip(), region)
        except InputError as exc:
            if line_no == 1:  # a header row
                continue
            raise InputError(f"line {line_no}: {exc}") from None
        yield number, (cells[1].strip() if len(cells) > 1 and cells[1].strip() else None)


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


def export_csv(engine: Engine, workspace: str) -> str:
    """Every entry of the workspace as CSV (``number,source,detail,created_at``)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_HEADER)
    after = ""
    while True:
        page = list_optouts(engine, workspace, after=after, limit=MAX_PAGE)
        for e in page:
            w.writerow([e["number"], e["source"], e["detail"] or "", e["createdAt"]])
        if len(page) < MAX_PAGE:
            return out.getvalue()
        after = page[-1]["number"]

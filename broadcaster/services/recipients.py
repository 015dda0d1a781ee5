"""Turn raw recipient rows into message drafts or row errors: the rules of one row.

Pure apart from the types it reads; the readers stream rows in, drafts stream out, so a
million-row file never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from broadcaster.constants import MAX_PARAM_CHARS, MAX_SENDABLE_CHARS
from broadcaster.domain.phones import PhoneNormalizer
from broadcaster.domain.segments import SegmentInfo, measure, measure_truncated
from broadcaster.domain.states import MessageStatus
from broadcaster.domain.templates import Template
from broadcaster.ingest import RecipientRow, RowProblem

MAX_VALUE_CHARS = 200


@dataclass(frozen=True, slots=True)
class Draft:
    """A message ready to store: valid number, rendered text, measured segments."""

    line: int
    recipient: str
    text: str
    encoding: str
    segments: int
    status: MessageStatus  # QUEUE, or SEGMENTS_EXCEEDED when the text is too long
    external_id: str | None = None  # the client's own ids (seed 001), stored and echoed
    client_id: str | None = None
    #: The recipient's IANA zone, for broadcasts with a send window (quiet hours); else None.
    tz: str | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that produced no message, with where and why."""

    line: int
    value: str
    reason: str


def column_lookup(columns: tuple[str, ...] | None) -> dict[str, int]:
    """Header name (case-insensitive) -> index into a row's params."""
    return {name.strip().lower(): i for i, name in enumerate(columns or ()) if name.strip()}


def unknown_names(template: Template, columns: tuple[str, ...] | None) -> list[str]:
    """Named placeholders no column can fill: the whole file would fail, so refuse it up front."""
    known = column_lookup(columns)
    return sorted(n for n in template.names if n.lower() not in known)


def _blank(template: Template, params: tuple[str, ...], named: dict[str, str] | None) -> list[str]:
    """Placeholders whose cell is present but empty: "Hi , your balance is ." helps nobody."""
    out = [f"{{{i}}}" for i in sorted(template.positional) if i < len(params) and not params[i]]
    if named is not None:
        out += [f"{{{n}}}" for n in sorted(template.names) if not named.get(n.lower(), "x")]
    return out


def _too_long(
    template: Template, params: tuple[str, ...], named: dict[str, str] | None
) -> str | None:
    """Why a value this row inserts is over MAX_PARAM_CHARS, or None: such a text cannot be sent."""
    for i in sorted(template.positional):
        if i < len(params) and len(params[i]) > MAX_PARAM_CHARS:
            return f"value of {{{i}}} has {len(params[i]):,} characters; the limit is {MAX_PARAM_CHARS:,}"
    for name in sorted(template.names):
        value = (named or {}).get(name.lower(), "")
        if len(value) > MAX_PARAM_CHARS:
            return f"value of {{{name}}} has {len(value):,} characters; the limit is {MAX_PARAM_CHARS:,}"
    return None


def render_draft(
    template: Template, params: tuple[str, ...], named: dict[str, str] | None
) -> tuple[str, SegmentInfo]:
    """The text to store and its cost; a text over MAX_SENDABLE_CHARS is kept only that long.

    Such a text is SEGMENTS_EXCEEDED whatever follows, so the rest is counted, never built.
    """
    rendered = template.render_bounded(params, named, max_chars=MAX_SENDABLE_CHARS)
    if rendered.complete:
        return rendered.text, measure(rendered.text)
    return rendered.text, measure_truncated(rendered.text, rendered.characters)


def build_drafts(
    rows: Iterable[RecipientRow | RowProblem],
    template: Template | None,
    normalizer: PhoneNormalizer,
    columns: tuple[str, ...] | None,
) -> Iterator[Draft | RowError]:
    """One Draft or RowError per row, in file order. No template (a dry run): numbers only."""
    index = column_lookup(columns)
    wants_names = bool(template and template.names)
    for row in rows:
        if isinstance(row, RowProblem):
            yield RowError(row.line, row.value[:MAX_VALUE_CHARS], row.reason)
            continue
        phone = normalizer(row.phone)
        if not phone.ok:
            reason = phone.reason.value if phone.reason else "invalid_number"
            yield RowError(row.line, row.phone[:MAX_VALUE_CHARS], reason)
            continue
        if template is None:
            yield Draft(row.line, phone.e164 or "", "", "GSM-7", 0, MessageStatus.QUEUE)
            continue
        named = (
            {n: row.params[i] for n, i in index.items() if i < len(row.params)}
            if wants_names
            else None
        )
        missing = template.missing(row.params, named) or _blank(template, row.params, named)
        if missing:
            yield RowError(
                row.line, row.phone[:MAX_VALUE_CHARS], "missing value for " + ", ".join(missing)
            )
            continue
        too_long = _too_long(template, row.params, named)
        if too_long:
            yield RowError(row.line, row.phone[:MAX_VALUE_CHARS], too_long)
            continue
        text, info = render_draft(template, row.params, named)
        status = MessageStatus.SEGMENTS_EXCEEDED if info.exceeded else MessageStatus.QUEUE
        yield Draft(
            row.line,
            phone.e164 or "",
            text,
            info.encoding,
            info.segments,
            status,
            row.external_id,
            row.client_id,
        )

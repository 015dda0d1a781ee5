"""Turn raw recipient rows into message drafts or row errors: the rules of one row.

Pure apart from the types it reads; the readers stream rows in, drafts stream out, so a
million-row file never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from broadcaster.constants import MAX_PARAM_CHARS, MAX_SENDABLE_CHARS
from broadcaster.domain.phones import PhoneNormalizer
from broadcaster.domain.quiet_hours import recipient_zone
from broadcaster.domain.segments import SegmentInfo, cost, measure, measure_truncated
from broadcaster.domain.states import MessageStatus
from broadcaster.domain.templates import Placeholder, Template
from broadcaster.ingest import RecipientRow, RowProblem

MAX_VALUE_CHARS = 200


class Draft(NamedTuple):
    """A message ready to store: valid number, rendered text, measured segments.

    A named tuple, not a dataclass: one is made per row of a file (a frozen dataclass's
    ``__init__`` cost ~2 µs a row, four times a tuple's)."""

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


class RowError(NamedTuple):
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


@dataclass(frozen=True, slots=True)
class _FastRender:
    """A template compiled against one file's columns: ``str.format`` over the row's params.

    Every placeholder, named or positional, becomes an index into ``params`` (a name through the
    header, as the slow path resolves it), so a row whose values are all present, non-empty and
    within bounds renders in one C call; any other row takes the slow path, which words the error.
    """

    #: ``str.format`` pattern with positional fields only (literal braces doubled).
    pattern: str
    #: Distinct params indexes the template reads.
    needed: tuple[int, ...]


def _fast_render(template: Template, index: dict[str, int]) -> _FastRender | None:
    """The template as a format pattern over params; None when a name has no column."""
    pieces: list[str] = []
    needed: dict[int, None] = {}
    for part in template.parts:
        if isinstance(part, str):
            pieces.append(part.replace("{", "{{").replace("}", "}}"))
            continue
        at = _slot_index(part, index)
        if at is None:
            return None
        needed[at] = None
        pieces.append(f"{{{at}}}")
    return _FastRender("".join(pieces), tuple(needed))


def _slot_index(slot: Placeholder, index: dict[str, int]) -> int | None:
    """Which params value fills ``slot``: its position, or its header's column."""
    if slot.index is not None:
        return slot.index
    return index.get(slot.key) if slot.key is not None else None


def _render_fast(fast: _FastRender, params: tuple[str, ...]) -> str | None:
    """The text of a row every value of which is present, non-empty and short; else None."""
    count = len(params)
    for at in fast.needed:
        if at >= count:
            return None
        value = params[at]
        if not value or len(value) > MAX_PARAM_CHARS:
            return None
    text = fast.pattern.format(*params)
    return text if len(text) <= MAX_SENDABLE_CHARS else None


def build_drafts(
    rows: Iterable[RecipientRow | RowProblem],
    template: Template | None,
    normalizer: PhoneNormalizer,
    columns: tuple[str, ...] | None,
) -> Iterator[Draft | RowError]:
    """One Draft or RowError per row, in file order. No template (a dry run): numbers only."""
    index = column_lookup(columns)
    wants_names = bool(template and template.names)
    fast = _fast_render(template, index) if template is not None else None
    e164_of, queue, exceeded_status = (
        normalizer.e164,
        MessageStatus.QUEUE,
        MessageStatus.SEGMENTS_EXCEEDED,
    )
    for row in rows:
        if type(row) is not RecipientRow and isinstance(row, RowProblem):
            yield RowError(row.line, row.value[:MAX_VALUE_CHARS], row.reason)
            continue
        e164 = e164_of(row.phone)
        if e164 is None:
            phone = normalizer(row.phone)
            reason = phone.reason.value if phone.reason else "invalid_number"
            yield RowError(row.line, row.phone[:MAX_VALUE_CHARS], reason)
            continue
        if template is None:
            yield Draft(row.line, e164, "", "GSM-7", 0, MessageStatus.QUEUE)
            continue
        text = _render_fast(fast, row.params) if fast is not None else None
        if text is not None:  # the common row: same text and cost the slow path computes
            encoding, segments, exceeded = cost(text)
            yield Draft(
                row.line,
                e164,
                text,
                encoding,
                segments,
                exceeded_status if exceeded else queue,
                row.external_id,
                row.client_id,
            )
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
            e164,
            text,
            info.encoding,
            info.segments,
            status,
            row.external_id,
            row.client_id,
        )


def with_zones(
    items: Iterator[Draft | RowError], fallback: str, zones: set[str]
) -> Iterator[Draft | RowError]:
    """Each draft with its recipient's zone (``fallback`` where the number spans several), the
    zones met collected in ``zones``: a broadcast with a send window judges them at each claim."""
    for item in items:
        if isinstance(item, Draft):
            item = item._replace(tz=recipient_zone(item.recipient, fallback))
            zones.add(item.tz or fallback)
        yield item

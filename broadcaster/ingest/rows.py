"""What every reader yields: rows of raw text, problems with line numbers, and the table around them.

Readers know nothing about phone numbers or templates: a row's ``phone`` is the raw cell as text
(trimmed, never validated) and ``params`` are the other cells in file order. The domain decides
what is valid later.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: Longest slice of an offending value a RowProblem keeps, in characters.
PROBLEM_VALUE_CHARS = 100


class RecipientRow(NamedTuple):
    """One recipient as the file gives it (a named tuple: one is made per row of a file)."""

    #: 1-based physical line: CSV/TXT the line where the record starts, XLSX the sheet row
    #: number, JSON the index in the recipient list plus one.
    line: int
    #: The phone cell as text, trimmed, not validated (may be empty: the domain refuses it).
    phone: str
    #: The non-phone cells in file order, trimmed: ``{0}`` is ``params[0]``. With a header row the
    #: tuple has exactly one value per header column (missing cells are ``""``), plus any non-empty
    #: extra cells; without a header trailing empty cells are dropped.
    params: tuple[str, ...]
    #: The client's own identifiers for this message (seed 001 ``externalId``, ``clientId``).
    external_id: str | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row the reader itself could not read; reading goes on after it."""

    line: int
    #: The start of the offending text, at most PROBLEM_VALUE_CHARS characters.
    value: str
    reason: str

    @classmethod
    def of(cls, line: int, value: str, reason: str) -> RowProblem:
        """A problem whose value is cut to PROBLEM_VALUE_CHARS."""
        return cls(line, value[:PROBLEM_VALUE_CHARS], reason)


@dataclass
class RecipientTable:
    """An open recipient file: what it is, and its rows as a lazy, single-pass iterator.

    ``rows`` may raise :class:`~broadcaster.errors.FileRejected` while being iterated, for problems
    only found late (more than ``max_rows`` rows, a stream that breaks off). The caller must treat
    that as a failure of the whole file and keep nothing of it (the service rolls back).
    """

    #: The file name, for messages.
    source: str
    #: ``"csv" | "txt" | "xlsx" | "json"``: what the content turned out to be.
    format: str
    #: Header names of the params columns (same order as ``params``); None without a header.
    columns: tuple[str, ...] | None
    #: Extra facts of the file, e.g. a JSON batch's ``from`` and ``text``; reader details such as
    #: ``encoding``, ``delimiter``, ``sheet`` and ``phone_column`` (header name or 0-based index).
    meta: dict[str, Any] = field(default_factory=dict)
    rows: Iterator[RecipientRow | RowProblem] = field(default_factory=lambda: iter(()))
    #: How to read this very file again: the keyword arguments of ``open_recipients`` (with
    #: ``path``), set by it; None for tables not read from a file. A producer process that
    #: reads a big file on the second core opens it itself from these.
    reopen: dict[str, Any] | None = None

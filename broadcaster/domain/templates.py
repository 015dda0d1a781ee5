"""Message templates: parsed once per broadcast, rendered once per recipient.

Syntax:

- ``{0}``, ``{1}`` … and ``<0>``, ``<1>`` … are the same positional placeholders (the seeds
  write braces, the product card angle brackets): value ``n`` of the row's parameters.
- ``{first_name}``: a named placeholder, filled from the column of that header. The name is
  made of identifier characters (``str.isidentifier``, so ``{teléfono}`` works). Names match
  header names case-insensitively (``str.lower`` on both sides): ``{First_Name}`` is filled by a
  ``first_name`` or ``FIRST_NAME`` column, because people do not type headers consistently.
- ``{{`` and ``}}`` are a literal ``{`` and ``}``. ``<`` is only special when digits and ``>``
  follow, so ``a < b`` and ``<b>`` stay text; there is no way to write a literal ``<0>``.
- Anything else in braces (``{}``, ``{first name}``, ``{-1}``), an unclosed ``{`` or a lone
  ``}`` is a TemplateError, with the column, rather than text sent to thousands by mistake.

Values: an empty string is a value and renders as nothing (an empty cell was written on
purpose, or a header the row left blank: refusing it is the caller's business). A value the row
does not have (index past the row's end, name not in the mapping, ``None``) is missing:
``render`` raises MissingValue and ``missing`` lists it, so no message goes out with a raw
placeholder. Values are inserted literally and never expanded again: a value ``{1}`` stays
``{1}``.

Bounds: a template holds at most ``MAX_TEMPLATE_PLACEHOLDERS`` placeholders (every use counts),
and ``render_bounded`` stops building the text at a character limit while still counting the
whole length, so ``{0}`` x 100 with a long value never makes a string of millions of characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from broadcaster.constants import MAX_TEMPLATE_PLACEHOLDERS
from broadcaster.errors import TemplateError

# One alternative per token; anything not matched is literal text.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|<([0-9]+)>|[{}]")


class MissingValue(ValueError):
    """A row has no value for a placeholder its template uses."""

    def __init__(self, placeholder: str) -> None:
        self.placeholder = placeholder
        super().__init__(f"no value for {placeholder}")


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One slot: positional (``index``) or named (``key``, lower-cased)."""

    #: How errors name it: ``{1}`` for positions however written, ``{first_name}`` as first written.
    label: str
    index: int | None
    key: str | None


def _named_value(named: Mapping[str, str] | None, slot: Placeholder) -> str | None:
    """Exact-case key, lower-case key, then any key that lowers to the same name."""
    if not named or slot.key is None:
        return None
    name = slot.label[1:-1]
    value = named.get(name)
    if value is None:
        value = named.get(slot.key)
    if value is None:
        value = next((v for k, v in named.items() if k.lower() == slot.key), None)
    return value


def _value(slot: Placeholder, params: Sequence[str], named: Mapping[str, str] | None) -> str | None:
    """The row's value for ``slot``, or None when the row has none."""
    if slot.index is None:
        return _named_value(named, slot)
    return params[slot.index] if slot.index < len(params) else None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A text rendered up to a limit: ``text`` is whole when ``complete``, else its start."""

    #: The rendered text, or its first ``max_chars`` characters when it is longer.
    text: str
    #: Characters (code points) of the whole text, counted without building it.
    characters: int
    #: ``text`` is the whole text (``characters <= max_chars``).
    complete: bool


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template; build it with :func:`parse_template`."""

    source: str
    #: Literal text and placeholders in order; adjacent literals merged, ``{{`` already ``{``.
    parts: tuple[str | Placeholder, ...]
    #: Parameter indexes needed (``{0}`` and ``<0>`` alike).
    positional: frozenset[int]
    #: Named placeholders, as first written.
    names: frozenset[str]
    #: Distinct placeholders in order of first use (what ``missing`` checks per row).
    slots: tuple[Placeholder, ...] = ()

    def render(self, params: Sequence[str], named: Mapping[str, str] | None = None) -> str:
        """The message for one row; MissingValue names the first placeholder it cannot fill."""
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            value = _value(part, params, named)
            if value is None:
                raise MissingValue(part.label)
            pieces.append(value)
        return "".join(pieces)

    def render_bounded(
        self, params: Sequence[str], named: Mapping[str, str] | None = None, *, max_chars: int
    ) -> Rendered:
        """Render at most ``max_chars`` characters; the rest is counted, never copied.

        Costs O(parts + max_chars) whatever the values' lengths. MissingValue as ``render``.
        """
        pieces: list[str] = []
        kept = total = 0
        for part in self.parts:
            if isinstance(part, str):
                value = part
            else:
                found = _value(part, params, named)
                if found is None:
                    raise MissingValue(part.label)
                value = found
            total += len(value)
            if kept < max_chars:
                piece = value[: max_chars - kept]
                pieces.append(piece)
                kept += len(piece)
        return Rendered("".join(pieces), total, total <= max_chars)

    def missing(self, params: Sequence[str], named: Mapping[str, str] | None = None) -> list[str]:
        """Placeholders this row cannot fill, each once, in template order: ``["{1}", "{name}"]``."""
        return [slot.label for slot in self.slots if _value(slot, params, named) is None]


def _placeholder(token: re.Match[str], labels: dict[str, str]) -> Placeholder:
    """The slot a ``{…}`` or ``<n>`` token names; TemplateError when it names none."""
    inner = token.group(1) if token.group(2) is None else token.group(2)
    if inner.isascii() and inner.isdigit():
        index = int(inner)
        return Placeholder(f"{{{index}}}", index, None)
    if inner.isidentifier():
        key = inner.lower()
        label = labels.setdefault(key, f"{{{inner}}}")  # one spelling per name
        return Placeholder(label, None, key)
    column = token.start() + 1
    raise TemplateError(
        f"column {column}: {{{inner}}} is not a placeholder (use {{0}}, {{name}}, or {{{{ }}}})"
    )


def _tokens(text: str) -> list[str | Placeholder]:
    """Literal runs and placeholders of ``text``, left to right."""
    parts: list[str | Placeholder] = []
    labels: dict[str, str] = {}
    position = 0
    for token in _TOKEN.finditer(text):
        parts.append(text[position : token.start()])
        lexeme = token.group(0)
        if lexeme in ("{{", "}}"):
            parts.append(lexeme[0])
        elif lexeme == "{":
            raise TemplateError(f"column {token.start() + 1}: unclosed {{ (write {{{{ for a brace)")
        elif lexeme == "}":
            raise TemplateError(f"column {token.start() + 1}: lone }} (write }}}} for a brace)")
        else:
            parts.append(_placeholder(token, labels))
        position = token.end()
    parts.append(text[position:])
    return parts


def _merge(parts: list[str | Placeholder]) -> tuple[str | Placeholder, ...]:
    """Join adjacent literals and drop empty ones: fewer steps per render."""
    merged: list[str | Placeholder] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return tuple(merged)


def parse_template(text: str) -> Template:
    """Parse ``text`` once; TemplateError when it is empty or its braces do not pair up."""
    if not text or not text.strip():
        raise TemplateError("the message text is empty")
    parts = _merge(_tokens(text))
    uses = sum(isinstance(part, Placeholder) for part in parts)
    if uses > MAX_TEMPLATE_PLACEHOLDERS:
        raise TemplateError(
            f"template has {uses:,} placeholders; the limit is {MAX_TEMPLATE_PLACEHOLDERS:,}"
        )
    slots = tuple(dict.fromkeys(part for part in parts if isinstance(part, Placeholder)))
    return Template(
        source=text,
        parts=parts,
        positional=frozenset(s.index for s in slots if s.index is not None),
        names=frozenset(s.label[1:-1] for s in slots if s.key is not None),
        slots=slots,
    )

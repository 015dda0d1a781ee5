"""Contacts in seed 003's words: identifiers of a type, attributes that placeholders read.

Pure rules, no I/O:

- identifier types are the seed's ``EMAIL``, ``MOBILE``, ``APP_ALIAS``, ``EXTERNAL`` and ``ID``
  (``ID`` is the contact's own ``contactID``: looked up, never stored);
- a ``MOBILE`` is kept in E.164 (:mod:`broadcaster.domain.phones`), an ``EMAIL`` lower-cased,
  the others as given (trimmed), so one person is one value whichever way it was typed;
- attributes are a flat JSON object of short names and scalar values; a template's
  ``{first_name}`` is filled from them through :mod:`broadcaster.domain.templates`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any

from broadcaster.domain.phones import PhoneResult, normalize_phone
from broadcaster.domain.templates import Template
from broadcaster.errors import InputError


class IdentifierType(StrEnum):
    """Seed 003's contact identifier types."""

    EMAIL = "EMAIL"
    MOBILE = "MOBILE"
    APP_ALIAS = "APP_ALIAS"
    EXTERNAL = "EXTERNAL"
    ID = "ID"


#: Types a contact stores (``ID`` is its contactID itself).
STORED_TYPES = tuple(t for t in IdentifierType if t is not IdentifierType.ID)
#: Longest identifier value stored (an e-mail address is at most 254 characters).
VALUE_CHARS = 254
#: Attributes one contact may hold, and the longest name and value.
MAX_ATTRIBUTES = 100
ATTRIBUTE_NAME_CHARS = 64
ATTRIBUTE_VALUE_CHARS = 1_000
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def identifier_type(raw: object) -> IdentifierType:
    """The type named by ``raw`` (any case); InputError listing the types otherwise."""
    if isinstance(raw, str) and raw.strip().upper() in IdentifierType.__members__:
        return IdentifierType(raw.strip().upper())
    names = ", ".join(t.value for t in IdentifierType)
    raise InputError(f"type: {str(raw)[:40]!r} is not an identifier type ({names})")


def identifier_value(
    kind: IdentifierType,
    raw: object,
    region: str | None = None,
    phones: Callable[[str], PhoneResult] | None = None,
) -> str:
    """The stored form of an identifier, or InputError saying why it is not one.

    ``region`` reads national mobile numbers (``5512345678`` in MX); digits with a country code
    and no ``+`` (the seed's ``48505606707``) are read as international. ``phones``: a
    :class:`~broadcaster.domain.phones.PhoneNormalizer` for many numbers (an import's fast path).
    """
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise InputError(f"{kind.value}: the value must be a string")
    text = str(raw).strip()
    if not text or len(text) > VALUE_CHARS or _CONTROL.search(text):
        raise InputError(
            f"{kind.value}: the value must be 1 to {VALUE_CHARS} characters, no control characters"
        )
    if kind is IdentifierType.MOBILE:
        phone = phones(text) if phones is not None else normalize_phone(text, region)
        if not phone.ok or phone.e164 is None:
            why = phone.reason.value if phone.reason else "invalid_number"
            raise InputError(f"MOBILE: {text[:40]!r} is not a valid mobile number ({why})")
        return phone.e164
    if kind is IdentifierType.EMAIL:
        if not _EMAIL.fullmatch(text):
            raise InputError(f"EMAIL: {text[:40]!r} is not an e-mail address")
        return text.lower()
    if kind is IdentifierType.ID:
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise InputError(f"ID: {text[:40]!r} is not a contactID (digits)")
        return str(int(text))
    return text


def attribute_text(name: str, value: object) -> str | None:
    """A scalar attribute value as the text a placeholder inserts; None removes it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal, float)):
        return str(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise InputError(f"attributes.{name}: must not contain NUL characters")
        if len(value) > ATTRIBUTE_VALUE_CHARS:
            raise InputError(f"attributes.{name}: at most {ATTRIBUTE_VALUE_CHARS:,} characters")
        return value
    raise InputError(f"attributes.{name}: must be a string, a number, true/false or null")


def attribute_name(name: object) -> str:
    """A name a ``{placeholder}`` can use: identifier characters, at most 64."""
    if not isinstance(name, str) or not name.isidentifier() or len(name) > ATTRIBUTE_NAME_CHARS:
        raise InputError(
            f"attributes: {str(name)[:40]!r} is not an attribute name (letters, digits and _, "
            f"at most {ATTRIBUTE_NAME_CHARS} characters, not starting with a digit)"
        )
    return name


def merge_attributes(current: Mapping[str, str], changes: Mapping[str, Any]) -> dict[str, str]:
    """``current`` with ``changes`` applied (a None value removes the name); checked and bounded."""
    out = dict(current)
    for name, value in changes.items():
        text = attribute_text(attribute_name(name), value)
        if text is None:
            out.pop(name, None)
        else:
            out[name] = text
    if len(out) > MAX_ATTRIBUTES:
        raise InputError(f"attributes: at most {MAX_ATTRIBUTES} per contact")
    return out


def template_values(
    template: Template,
    attributes: Mapping[str, str],
    positional: Sequence[str] = (),
    named: Mapping[str, str] | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Columns and params that fill ``template`` for one contact, as a recipient row carries
    them: ``positional`` first (``{0}``…, unnamed columns), then one column per named
    placeholder, ``named`` (a request's parameters) winning over the contact's attributes.

    A name no value fills gets ``""``, which the recipient rules refuse as a row error."""
    need = max(template.positional, default=-1) + 1
    positional = tuple(positional) + ("",) * (need - len(positional))
    by_key = {k.lower(): v for k, v in attributes.items()}
    by_key.update({k.lower(): v for k, v in (named or {}).items()})
    names = tuple(sorted(template.names, key=str.lower))
    columns = ("",) * len(positional) + names
    params = tuple(positional) + tuple(by_key.get(n.lower(), "") for n in names)
    return columns, params

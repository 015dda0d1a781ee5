"""Recipient phone numbers to E.164, with a reason for every refusal.

What a cell may hold, and how it is read:

- ``+5255 1234 5678``: international. Spaces, dashes, dots, slashes and parentheses are
  separators and are dropped (so are NBSP, thin spaces and Unicode dashes); non-ASCII decimal
  digits (Arabic-Indic, full-width) count as digits.
- ``005255…``: ``00`` is the ITU international prefix, read as ``+``.
- ``5255…`` (digits, no ``+``) with no default region: international without its plus.
  With a default region, the digits are first read as a national number of that region (which
  is also what phonenumbers does with a region: it recognises the region's own calling code and
  international prefix in front), and as international-without-plus only when that reading is
  not a valid number. The operator's region wins because that is what it was given for.
- ``055 1234 5678``: a national number (leading trunk ``0``) is read only with a default
  region; without one it is refused ``NO_REGION``.
- Excel damage: ``525500000000.0`` (a float with a zero fraction) and scientific notation
  ``5.25512345678E+11`` are repaired only when the text spells out every digit of the integer.
  The rule: the mantissa's digits, placed by the exponent, must reach the units position; if the
  exponent asks for more digits than the mantissa holds (``5.2551E+11`` for a 12-digit number),
  the missing ones would be invented zeros, and the value is refused ``PRECISION_LOST``. This
  refuses ``5.255E+11`` too, although 525500000000 is a possible number: Excel writes the same
  text for 525500012345, so the text cannot tell them apart. Zeros written out in the mantissa
  (``5.25500000000E+11``) are digits and are accepted; scientific text that leaves a non-zero
  fraction (``5.25512345678E+10``) is ``NOT_A_NUMBER``. A dot followed by other digits
  (``5255.1234.5678``) is a separator, not a decimal point.

Validity is phonenumbers' ``is_valid_number``; :func:`normalize_phone` is that plain path.
:class:`PhoneNormalizer` gives the same answers about 10x faster: it re-implements
``phonenumbers.parse`` for the only two inputs it is ever given here (``+digits``, or ``digits``
with a region) over metadata patterns compiled once, and hands anything it cannot prove valid to
the plain path, which also names the refusal. ``tests/unit/domain/test_phones.py`` holds the parity test.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult
from phonenumbers.phonemetadata import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS

from broadcaster.errors import InputError


class PhoneRefusal(StrEnum):
    """Why a cell is not a number we can send to."""

    #: Nothing in the cell.
    EMPTY = "empty"
    #: Letters or symbols that are not separators, a lone ``+``, a float that is no integer.
    NOT_A_NUMBER = "not_a_number"
    #: Fewer digits than any number of the country has (or than any phone number at all).
    TOO_SHORT = "too_short"
    #: More digits than any number of the country has.
    TOO_LONG = "too_long"
    #: The digits after ``+`` / ``00`` start with no known country calling code.
    INVALID_COUNTRY = "invalid_country"
    #: A national number (leading trunk ``0``) and no default region to read it in.
    NO_REGION = "no_region"
    #: A possible length, but no valid number range of the country matches.
    INVALID_NUMBER = "invalid_number"
    #: Excel scientific notation that dropped trailing digits (see the module docstring).
    PRECISION_LOST = "precision_lost"


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """One cell's verdict: ``e164`` when usable, else ``reason``; never both, never neither."""

    e164: str | None
    reason: PhoneRefusal | None

    @property
    def ok(self) -> bool:
        """True when the number may be sent to."""
        return self.e164 is not None


# Separators people and spreadsheets put between digits; deleted, never interpreted.
_SEPARATORS = str.maketrans(
    "", "", " \t\u00a0\u2007\u202f-\u2010\u2011\u2012\u2013\u2014\u2212.()/"
)
# Excel's float text of an integer column: ``525500000000.0`` or ``5.255E+11`` (comma decimal too).
_EXCEL_FLOAT = re.compile(r"(\d+)[.,](0+)")
_EXCEL_SCIENTIFIC = re.compile(r"(\d+)(?:[.,](\d*))?[eE]\+?(\d{1,3})")
_EXCEL_HINT = frozenset(".,eE")

# phonenumbers recompiles its metadata regexes through re's 512-entry cache, which files spanning
# many countries thrash (~8,000 numbers/s); its own pattern cache keeps them (~50,000/s). Same
# answers, bounded memory: the patterns come from fixed metadata.
getattr(phonenumbers, "enable_pattern_cache", lambda: None)()

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: PhoneRefusal.INVALID_COUNTRY,
    # phonenumbers only ever sees ``+digits`` or ``digits`` here: "not a number" means too few.
    NumberParseException.NOT_A_NUMBER: PhoneRefusal.TOO_SHORT,
    NumberParseException.TOO_SHORT_AFTER_IDD: PhoneRefusal.TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: PhoneRefusal.TOO_SHORT,
    NumberParseException.TOO_LONG: PhoneRefusal.TOO_LONG,
}
_LENGTH_REASONS = {
    ValidationResult.TOO_SHORT: PhoneRefusal.TOO_SHORT,
    ValidationResult.TOO_LONG: PhoneRefusal.TOO_LONG,
    ValidationResult.INVALID_COUNTRY_CODE: PhoneRefusal.INVALID_COUNTRY,
}


def _refuse(reason: PhoneRefusal) -> PhoneResult:
    return PhoneResult(None, reason)


@dataclass(frozen=True, slots=True)
class _Digits:
    """A cell reduced to ASCII digits; ``international`` when a ``+`` or ``00`` said so."""

    digits: str
    international: bool


class UnknownRegion(InputError, ValueError):
    """A region code phonenumbers does not know (still a ValueError for older callers)."""


def _check_region(default_region: str | None) -> str | None:
    """A wrong region is a configuration error, not a row error: raise instead of refusing."""
    if default_region is None:
        return None
    region = default_region.upper()
    if region not in SUPPORTED_REGIONS:
        raise UnknownRegion(
            f"unknown region {default_region!r}: give an ISO 3166 region code such as MX, GB, US"
        )
    return region


def _repair_excel(text: str) -> str | PhoneRefusal | None:
    """Digits of an Excel-mangled integer, a refusal, or None when ``text`` is not Excel's."""
    float_match = _EXCEL_FLOAT.fullmatch(text)
    if float_match:
        return float_match.group(1)
    sci = _EXCEL_SCIENTIFIC.fullmatch(text)
    if sci is None:
        return None
    mantissa = sci.group(1) + (sci.group(2) or "")
    units_at = len(sci.group(1)) + int(sci.group(3))  # digits before the decimal point
    if units_at > len(mantissa):
        return PhoneRefusal.PRECISION_LOST
    if mantissa[units_at:].strip("0"):
        return PhoneRefusal.NOT_A_NUMBER
    return mantissa[:units_at].lstrip("0") or PhoneRefusal.NOT_A_NUMBER


def _ascii_digits(text: str) -> str:
    """Non-ASCII decimal digits and the full-width plus as ASCII (rare: only non-ASCII cells)."""
    return "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() else "+" if ch == "\uff0b" else ch
        for ch in text
    )


def _prepare(raw: str) -> _Digits | PhoneResult:
    """Reduce a cell to digits plus intent, or refuse it; shared by both paths."""
    text = raw.strip()
    if not text:
        return _refuse(PhoneRefusal.EMPTY)
    if not _EXCEL_HINT.isdisjoint(text):
        repaired = _repair_excel(text)
        if isinstance(repaired, PhoneRefusal):
            return _refuse(repaired)
        if repaired is not None:
            return _Digits(repaired, False)
    cleaned = text.translate(_SEPARATORS)
    if not cleaned.isascii():
        cleaned = _ascii_digits(cleaned)
    international = cleaned.startswith("+")
    digits = cleaned[1:] if international else cleaned
    if not (digits.isascii() and digits.isdigit()):
        return _refuse(PhoneRefusal.NOT_A_NUMBER if cleaned else PhoneRefusal.EMPTY)
    if not international and digits.startswith("00"):
        return _Digits(digits[2:], True)
    return _Digits(digits, international)


def _parse(text: str, region: str | None) -> PhoneResult:
    """The plain phonenumbers path: parse, validate, format; name the reason when invalid."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return _refuse(_PARSE_ERRORS.get(exc.error_type, PhoneRefusal.NOT_A_NUMBER))
    if phonenumbers.is_valid_number(number):
        return PhoneResult(phonenumbers.format_number(number, PhoneNumberFormat.E164), None)
    length = phonenumbers.is_possible_number_with_reason(number)
    return _refuse(_LENGTH_REASONS.get(length, PhoneRefusal.INVALID_NUMBER))


def _resolve(cell: _Digits, region: str | None) -> PhoneResult:
    """Apply the reading rules of the module docstring with the plain path."""
    digits = cell.digits
    if cell.international:
        return _parse("+" + digits, None)
    if region is None:
        if digits.startswith("0"):
            return _refuse(PhoneRefusal.NO_REGION)
        return _parse("+" + digits, None)
    national = _parse(digits, region)
    if national.ok or digits.startswith("0"):
        return national
    international = _parse("+" + digits, None)
    return international if international.ok else national


def normalize_phone(raw: str, default_region: str | None = None) -> PhoneResult:
    """E.164 for ``raw`` or the reason it is refused, by plain phonenumbers (the reference).

    ``default_region`` is an ISO 3166 code (``"MX"``); an unknown one raises ``ValueError``.
    For many rows use :class:`PhoneNormalizer`, which agrees exactly and is much faster.
    """
    region = _check_region(default_region)
    cell = _prepare(raw)
    if isinstance(cell, PhoneResult):
        return cell
    return _resolve(cell, region)


# ---------------------------------------------------------------------------------------------
# The fast path: phonenumbers.parse + is_valid_number re-done for ``+digits`` and ``digits`` with
# a region, step for step (the names in comments are phonenumbers' own), over compiled metadata.
# It returns "" where phonenumbers would refuse and raises _Unsure where metadata holds a shape
# the re-implementation does not cover; the parity test proves the two agree.

#: Number types whose match makes a number valid (``_number_type_helper``), mobile added apart.
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)
_MIN_NSN, _MAX_NSN, _MAX_INPUT = 2, 17, 250  # phonenumbers' _MIN/_MAX_LENGTH_FOR_NSN, input cap
_CC_BY_PREFIX = {str(cc): cc for cc in COUNTRY_CODE_TO_REGION_CODE}
_STRIP_OK = frozenset({ValidationResult.IS_POSSIBLE, ValidationResult.TOO_LONG})


class _Unsure(Exception):
    """Metadata the fast path does not model: let the plain path answer."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """One region's metadata as parse and is_valid_number consult it, regexes compiled once."""

    country_code: int
    cc_str: str
    general: re.Pattern[str] | None
    general_lengths: frozenset[int]
    possible_lengths: tuple[int, ...]
    local_lengths: frozenset[int]
    typed: dict[int, re.Pattern[str]]  # NSN length -> alternation of the types allowing it
    leading_digits: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None
    transform: str | None
    idd: re.Pattern[str] | None


def _compile_or_none(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


def _typed_patterns(metadata: PhoneMetadata, lengths: frozenset[int]) -> dict[int, re.Pattern[str]]:
    """Per NSN length, one regex equal to "some number type matches" (fixed line, mobile…)."""
    names = _TYPE_DESCS if metadata.same_mobile_and_fixed_line_pattern else (*_TYPE_DESCS, "mobile")
    descs = [
        d for d in (getattr(metadata, name) for name in names) if d and d.national_number_pattern
    ]
    compiled: dict[tuple[str, ...], re.Pattern[str]] = {}
    typed: dict[int, re.Pattern[str]] = {}
    for length in lengths or range(_MIN_NSN, _MAX_NSN + 1):
        patterns = tuple(
            d.national_number_pattern
            for d in descs
            if not d.possible_length or length in d.possible_length
        )
        if patterns:
            if patterns not in compiled:
                compiled[patterns] = re.compile("|".join(f"(?:{p})" for p in patterns))
            typed[length] = compiled[patterns]
    return typed


def _compile_plan(metadata: PhoneMetadata) -> _Plan:
    general = metadata.general_desc
    if general is None or metadata.country_code is None:
        raise _Unsure("metadata without a general description or calling code")
    lengths = frozenset(general.possible_length or ())
    return _Plan(
        country_code=metadata.country_code,
        cc_str=str(metadata.country_code),
        general=_compile_or_none(general.national_number_pattern),
        general_lengths=lengths,
        possible_lengths=tuple(general.possible_length or ()),
        local_lengths=frozenset(general.possible_length_local_only or ()),
        typed=_typed_patterns(metadata, lengths),
        leading_digits=None
        if metadata.leading_digits is None
        else re.compile(metadata.leading_digits),
        national_prefix=_compile_or_none(metadata.national_prefix_for_parsing),
        transform=metadata.national_prefix_transform_rule or None,
        idd=_compile_or_none(metadata.international_prefix),
    )


_PLANS: dict[str, _Plan | None] = {}


def _plan(country_code: int, region: str) -> _Plan | None:
    """Compiled metadata of ``region`` (``"001"``: the non-geographic ``country_code``), cached."""
    key = region if region != "001" else f"+{country_code}"
    if key not in _PLANS:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
        _PLANS[key] = None if metadata is None else _compile_plan(metadata)
    return _PLANS[key]


def _general_match(number: str, plan: _Plan) -> bool:
    """``_match_national_number(number, general_desc)``: the pattern only, lengths unchecked."""
    return plan.general is not None and plan.general.fullmatch(number) is not None


def _any_type(nsn: str, plan: _Plan) -> bool:
    """``_number_type_helper(nsn, metadata) != UNKNOWN``."""
    length = len(nsn)
    if plan.general_lengths and length not in plan.general_lengths:
        return False
    if not _general_match(nsn, plan):
        return False
    typed = plan.typed.get(length)
    return typed is not None and typed.fullmatch(nsn) is not None


def _length_result(number: str, plan: _Plan) -> int:
    """``_test_number_length(number, metadata)`` for the unknown number type."""
    length, lengths = len(number), plan.possible_lengths
    if not lengths:
        raise _Unsure("no possible lengths")
    if length in plan.local_lengths:
        return ValidationResult.IS_POSSIBLE_LOCAL_ONLY
    if lengths[0] == length or (lengths[0] < length <= lengths[-1] and length in lengths):
        return ValidationResult.IS_POSSIBLE
    if lengths[0] > length:
        return ValidationResult.TOO_SHORT
    return ValidationResult.TOO_LONG if lengths[-1] < length else ValidationResult.INVALID_LENGTH


def _strip_national_prefix(number: str, plan: _Plan) -> str:
    """``_maybe_strip_national_prefix_carrier_code`` without the carrier code."""
    if not number or plan.national_prefix is None:
        return number
    match = plan.national_prefix.match(number)
    if match is None:
        return number
    groups = match.groups()
    if plan.transform is None or groups[-1:] in ((), (None,)):
        if plan.transform is not None and not groups:
            raise _Unsure("transform rule without groups")  # phonenumbers itself would fail
        stripped = number[match.end() :]
    else:
        stripped = plan.national_prefix.sub(plan.transform, number, count=1)
    if _general_match(number, plan) and not _general_match(stripped, plan):
        return number
    return stripped


def _valid(country_code: int, nsn: str) -> bool:
    """``is_valid_number``: pick the region (leading digits, else the first that fits), check it."""
    regions = COUNTRY_CODE_TO_REGION_CODE[country_code]
    if len(regions) == 1:
        plan = _plan(country_code, regions[0])
        return plan is not None and _any_type(nsn, plan)
    for region in regions:
        plan = _plan(country_code, region)
        if plan is None:
            continue
        if plan.leading_digits is not None:
            if plan.leading_digits.match(nsn):
                return _any_type(nsn, plan)
        elif _any_type(nsn, plan):
            return True
    return False


def _finish(country_code: int, nsn: str, plan: _Plan) -> str:
    """The end of ``parse`` (national prefix, lengths) and validation: E.164 or ""."""
    if len(nsn) < _MIN_NSN:
        return ""
    potential = _strip_national_prefix(nsn, plan)
    if _length_result(potential, plan) in _STRIP_OK:
        nsn = potential
    if not _MIN_NSN <= len(nsn) <= _MAX_NSN or not _valid(country_code, nsn):
        return ""
    return f"+{country_code}{nsn}"


def _fast_international(digits: str) -> str:
    """``parse("+" + digits)`` then validation: E.164 or ""."""
    if len(digits) <= _MIN_NSN or len(digits) >= _MAX_INPUT:
        return ""
    country_code = (
        _CC_BY_PREFIX.get(digits[:1])
        or _CC_BY_PREFIX.get(digits[:2])
        or _CC_BY_PREFIX.get(digits[:3])
    )
    if country_code is None:
        return ""
    plan = _plan(country_code, COUNTRY_CODE_TO_REGION_CODE[country_code][0])
    if plan is None:
        raise _Unsure("no metadata for a known calling code")
    return _finish(country_code, digits[len(str(country_code)) :], plan)


def _fast_national(digits: str, region: str) -> str:
    """``parse(digits, region)`` then validation: E.164 or ""."""
    plan = _plan(0, region)
    if plan is None:
        raise _Unsure("no metadata for the default region")
    if len(digits) < _MIN_NSN or len(digits) > _MAX_INPUT:
        return ""
    idd = plan.idd.match(digits) if plan.idd is not None else None
    if idd is not None and digits[idd.end() : idd.end() + 1] != "0":
        return _fast_international(digits[idd.end() :])
    cc = plan.country_code
    if digits.startswith(plan.cc_str):
        potential = _strip_national_prefix(digits[len(plan.cc_str) :], plan)
        if (not _general_match(digits, plan) and _general_match(potential, plan)) or (
            _length_result(digits, plan) == ValidationResult.TOO_LONG
        ):
            main = _plan(cc, COUNTRY_CODE_TO_REGION_CODE[cc][0])
            if main is None:
                raise _Unsure("no metadata for the region's calling code")
            return _finish(cc, potential, main)
    return _finish(cc, digits, plan)


#: The calling code a number's first three digits start with, and how to check the rest:
#: ``(length of the code, per-NSN-length regex)`` where the country's validity is one regex per
#: length (one region, see :func:`_quick_plan`), else None (the general path decides). Built
#: lazily, one entry per three-digit prefix met: at most 1,000.
_QUICK: dict[str, tuple[int, str, re.Pattern[str] | None, dict[int, re.Pattern[str]]] | None] = {}


def _quick_plan(
    prefix: str,
) -> tuple[int, str, re.Pattern[str] | None, dict[int, re.Pattern[str]]] | None:
    """What :func:`_fast_international` does for numbers starting with ``prefix`` (three
    digits), reduced to regexes: the calling code's length, its string, the national prefix
    pattern (a number it matches takes the general path) and, per NSN length, one regex whose
    full match is ``_any_type``. None where the calling code spans several regions, is unknown
    or has metadata the fast path is unsure of."""
    country_code = (
        _CC_BY_PREFIX.get(prefix[:1]) or _CC_BY_PREFIX.get(prefix[:2]) or _CC_BY_PREFIX.get(prefix)
    )
    if country_code is None:
        return None
    regions = COUNTRY_CODE_TO_REGION_CODE[country_code]
    if len(regions) != 1:
        return None
    plan = _plan(country_code, regions[0])
    if plan is None or plan.general is None or not plan.possible_lengths:
        return None
    lengths = plan.general_lengths or frozenset(range(_MIN_NSN, _MAX_NSN + 1))
    general = plan.general.pattern
    try:
        by_length = {
            length: re.compile(f"(?=(?:{general})\\Z)(?:{typed.pattern})")
            for length, typed in plan.typed.items()
            if length in lengths and _MIN_NSN <= length <= _MAX_NSN
        }
    except re.error:
        return None
    return len(plan.cc_str), plan.cc_str, plan.national_prefix, by_length


def _quick_international(digits: str) -> str | None:
    """``_fast_international(digits)`` where it is one regex: E.164, "" (invalid), or None
    (take the general path)."""
    if len(digits) <= _MIN_NSN or len(digits) >= _MAX_INPUT:
        return ""
    prefix = digits[:3]
    try:
        quick = _QUICK[prefix]
    except KeyError:
        quick = _QUICK[prefix] = _quick_plan(prefix)
    if quick is None:
        return None
    cc_len, cc_str, national_prefix, by_length = quick
    nsn = digits[cc_len:]
    if len(nsn) < _MIN_NSN:
        return ""
    if national_prefix is not None and national_prefix.match(nsn) is not None:
        return None  # the national prefix may be stripped: the general path decides
    pattern = by_length.get(len(nsn))
    return "+" + digits if pattern is not None and pattern.fullmatch(nsn) is not None else ""


class PhoneNormalizer:
    """``normalize_phone`` with a fixed default region, fast on the numbers files are made of.

    Reusable and stateless between calls apart from compiled metadata (shared, built lazily per
    country), so one instance can serve a whole ingest.
    """

    __slots__ = ("_region",)

    def __init__(self, default_region: str | None = None) -> None:
        self._region = _check_region(default_region)

    def e164(self, raw: str) -> str | None:
        """``self(raw).e164``, without building a result for the common valid cell."""
        return self._quick(raw) or self(raw).e164

    def _quick(self, raw: str) -> str | None:
        """E.164 of the common cell (``+digits``, or plain digits and no default region, of a
        country whose validity is one regex: :func:`_quick_international`); None: any other
        cell, or an invalid one (the full path names the reason)."""
        if not raw.isascii():
            return None
        if raw[:1] == "+":
            digits = raw[1:]
            return (_quick_international(digits) or None) if digits.isdigit() else None
        if self._region is None and raw.isdigit() and raw[:1] != "0":
            return _quick_international(raw) or None
        return None

    def __call__(self, raw: str) -> PhoneResult:
        """Same result as ``normalize_phone(raw, default_region)``."""
        quick = self._quick(raw)
        if quick is not None:
            return PhoneResult(quick, None)
        cell = _prepare(raw)
        if isinstance(cell, PhoneResult):
            return cell
        e164 = self._fast(cell)
        if e164 is not None:
            return PhoneResult(e164, None)
        return _resolve(cell, self._region)

    def _fast(self, cell: _Digits) -> str | None:
        """E.164 when proven valid without phonenumbers.parse; None: ask the plain path.

        Mirrors :func:`_resolve`; a proven-invalid national reading moves on to the
        international one exactly as the plain path does.
        """
        digits, region = cell.digits, self._region
        try:
            if cell.international:
                return _fast_international(digits) or None
            if region is None:
                return None if digits.startswith("0") else _fast_international(digits) or None
            national = _fast_national(digits, region)
            if national or digits.startswith("0"):
                return national or None
            return _fast_international(digits) or None
        except _Unsure:
            return None

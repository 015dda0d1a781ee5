"""Phone normalization: the reading rules, and PhoneNormalizer's exact parity with phonenumbers."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS

from broadcaster.domain import phones
from broadcaster.domain.phones import PhoneNormalizer, PhoneRefusal, PhoneResult, normalize_phone

R = PhoneRefusal
MX = "+525512345678"

# (cell, default region, E.164 or refusal)
CASES: list[tuple[str, str | None, str | PhoneRefusal]] = [
    # international, with every separator people type
    ("+52 55 1234 5678", None, MX),
    ("+52 (55) 1234-5678", None, MX),
    ("+52.55.1234.5678", None, MX),
    ("+52/55/1234/5678", None, MX),
    ("  +525512345678\t", None, MX),
    ("+52\u00a055\u20131234\u20135678", None, MX),  # NBSP and en dashes from word processors
    ("\uff0b52 55 1234 5678", None, MX),  # full-width plus
    ("0052 55 1234 5678", None, MX),  # 00 is +
    ("0052 55 1234 5678", "GB", MX),
    ("525512345678", None, MX),  # international without its plus
    ("+1 (212) 555-0123", None, "+12125550123"),
    ("+39 06 1234 5678", None, "+390612345678"),  # Italian leading zero is part of the number
    ("+800 1234 5678", None, "+80012345678"),  # non-geographic calling code
    ("+44 7624 123456", None, "+447624123456"),  # Isle of Man shares +44
    ("+1 204 234 5678", None, "+12042345678"),  # Canada shares +1
    ("+1 212 555 0123", "mx", "+12125550123"),  # region case does not matter; + wins over it
    # national numbers need a default region
    ("(55) 1234-5678", "MX", MX),
    ("55.1234.5678", "MX", MX),
    ("5512345678", "MX", MX),
    ("525512345678", "MX", MX),  # the region's own calling code is recognised
    ("020 7946 0958", "GB", "+442079460958"),
    ("07911 123456", "GB", "+447911123456"),
    ("2125550123", "US", "+12125550123"),
    ("1 212 555 0123", "US", "+12125550123"),
    ("8 812 123 45 67", "RU", "+78121234567"),  # trunk prefix 8
    ("011 52 55 1234 5678", "US", MX),  # the region's international prefix
    ("447911123456", "MX", "+447911123456"),  # not Mexican: read as international
    ("020 7946 0958", None, R.NO_REGION),
    ("055 1234 5678", None, R.NO_REGION),
    ("0 55 1234 5678", None, R.NO_REGION),
    # digits from other scripts
    ("\uff15\uff15\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18", "MX", MX),
    ("\u0665\u0665\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "MX", MX),
    # Excel: repaired when every digit is written
    ("525512345678.0", None, MX),
    ("525512345678,00", None, MX),
    ("5.25512345678E+11", None, MX),
    ("5.25512345678e+11", None, MX),
    ("5,25512345678E+11", None, MX),
    ("5.25512345678E11", None, MX),
    ("5.2551234567800E+11", None, MX),  # written zeros are digits
    ("52.5512345678E10", None, MX),
    ("0.525512345678E12", None, MX),
    ("5.25512345678E+11", "MX", MX),
    # Excel: refused when digits would be invented
    ("5.2551E+11", None, R.PRECISION_LOST),
    ("5.255E+11", None, R.PRECISION_LOST),  # 525500000000 or 525500012345? the text cannot say
    ("5.25512E+11", None, R.PRECISION_LOST),
    ("5E+11", None, R.PRECISION_LOST),
    ("5.25512345678E+10", None, R.NOT_A_NUMBER),  # 52551234567.8 is no integer
    ("0.0E+0", None, R.NOT_A_NUMBER),
    ("5255123456.78", None, MX),  # a dot before other digits is a separator
    # refusals
    ("", None, R.EMPTY),
    ("   ", "MX", R.EMPTY),
    ("---", None, R.EMPTY),
    ("abc", None, R.NOT_A_NUMBER),
    ("+", None, R.NOT_A_NUMBER),
    ("+52 55 1234 5678 ext 12", None, R.NOT_A_NUMBER),
    ("52+5512345678", None, R.NOT_A_NUMBER),
    ("1-800-FLOWERS", None, R.NOT_A_NUMBER),
    ("tel:+525512345678", None, R.NOT_A_NUMBER),
    ("5²", None, R.NOT_A_NUMBER),  # superscript two is a digit to str.isdigit, not to us
    ("12", None, R.TOO_SHORT),
    ("0055", "MX", R.TOO_SHORT),
    ("+52 55", None, R.TOO_SHORT),
    ("+52 55 1234 5678 9999 99", None, R.TOO_LONG),
    ("044 55 1234 5678", "MX", R.TOO_LONG),  # Mexico dropped its mobile prefixes in 2019
    ("+999 1234 5678", None, R.INVALID_COUNTRY),
    ("+0 55", None, R.INVALID_COUNTRY),
    ("+52 05 1234 5678", None, R.INVALID_NUMBER),
    ("5512345678", None, R.INVALID_NUMBER),  # +55 12345678: no Brazilian number
]


@pytest.mark.parametrize(("cell", "region", "expected"), CASES)
def test_reading_rules(cell: str, region: str | None, expected: str | PhoneRefusal) -> None:
    want = (
        PhoneResult(None, expected)
        if isinstance(expected, PhoneRefusal)
        else PhoneResult(expected, None)
    )
    assert normalize_phone(cell, region) == want
    assert PhoneNormalizer(region)(cell) == want


@pytest.mark.parametrize("region", ["XX", "001", "ZZ", ""])
def test_unknown_region_is_a_configuration_error(region: str) -> None:
    with pytest.raises(ValueError, match="region"):
        PhoneNormalizer(region)
    with pytest.raises(ValueError, match="region"):
        normalize_phone("", region)


def test_refusal_reasons_are_lowercase_strings() -> None:
    assert {reason.value for reason in PhoneRefusal} >= {
        "empty", "not_a_number", "too_short", "too_long", "invalid_country", "no_region",
        "invalid_number", "precision_lost",
    }  # fmt: skip
    assert PhoneRefusal.NO_REGION == "no_region"


# ---------------------------------------------------------------------------------------------
# Parity: PhoneNormalizer must give exactly normalize_phone's answer, on every kind of input.

_TYPES = [
    PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.PAGER, PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
]  # fmt: skip
_REGIONS = sorted(SUPPORTED_REGIONS)


def _example_numbers() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    """phonenumbers' example number of every region and type, and of every non-geo code."""
    found = []
    for region in _REGIONS:
        for kind in _TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.append((region, number))
    for code in phonenumbers.supported_calling_codes():
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            found.append(("001", number))
    return found


def _example_cells(rng: random.Random) -> list[tuple[str, str | None]]:
    """Each example in every written form, read with no region, its own, and a random one."""
    cells = []
    for region, number in _example_numbers():
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        spaced = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
        digits = list(e164[1:])
        digits[rng.randrange(len(digits))] = str(rng.randrange(10))
        for default in {None, rng.choice(_REGIONS), None if region == "001" else region}:
            for cell in (e164, e164[1:], "00" + e164[1:], spaced, national, e164[:-1]):
                cells.append((cell, default))
            cells.append(("+" + "".join(digits), default))
            cells.append((e164 + str(rng.randrange(10)), default))
    return cells


def _random_cells(rng: random.Random, count: int) -> list[tuple[str, str | None]]:
    """Random digits behind every calling code, with and without +, trunk 0 or a region."""
    codes = sorted(COUNTRY_CODE_TO_REGION_CODE)
    cells = []
    for _ in range(count):
        code = rng.choice(codes)
        body = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 16)))
        cell = rng.choice([f"+{code}{body}", f"{code}{body}", body, "0" + body])
        cells.append((cell, rng.choice([None, None, rng.choice(_REGIONS)])))
    return cells


def _junk_cells(rng: random.Random, count: int) -> list[tuple[str, str | None]]:
    alphabet = "0123456789+-(). eE,x#*"
    return [
        ("".join(rng.choice(alphabet) for _ in range(rng.randrange(20))), rng.choice([None, "MX"]))
        for _ in range(count)
    ]


def test_parity_with_plain_phonenumbers_path() -> None:
    # Given tens of thousands of cells: every example number in every form, random digits
    # behind every calling code, and junk
    rng = random.Random(20_240_601)
    cells = _example_cells(rng) + _random_cells(rng, 30_000) + _junk_cells(rng, 3_000)
    assert len(cells) > 40_000
    normalizers: dict[str | None, PhoneNormalizer] = {}
    # When both paths read them
    mismatches = []
    for cell, region in cells:
        normalizer = normalizers.setdefault(region, PhoneNormalizer(region))
        plain, fast = normalize_phone(cell, region), normalizer(cell)
        if plain != fast or normalizer.e164(cell) != plain.e164:
            mismatches.append((cell, region, plain, fast))
    # Then they agree on every one, valid or not, reason included
    assert mismatches[:20] == []
    assert sum(normalize_phone(cell, region).ok for cell, region in cells) > 10_000


@pytest.mark.parametrize("form", [PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL])
def test_e164_cells_agree_with_bare_phonenumbers(form: int) -> None:
    # The plain path is phonenumbers itself: on international text the verdict is its own
    normalizer = PhoneNormalizer()
    for _, number in _example_numbers():
        text = phonenumbers.format_number(number, form)
        parsed = phonenumbers.parse(text)
        want = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
        valid = phonenumbers.is_valid_number(parsed)
        assert normalize_phone(text).e164 == (want if valid else None), text
        assert normalizer(text).e164 == (want if valid else None), text


@pytest.mark.parametrize("region", [None, "MX", "GB"])
def test_fast_path_answers_valid_numbers_alone(
    region: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Performance guard: a valid international number never needs phonenumbers.parse
    valid = [
        phonenumbers.format_number(number, PhoneNumberFormat.E164)
        for _, number in _example_numbers()
        if phonenumbers.is_valid_number(number)
    ]
    normalizer = PhoneNormalizer(region)

    def no_plain_path(text: str, region: str | None) -> PhoneResult:
        raise AssertionError(f"plain path used for {text}")

    monkeypatch.setattr(phones, "_parse", no_plain_path)
    for e164 in valid:
        assert normalizer(e164).e164 == e164
        assert normalizer(e164[1:]).ok or region is not None  # bare digits: national reading first


def test_unsure_fast_path_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsure(digits: str) -> str:
        raise phones._Unsure("test")

    monkeypatch.setattr(phones, "_fast_international", unsure)
    assert PhoneNormalizer()("+52 55 1234 5678") == PhoneResult(MX, None)


@settings(max_examples=400, deadline=None)
@given(
    cell=st.text(alphabet="0123456789+-() .eE,٣", max_size=24),
    region=st.sampled_from([None, "MX", "US", "GB", "RU", "IT", "AR", "BR", "DE", "IN"]),
)
def test_parity_property(cell: str, region: str | None) -> None:
    normalizer = PhoneNormalizer(region)
    result = normalizer(cell)
    assert result == normalize_phone(cell, region)
    assert normalizer.e164(cell) == result.e164
    assert (result.e164 is None) != (result.reason is None)
    assert result.e164 is None or (result.e164[0] == "+" and result.e164[1:].isdigit())

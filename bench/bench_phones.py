"""Numbers per second of the plain phonenumbers path and of PhoneNormalizer, on one core.

Run: ``python bench/bench_phones.py [count]``. The input is what recipient files hold: distinct
numbers, mostly E.164 or international digits without the plus, a few formatted by hand and a
few broken, across every region's example numbers with fresh random endings.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers.phonenumberutil import SUPPORTED_REGIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_COUNT = 200_000
SEED = 20_240_601


def _templates() -> list[str]:
    """E.164 mobile and fixed-line example numbers of every region; Mexico weighted heavily."""
    found = []
    for region in sorted(SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.append(phonenumbers.format_number(number, PhoneNumberFormat.E164))
    return found + ["+525512345678"] * len(found)


def make_input(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct-ish cells: 60 % E.164, 30 % bare digits, 7 % formatted, 3 % junk."""
    templates = _templates()
    cells = []
    for _ in range(count):
        e164 = rng.choice(templates)
        e164 = e164[:-4] + f"{rng.randrange(10_000):04d}"
        roll = rng.random()
        if roll < 0.60:
            cells.append(e164)
        elif roll < 0.90:
            cells.append(e164[1:])
        elif roll < 0.97:
            cells.append(f"00{e164[1:4]} ({e164[4:7]}) {e164[7:10]}-{e164[10:]}")
        else:
            cells.append(rng.choice(["", "n/a", "12", "+999 123", "5.2551E+11"]))
    return cells


def bare_phonenumbers(cell: str) -> bool:
    """What the design table measured: parse as given (+ assumed) and is_valid_number."""
    try:
        return phonenumbers.is_valid_number(
            phonenumbers.parse(cell if cell[:1] == "+" else "+" + cell)
        )
    except phonenumbers.NumberParseException:
        return False


def rate(label: str, func: Callable[[str], object], cells: Sequence[str]) -> float:
    """Run ``func`` over ``cells`` once and print numbers/s and the share accepted."""
    start = time.perf_counter()
    accepted = sum(1 for cell in cells if getattr(result := func(cell), "ok", result))
    elapsed_s = time.perf_counter() - start
    per_s = len(cells) / elapsed_s
    print(f"{label:<44} {per_s:>10,.0f} numbers/s   ({accepted / len(cells):.1%} valid)")
    return per_s


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_COUNT
    cells = make_input(count, random.Random(SEED))
    print(f"{count:,} cells, one core")
    # Before broadcaster.domain.phones is imported: it switches phonenumbers' pattern cache on.
    rate("phonenumbers.parse + is_valid_number", bare_phonenumbers, cells)
    from broadcaster.domain.phones import PhoneNormalizer, normalize_phone

    rate("  same, pattern cache on (phones.py does)", bare_phonenumbers, cells)
    normalizer_none, normalizer_mx = PhoneNormalizer(), PhoneNormalizer("MX")
    normalizer_none("+525512345678"), normalizer_mx("+525512345678")  # compile MX outside timing
    plain = rate("plain path  normalize_phone(cell)", normalize_phone, cells)
    rate("plain path  normalize_phone(cell, 'MX')", lambda c: normalize_phone(c, "MX"), cells)
    fast = rate("fast path   PhoneNormalizer()(cell)", normalizer_none, cells)
    rate("fast path   PhoneNormalizer('MX')(cell)", normalizer_mx, cells)
    warm = rate("fast path   again, metadata compiled", normalizer_none, cells)
    print(f"speed-up {fast / plain:.1f}x (warm {warm / plain:.1f}x)")


if __name__ == "__main__":
    main()

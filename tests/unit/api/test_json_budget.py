"""The memory budget of a big JSON body's parse (issue 11): tiny JSON makes big Python objects.

16 MB of ``[]`` parsed to 5.6 million lists (~400 MB); the parse now charges every value it
makes (its size as Python holds it, plus its slot) and stops once the budget is spent.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from broadcaster.api.bodies import JsonOverBudget, _parse

MIB = 1024 * 1024


def _body(item: bytes, n: int) -> bytes:
    return b'{"from":"55501","text":"x","recipients":[' + b",".join([item] * n) + b"]}"


@pytest.mark.parametrize(
    "item",
    [b"[]", b"{}", b'{"":[]}', b"1.5", b"12345", b'"ab"'],
    ids=["lists", "objects", "nested", "decimals", "ints", "short strings"],
)
def test_tiny_items_are_over_a_budget_of_four_times_their_size(item: bytes) -> None:
    body = _body(item, 256 * 1024 // (len(item) + 1))
    with pytest.raises(JsonOverBudget):
        _parse(body, yielding=True, budget_bytes=MIB)
    # the same body under a budget that fits it parses exactly as json does
    got = _parse(body, yielding=True, budget_bytes=64 * MIB)
    assert got == json.loads(body, parse_float=Decimal)


def test_many_keys_of_one_object_are_charged_as_they_are_read() -> None:
    body = b'{"k":{' + b",".join(b'"k%07d":null' % i for i in range(20_000)) + b"}}"
    with pytest.raises(JsonOverBudget):
        _parse(body, yielding=True, budget_bytes=MIB)


def test_a_phone_list_costs_about_five_times_its_size() -> None:
    n = 20_000
    body = b'{"recipients":[' + b",".join(b'"+52550%07d"' % i for i in range(n)) + b"]}"
    assert len(body) < 17 * n
    _parse(body, yielding=True, budget_bytes=80 * n)  # 16 MB of phones fit 96 MiB
    with pytest.raises(JsonOverBudget):
        _parse(body, yielding=True, budget_bytes=60 * n)


def test_no_budget_means_no_limit() -> None:
    body = _body(b"[]", 50_000)
    assert len(_parse(body, yielding=True, budget_bytes=0)["recipients"]) == 50_000

"""GSM 03.38 / UCS-2 segment arithmetic, boundaries first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcaster.constants import MAX_SEGMENTS
from broadcaster.domain.segments import (
    GSM_7,
    GSM_BASIC,
    GSM_EXTENSION,
    UCS_2,
    SegmentInfo,
    cost,
    measure,
    split,
)

EURO, ZHE, SMILE = "€", "Ж", "\U0001f600"  # extension char, Cyrillic (BMP), emoji (astral)

# (text, encoding, segments, units, units_per_segment, segment lengths in characters)
CASES: list[tuple[str, str, int, int, int, list[int]]] = [
    ("", GSM_7, 1, 0, 160, [0]),
    ("a", GSM_7, 1, 1, 160, [1]),
    ("a" * 160, GSM_7, 1, 160, 160, [160]),
    ("a" * 161, GSM_7, 2, 161, 153, [153, 8]),
    ("a" * 306, GSM_7, 2, 306, 153, [153, 153]),
    ("a" * 307, GSM_7, 3, 307, 153, [153, 153, 1]),
    ("a" * 1530, GSM_7, 10, 1530, 153, [153] * 10),
    ("a" * 1531, GSM_7, 11, 1531, 153, [153] * 10 + [1]),
    ("a" * 1600, GSM_7, 11, 1600, 153, [153] * 10 + [70]),
    # the extension table costs two septets
    (EURO, GSM_7, 1, 2, 160, [1]),
    (EURO * 80, GSM_7, 1, 160, 160, [80]),
    (EURO * 80 + "a", GSM_7, 2, 161, 153, [76, 5]),
    ("a" * 159 + "^", GSM_7, 2, 161, 153, [153, 7]),
    ("{}[]~|\\^\f" + EURO, GSM_7, 1, 20, 160, [10]),
    # an escape pair at the 153 boundary moves whole to the next segment
    ("a" * 152 + EURO + "a" * 10, GSM_7, 2, 164, 153, [152, 11]),
    ("a" * 151 + EURO + "a" * 10, GSM_7, 2, 163, 153, [152, 10]),
    ("a" * 152 + EURO + "a" * 151, GSM_7, 2, 305, 153, [152, 152]),
    ("a" * 152 + EURO + "a" * 152, GSM_7, 3, 306, 153, [152, 152, 1]),  # ceil(306/153) says 2
    # the basic table, including its non-ASCII letters
    ("é" * 160, GSM_7, 1, 160, 160, [160]),
    ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r", GSM_7, 1, 44, 160, [44]),
    # anything else is UCS-2
    ("ç", UCS_2, 1, 1, 70, [1]),  # only the capital Ç is GSM
    ("á", UCS_2, 1, 1, 70, [1]),
    ("`", UCS_2, 1, 1, 70, [1]),
    ("\t", UCS_2, 1, 1, 70, [1]),
    ("a" * 100 + "ç", UCS_2, 2, 101, 67, [67, 34]),
    (EURO * 70 + "ç", UCS_2, 2, 71, 67, [67, 4]),  # € is one unit in UCS-2
    (ZHE * 70, UCS_2, 1, 70, 70, [70]),
    (ZHE * 71, UCS_2, 2, 71, 67, [67, 4]),
    (ZHE * 134, UCS_2, 2, 134, 67, [67, 67]),
    (ZHE * 670, UCS_2, 10, 670, 67, [67] * 10),
    (ZHE * 671, UCS_2, 11, 671, 67, [67] * 10 + [1]),
    # an emoji is a surrogate pair: two units that never split
    (SMILE, UCS_2, 1, 2, 70, [1]),
    (SMILE * 35, UCS_2, 1, 70, 70, [35]),
    (SMILE * 36, UCS_2, 2, 72, 67, [33, 3]),
    (ZHE * 66 + SMILE + ZHE * 10, UCS_2, 2, 78, 67, [66, 11]),
    (ZHE * 65 + SMILE + ZHE * 10, UCS_2, 2, 77, 67, [66, 10]),
    (ZHE * 66 + SMILE + ZHE * 66, UCS_2, 3, 134, 67, [66, 66, 1]),
    ("hi " + SMILE, UCS_2, 1, 5, 70, [4]),
]


@pytest.mark.parametrize(("text", "encoding", "segments", "units", "per_segment", "lengths"), CASES)
def test_measure_and_split(
    text: str, encoding: str, segments: int, units: int, per_segment: int, lengths: list[int]
) -> None:
    assert measure(text) == SegmentInfo(
        encoding=encoding,
        segments=segments,
        units=units,
        units_per_segment=per_segment,
        characters=len(text),
        exceeded=segments > MAX_SEGMENTS,
    )
    pieces = split(text)
    assert [len(piece) for piece in pieces] == lengths
    assert "".join(pieces) == text


def test_alphabet_is_gsm_03_38() -> None:
    # 128 code points minus the escape; no character in both tables
    assert len(GSM_BASIC) == len(set(GSM_BASIC)) == 127
    assert set(GSM_EXTENSION) == set("\f^{}\\[~]|€")
    assert not set(GSM_BASIC) & set(GSM_EXTENSION)


def test_as_dict_is_json_ready() -> None:
    assert measure("a" * 161).as_dict() == {
        "encoding": "GSM-7",
        "segments": 2,
        "units": 161,
        "units_per_segment": 153,
        "characters": 161,
        "exceeded": False,
    }


def _units(piece: str, encoding: str) -> int:
    if encoding == GSM_7:
        return len(piece) + sum(piece.count(char) for char in GSM_EXTENSION)
    return len(piece.encode("utf-16-le")) // 2


@given(
    st.text(
        alphabet=st.sampled_from(["a", "é", EURO, "^", ZHE, "ç", SMILE, "\n", " "]),
        max_size=400,
    )
)
def test_split_agrees_with_measure(text: str) -> None:
    info, pieces = measure(text), split(text)
    assert "".join(pieces) == text
    assert len(pieces) == info.segments
    assert sum(_units(piece, info.encoding) for piece in pieces) == info.units
    assert all(_units(piece, info.encoding) <= info.units_per_segment for piece in pieces)
    # greedy packing: a segment is only closed when the next character would not fit
    for piece, following in zip(pieces, pieces[1:], strict=False):
        used = _units(piece, info.encoding) + _units(following[0], info.encoding)
        assert used > info.units_per_segment


@given(
    st.text(
        alphabet=st.sampled_from(["a", "é", EURO, "^", ZHE, "`", SMILE, "\n", " "]),
        max_size=2000,
    )
)
def test_cost_is_what_measure_says(text: str) -> None:
    info = measure(text)
    assert cost(text) == (info.encoding, info.segments, info.exceeded)


@pytest.mark.parametrize("length", [0, 1, 159, 160, 161, 1530, 1531])
def test_cost_at_the_segment_bounds(length: int) -> None:
    for text in ("a" * length, "a" * (length - 1) + EURO if length else ""):
        info = measure(text)
        assert cost(text) == (info.encoding, info.segments, info.exceeded)

"""How a text travels as SMS: GSM-7 or UCS-2, how many segments, and what each one holds.

GSM 03.38 default alphabet: one septet per character, 160 in a single SMS, 153 per segment once
the message is concatenated (the user data header takes the rest). The extension table
(``^ { } \\ [ ~ ] | €`` and form feed) costs two septets, an escape and the character, and the
pair never splits across segments. Any character outside both tables makes the whole message
UCS-2: UTF-16 code units, 70 single / 67 concatenated; a character outside the BMP (most emoji)
is a surrogate pair, two units that never split. National language shift tables (Turkish,
Spanish, Portuguese) are not used: gateways differ in their support, UCS-2 always arrives.

Segments are packed greedily, as handsets and gateways do, so a pair that does not fit at the
end of a segment leaves one unit unused and may add a segment: the count comes from the packing,
never from ``ceil(units / 153)`` alone. Empty text is one segment of zero units.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from broadcaster.constants import MAX_SEGMENTS

GSM_7 = "GSM-7"
UCS_2 = "UCS-2"

#: GSM 03.38 default alphabet, in table order (0x00-0x7F, the escape 0x1B left out).
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
#: Characters reached through the escape: two septets each.
GSM_EXTENSION = "\f^{}\\[~]|€"

#: Septets in one SMS, and per segment of a concatenated one.
GSM_SINGLE_UNITS, GSM_SEGMENT_UNITS = 160, 153
#: UTF-16 code units in one SMS, and per segment of a concatenated one.
UCS_SINGLE_UNITS, UCS_SEGMENT_UNITS = 70, 67

# One C-speed scan decides the common case ("all basic GSM"); these are its building blocks.
_NOT_BASIC = re.compile("[^" + re.escape(GSM_BASIC) + "]")
_NOT_GSM = re.compile("[^" + re.escape(GSM_BASIC + GSM_EXTENSION) + "]")
_EXTENSION = re.compile("[" + re.escape(GSM_EXTENSION) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_EXTENSION_SET = frozenset(GSM_EXTENSION)


def _is_astral(char: str) -> bool:
    return char > "\uffff"


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What sending one text costs."""

    #: ``"GSM-7"`` or ``"UCS-2"``.
    encoding: str
    #: SMS segments the gateway bills, at least 1.
    segments: int
    #: Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text.
    units: int
    #: Capacity of one segment: 160/70 for a single SMS, 153/67 once concatenated.
    units_per_segment: int
    #: Unicode code points of the text.
    characters: int
    #: More than ``MAX_SEGMENTS`` segments: the message is refused SEGMENTS_EXCEEDED.
    exceeded: bool

    def as_dict(self) -> dict[str, str | int | bool]:
        """JSON-ready form for the API and the command line."""
        return {
            "encoding": self.encoding,
            "segments": self.segments,
            "units": self.units,
            "units_per_segment": self.units_per_segment,
            "characters": self.characters,
            "exceeded": self.exceeded,
        }


def _encoding(text: str) -> tuple[str, int, int, int, bool]:
    """(encoding, units, single capacity, segment capacity, has two-unit characters)."""
    if _NOT_BASIC.search(text) is None:
        return GSM_7, len(text), GSM_SINGLE_UNITS, GSM_SEGMENT_UNITS, False
    if _NOT_GSM.search(text) is None:
        escapes = len(_EXTENSION.findall(text))
        return GSM_7, len(text) + escapes, GSM_SINGLE_UNITS, GSM_SEGMENT_UNITS, True
    astral = len(_ASTRAL.findall(text))
    return UCS_2, len(text) + astral, UCS_SINGLE_UNITS, UCS_SEGMENT_UNITS, astral > 0


def _two_units(encoding: str) -> Callable[[str], bool]:
    """Test of the characters that cost two units in ``encoding``."""
    return _EXTENSION_SET.__contains__ if encoding == GSM_7 else _is_astral


def _pack(text: str, capacity: int, two_units: Callable[[str], bool]) -> list[str]:
    """Greedy packing into segments of ``capacity`` units; a two-unit character never splits."""
    pieces: list[str] = []
    start = used = 0
    for index, char in enumerate(text):
        cost = 2 if two_units(char) else 1
        if used + cost > capacity:
            pieces.append(text[start:index])
            start, used = index, 0
        used += cost
    pieces.append(text[start:])
    return pieces


def measure(text: str) -> SegmentInfo:
    """Encoding, units and segments of ``text`` as it will be sent."""
    encoding, units, single, per_segment, has_doubles = _encoding(text)
    if units <= single:
        segments, capacity = 1, single
    elif has_doubles:
        segments, capacity = len(_pack(text, per_segment, _two_units(encoding))), per_segment
    else:
        segments, capacity = -(-units // per_segment), per_segment
    return SegmentInfo(encoding, segments, units, capacity, len(text), segments > MAX_SEGMENTS)


def cost(text: str) -> tuple[str, int, bool]:
    """``(encoding, segments, exceeded)`` of ``text``, as :func:`measure` says: the import's
    per-row question, answered without building a SegmentInfo for the common text (one
    segment of GSM-7 basic characters, one regular-expression scan)."""
    if len(text) <= GSM_SINGLE_UNITS and _NOT_BASIC.search(text) is None:
        return _ONE_GSM_SEGMENT
    info = measure(text)
    return info.encoding, info.segments, info.exceeded


_ONE_GSM_SEGMENT = (GSM_7, 1, False)


def split(text: str) -> list[str]:
    """The texts of the segments, in order; ``"".join(split(t)) == t``; ``[""]`` for ``""``."""
    encoding, units, single, per_segment, _ = _encoding(text)
    if units <= single:
        return [text]
    return _pack(text, per_segment, _two_units(encoding))


def measure_truncated(prefix: str, characters: int) -> SegmentInfo:
    """At least what a text of ``characters`` code points that starts with ``prefix`` costs.

    For texts cut short by ``Template.render_bounded``: the rest was never built, so units and
    segments are lower bounds (every character costs at least one unit in the prefix's
    encoding), which is enough to know that a text is over ``MAX_SEGMENTS``.
    """
    start = measure(prefix)
    if characters <= start.characters:
        return start
    units = start.units + characters - start.characters
    gsm = start.encoding == GSM_7
    single = GSM_SINGLE_UNITS if gsm else UCS_SINGLE_UNITS
    if units <= single:
        segments, capacity = 1, single
    else:
        capacity = GSM_SEGMENT_UNITS if gsm else UCS_SEGMENT_UNITS
        segments = max(start.segments, -(-units // capacity))
    return SegmentInfo(
        start.encoding, segments, units, capacity, characters, segments > MAX_SEGMENTS
    )

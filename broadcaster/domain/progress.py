"""How far a broadcast is and when it should end: pure arithmetic on counts and a code's rate.

The list of broadcasts shows these; the numbers come from the store (remaining segments) and the
sender code (messages per second), the arithmetic lives here so it is tested without either.
"""

from __future__ import annotations

import math


def progress(expected: int, remaining: int) -> float:
    """The share of a broadcast's messages that left the queue, 0.0 to 1.0 (1.0 when empty)."""
    if expected <= 0:
        return 1.0
    done = min(max(expected - remaining, 0), expected)
    return round(done / expected, 4)


def eta_seconds(remaining_segments: int, segments_per_s: float | None) -> int | None:
    """Seconds until the queue is sent at the code's rate: each segment is one send at the gateway.

    None when it cannot be told (no rate, or a rate of zero); 0 when nothing is left.
    """
    if remaining_segments <= 0:
        return 0
    if not segments_per_s or segments_per_s <= 0 or math.isinf(segments_per_s):
        return None
    return math.ceil(remaining_segments / segments_per_s)

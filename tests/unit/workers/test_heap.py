"""The collector settings workers apply after fork (checked in a child: freezing is for good)."""

from __future__ import annotations

import subprocess
import sys

from workers import heap

PROBE = """
import gc
from workers import heap
before = gc.get_freeze_count()
heap.settle()
print(before, gc.get_freeze_count() > 1000, gc.get_threshold()[0])
"""


def test_settle_freezes_what_is_alive_and_collects_young_garbage_less_often():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["0", "True", str(heap.YOUNG_THRESHOLD)]

"""Recipient files for tests that run broadcasts end to end."""

from __future__ import annotations

import random
from pathlib import Path


def write_recipients(path: Path, n: int, seed: int = 1) -> dict[str, tuple[str, str]]:
    """n distinct Mexican mobile numbers with a name and a balance; returns number → values."""
    rng = random.Random(seed)
    numbers: set[int] = set()
    while len(numbers) < n:
        numbers.add(5255_1000_0000 + rng.randrange(0, 9000_0000))
    rows = {}
    with path.open("w") as f:
        f.write("msisdn;name;balance\n")
        for i, num in enumerate(sorted(numbers)):
            name, balance = f"Cliente {i}", f"{rng.randrange(1, 10**6) / 100:.2f}"
            f.write(f"{num};{name};{balance}\n")
            rows[f"+{num}"] = (name, balance)
    return rows

"""Rate limits hold across worker processes: two codes at different rates, three workers."""

from __future__ import annotations

import pytest

from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from tests.support.recipients import write_recipients

pytestmark = pytest.mark.slow

RATES = {"55511": 20.0, "55512": 60.0}
SECONDS = 8


def test_two_codes_keep_their_own_rates_across_three_workers(make_stack, tmp_path):
    stack = make_stack(send_workers=3)
    ids = {}
    for i, (code, mps) in enumerate(RATES.items()):
        add_code(stack.engine, stack.settings, code, "short", mps=mps)
        # more recipients than the code can send in the window: demand exceeds supply
        write_recipients(tmp_path / f"{code}.csv", int(mps * SECONDS * 1.5), seed=10 + i)
        ids[code] = create_from_file(
            stack.engine,
            stack.settings,
            tmp_path / f"{code}.csv",
            NewBroadcast(sender=code, text="Hola {name}"),
        ).id
    for code, bid in ids.items():
        stack.wait(
            lambda b=bid: get_broadcast(stack.engine, b).status == "COMPLETED",
            60,
            f"{code} done",
        )
    for code, mps in RATES.items():
        per_second = dict(stack.sim(f"/_sim/stats/rate?from={code}")["per_second"])
        full = sorted(per_second)[1:-1]  # whole seconds only: the first and last are partial
        assert full, per_second
        burst = max(1.0, mps)  # the bucket's capacity
        # never above the configured rate plus the one-time burst, in any whole second …
        assert max(per_second[s] for s in full) <= mps + burst, (code, per_second)
        # … and over the run the average holds the rate (the first second may carry the burst)
        total = sum(per_second[s] for s in full)
        assert total <= mps * len(full) + burst, (code, per_second)
        assert total >= 0.85 * mps * len(full), (code, per_second)

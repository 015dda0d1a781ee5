"""A 1,000-recipient broadcast through the whole stack and a real Kannel: each message reaches
the SMSC once, and Kannel's receipts settle every message as DELIVRD."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from tests.support.recipients import write_recipients

pytestmark = pytest.mark.slow

N = 1000


def test_thousand_recipients_through_real_kannel(make_stack, kannel, tmp_path):
    base_url, user, password = kannel.start_info
    accounts = {
        "kannel-main": {
            "provider": "kannel",
            "base_url": base_url,
            "username": user,
            "password": password,
            "mps": 400,
        }
    }
    stack = make_stack(env={"BROADCASTER_ACCOUNTS": json.dumps(accounts)})
    rows = write_recipients(tmp_path / "list.csv", N, seed=21)
    add_code(
        stack.engine,
        stack.settings,
        "55520",
        "short",
        mps=400,
        provider="kannel",
        account="kannel-main",
    )
    parts_before = len(kannel.fakesmsc_received())
    # a UCS-2 text over 70 units: two concatenated parts per message at the SMSC
    view = create_from_file(
        stack.engine,
        stack.settings,
        tmp_path / "list.csv",
        NewBroadcast(
            sender="55520",
            text="Hola {name}, tu saldo es {balance} MXN. ¿Dudas? Llámanos ☎ " + "·" * 60,
        ),
    )

    def settled() -> bool:
        got = get_broadcast(stack.engine, view.id)
        return got.counts.get("DELIVRD", 0) == N and got.status == "COMPLETED"

    stack.wait(
        settled, 120, "every message DELIVRD by Kannel's receipts, and the broadcast COMPLETED"
    )
    final = get_broadcast(stack.engine, view.id)
    assert final.status == "COMPLETED" and final.delivered_messages == N
    whole = [w for w in kannel.messages() if w.receiver in rows]
    assert Counter(w.receiver for w in whole) == Counter({to: 1 for to in rows})  # each once
    assert all(w.parts == 2 for w in whole)  # UCS-2, over 70 units: two concatenated parts
    assert len(kannel.fakesmsc_received()) - parts_before == 2 * N

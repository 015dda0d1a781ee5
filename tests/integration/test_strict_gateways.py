"""Broadcasts through the whole stack (real Celery workers, real Redis, the API receiving
receipts) against gateways written from their seed documents alone (``tests/support/strict_*``):
every message reaches the gateway once, and every receipt the gateway posts or reports is
applied. The lenient simulator accepts what these refuse, so only these show a contract slip."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import sqlalchemy as sa

from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.models import messages, receipts
from tests.integration.test_send_path import write_recipients
from tests.support.served import ServedApp
from tests.support.strict_messangi import API_KEY, BASE_PATH, StrictMessangi

pytestmark = pytest.mark.slow

N = 2000
#: Recipients the strict Messangi gateway reports as BLACKLISTED.
BLACKLISTED = 3
SETTLE_TIMEOUT_S = 240


def _receipts_by_message(engine, broadcast_id: int) -> Counter[tuple[str, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(receipts.c.status, receipts.c.applied)
            .join(messages, messages.c.id == receipts.c.message_id)
            .where(messages.c.broadcast_id == broadcast_id)
        ).all()
    return Counter((r.status, bool(r.applied)) for r in rows)


def test_broadcast_through_strict_messangi_gets_every_receipt(make_stack, tmp_path):
    # Given a gateway that reads the seed's fields only, with three blacklisted recipients
    rows = write_recipients(tmp_path / "list.csv", N, seed=31)
    blacklist = set(sorted(rows)[:BLACKLISTED])
    fake = StrictMessangi(codes={"55530"}, blacklist=blacklist)
    with ServedApp(fake.app()) as gateway:
        accounts = {
            "messangi-seed": {
                "provider": "messangi",
                "base_url": gateway.url(BASE_PATH),
                "api_key": API_KEY,
            }
        }
        stack = make_stack(env={"BROADCASTER_ACCOUNTS": json.dumps(accounts)})
        add_code(
            stack.engine,
            stack.settings,
            "55530",
            "short",
            mps=2000,
            provider="messangi",
            account="messangi-seed",
        )
        # When a broadcast to all of them runs
        view = create_from_file(
            stack.engine,
            stack.settings,
            tmp_path / "list.csv",
            NewBroadcast(sender="55530", text="Hola {name}, tu saldo es {balance} MXN"),
        )

        def settled() -> bool:
            got = get_broadcast(stack.engine, view["id"])
            assert got["status"] != "SUSPENDED", got["statusReason"]
            final = got["counts"].get("DELIVRD", 0) + got["counts"].get("BLACKLISTED", 0)
            return final == N and got["status"] == "COMPLETED"

        try:
            stack.wait(settled, SETTLE_TIMEOUT_S, "every receipt of the strict gateway applied")
        finally:
            accepted = gateway.call(lambda: list(fake.accepted))
            posted = gateway.call(lambda: list(fake.posted))
            print(f"refused: {gateway.call(lambda: fake.refused[:5])}")
            print(f"ignored fields: {Counter(gateway.call(lambda: list(fake.ignored)))}")
            print(f"accepted {len(accepted)}, receipts posted {len(posted)}")
    # Then each recipient reached the gateway exactly once, asking for a receipt
    assert Counter(b["to"] for b in accepted) == Counter({to: 1 for to in rows})
    assert all(b["requestDR"] is True and isinstance(b["callbacks"], str) for b in accepted)
    # and every receipt it posted was taken (200) and applied to its message
    assert len(posted) == N and {outcome for _, _, outcome in posted} == {"200"}
    final = get_broadcast(stack.engine, view["id"])
    assert final["counts"].get("DELIVRD", 0) == N - BLACKLISTED
    assert final["counts"].get("BLACKLISTED", 0) == BLACKLISTED
    assert _receipts_by_message(stack.engine, view["id"]) == Counter(
        {("DELIVRD", True): N - BLACKLISTED, ("BLACKLISTED", True): BLACKLISTED}
    )

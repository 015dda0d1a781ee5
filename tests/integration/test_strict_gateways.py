"""Broadcasts through the whole stack (real Celery workers, real Redis, the API receiving
receipts) against gateways written from their seed documents alone (``tests/support/strict_*``):
every message reaches the gateway once, and every receipt the gateway posts or reports is
applied. The lenient simulator accepts what these refuse, so only these show a contract slip."""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from collections import Counter

import pytest
import sqlalchemy as sa

from broadcaster.services.apikeys import create_key
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.models import messages, receipts
from tests.support.recipients import write_recipients
from tests.support.served import ServedApp
from tests.support.strict_messangi import API_KEY, BASE_PATH, StrictMessangi
from tests.support.strict_opentext import PASSWORD, USERNAME, StrictOpenText
from tests.support.strict_vonage import StrictVonage
from tests.support.strict_vonage import account as vonage_account

pytestmark = pytest.mark.slow

N = 2000
#: Recipients the strict Messangi gateway reports as BLACKLISTED, and as INVALID_ROUTING.
BLACKLISTED = 3
UNROUTABLE = 2
#: Recipients of a broadcast from a code the gateway does not allow (CODE_NOT_ALLOWED).
NOT_ALLOWED = 4
SETTLE_TIMEOUT_S = 240


def _receipts_by_message(engine, broadcast_id: int) -> Counter[tuple[str, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(receipts.c.status, receipts.c.applied)
            .join(messages, messages.c.id == receipts.c.message_id)
            .where(messages.c.broadcast_id == broadcast_id)
        ).all()
    return Counter((r.status, bool(r.applied)) for r in rows)


def _api(stack, path: str, key: str):
    """GET ``path`` from the stack's API process (JSON, or the raw bytes of a report)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{stack.dev.api_port}{path}", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
        return json.loads(body) if resp.headers.get_content_type() == "application/json" else body


def test_broadcast_through_strict_messangi_gets_every_receipt(make_stack, tmp_path):
    # Given a gateway that reads the seed's fields only, with three blacklisted recipients and
    # two it cannot route, and a second code of the account that the gateway does not allow
    rows = write_recipients(tmp_path / "list.csv", N, seed=31)
    ordered = sorted(rows)
    blacklist = set(ordered[:BLACKLISTED])
    unroutable = set(ordered[BLACKLISTED : BLACKLISTED + UNROUTABLE])
    delivered = N - BLACKLISTED - UNROUTABLE
    write_recipients(tmp_path / "other.csv", NOT_ALLOWED, seed=34)
    fake = StrictMessangi(codes={"55530"}, blacklist=blacklist, unroutable=unroutable)
    with ServedApp(fake.app()) as gateway:
        accounts = {
            "messangi-seed": {
                "provider": "messangi",
                "base_url": gateway.url(BASE_PATH),
                "api_key": API_KEY,
            }
        }
        # the Procfile's processes and no simulator: only the seed's gateway is there to answer
        stack = make_stack(env={"BROADCASTER_ACCOUNTS": json.dumps(accounts)}, with_simulator=False)
        for code in ("55530", "55539"):
            add_code(
                stack.engine,
                stack.settings,
                code,
                "short",
                mps=2000,
                provider="messangi",
                account="messangi-seed",
            )
        # When a broadcast to all of them runs, and one from the code the gateway refuses
        view = create_from_file(
            stack.engine,
            stack.settings,
            tmp_path / "list.csv",
            NewBroadcast(sender="55530", text="Hola {name}, tu saldo es {balance} MXN"),
        )
        other = create_from_file(
            stack.engine,
            stack.settings,
            tmp_path / "other.csv",
            NewBroadcast(sender="55539", text="Hola {name}"),
        )

        def settled() -> bool:
            got, refused = (
                get_broadcast(stack.engine, view.id),
                get_broadcast(stack.engine, other.id),
            )
            assert got.status != "SUSPENDED", got.status_reason
            final = sum(got.counts.get(s, 0) for s in ("DELIVRD", "BLACKLISTED", "INVALID_ROUTING"))
            return (
                final == N
                and got.status == "COMPLETED"
                and refused.counts.get("CODE_NOT_ALLOWED", 0) == NOT_ALLOWED
                and refused.status == "COMPLETED"
            )

        try:
            stack.wait(settled, SETTLE_TIMEOUT_S, "every receipt of the strict gateway applied")
        finally:
            accepted = gateway.call(lambda: list(fake.accepted))
            posted = gateway.call(lambda: list(fake.posted))
            ignored = gateway.call(lambda: list(fake.ignored))
            print(f"refused: {gateway.call(lambda: fake.refused[:5])}")
            print(f"ignored fields: {Counter(ignored)}")
            print(f"accepted {len(accepted)}, receipts posted {len(posted)}")
            print(f"receipt answers: {Counter(outcome for _, _, outcome in posted)}")
            for b in (view.id, other.id):
                got = get_broadcast(stack.engine, b)
                print(f"broadcast {b}: {got.status} {got.counts}")
    # Then each recipient reached the gateway exactly once, asking for a receipt, in the seed's
    # fields only (nothing it would ignore), callbacks as one comma-separated string
    assert Counter(b["to"] for b in accepted if b["from"] == "55530") == Counter(
        {to: 1 for to in rows}
    )
    assert len(accepted) == N + NOT_ALLOWED and not fake.refused
    assert ignored == []
    assert all(b["requestDR"] is True and isinstance(b["callbacks"], str) for b in accepted)
    # and every receipt it posted was taken (200) and applied to its message
    assert len(posted) == N + NOT_ALLOWED and {outcome for _, _, outcome in posted} == {"200"}
    final = get_broadcast(stack.engine, view.id)
    want = {"DELIVRD": delivered, "BLACKLISTED": BLACKLISTED, "INVALID_ROUTING": UNROUTABLE}
    assert final.counts == want, final.counts
    assert _receipts_by_message(stack.engine, view.id) == Counter(
        {(status, True): n for status, n in want.items()}
    )
    # The refusals keep their seed names in what the API reports: the breakdown counts each
    # reason, the report names it per recipient
    key = create_key(stack.engine, "default").key
    breakdown = _api(stack, f"/v1/broadcasts/{view.id}/breakdown", key)
    assert breakdown["byStatus"] == want, breakdown
    failed = Counter()
    for item in breakdown["byReason"]:
        failed[item["status"]] += item["count"]
    assert failed == Counter({"BLACKLISTED": BLACKLISTED, "INVALID_ROUTING": UNROUTABLE})
    other_breakdown = _api(stack, f"/v1/broadcasts/{other.id}/breakdown", key)
    assert other_breakdown["byStatus"] == {"CODE_NOT_ALLOWED": NOT_ALLOWED}, other_breakdown
    report = _api(stack, f"/v1/broadcasts/{view.id}/report?format=csv", key)
    by_row = {r["to"]: r["status"] for r in csv.DictReader(io.StringIO(report.decode("utf-8-sig")))}
    assert Counter(by_row.values()) == Counter(want)
    assert {by_row[to] for to in blacklist} == {"BLACKLISTED"}
    assert {by_row[to] for to in unroutable} == {"INVALID_ROUTING"}


#: Recipients of the Vonage and OpenText runs.
N_OTHER = 1000


def _run(stack, tmp_path, code: str, account: str, provider: str, n: int, seed: int):
    """A broadcast of ``n`` recipients on a new code of ``account``; returns (view, rows)."""
    rows = write_recipients(tmp_path / f"{code}.csv", n, seed=seed)
    add_code(
        stack.engine, stack.settings, code, "short", mps=2000, provider=provider, account=account
    )
    view = create_from_file(
        stack.engine,
        stack.settings,
        tmp_path / f"{code}.csv",
        NewBroadcast(sender=code, text="Hola {name}, tu saldo es {balance} MXN"),
    )
    return view, rows


def _wait_for(stack, broadcast_id: int, status: str, n: int) -> None:
    def settled() -> bool:
        got = get_broadcast(stack.engine, broadcast_id)
        assert got.status != "SUSPENDED", got.status_reason
        return got.counts.get(status, 0) == n and got.status == "COMPLETED"

    stack.wait(settled, SETTLE_TIMEOUT_S, f"{n} messages {status} and the broadcast COMPLETED")


def test_broadcast_through_strict_vonage_sends_each_once(make_stack, tmp_path):
    fake = StrictVonage()
    with ServedApp(fake.app()) as gateway:
        accounts = {"kpn-seed": vonage_account(gateway.url)}
        stack = make_stack(env={"BROADCASTER_ACCOUNTS": json.dumps(accounts)})
        view, rows = _run(stack, tmp_path, "55531", "kpn-seed", "vonage", N_OTHER, seed=32)
        try:
            # seed 002 defines no delivery receipt for a sent message: SENT is where they end
            _wait_for(stack, view.id, "SENT", N_OTHER)
        finally:
            accepted = gateway.call(lambda: list(fake.accepted))
            print(f"refused: {gateway.call(lambda: fake.refused[:5])}")
    assert Counter("+" + b["to"] for b in accepted) == Counter({to: 1 for to in rows})
    with stack.engine.connect() as conn:
        gateway_ids = conn.execute(
            sa.select(messages.c.gateway_id).where(messages.c.broadcast_id == view.id)
        ).scalars()
        assert len({g for g in gateway_ids if g}) == N_OTHER  # each its own message-id


def test_broadcast_through_strict_opentext_gets_every_status(make_stack, tmp_path):
    fake = StrictOpenText()
    with ServedApp(fake.app()) as gateway:
        accounts = {
            "opentext-seed": {
                "provider": "opentext",
                "base_url": gateway.url(""),
                "username": USERNAME,
                "password": PASSWORD,
            }
        }
        stack = make_stack(env={"BROADCASTER_ACCOUNTS": json.dumps(accounts)})
        view, rows = _run(stack, tmp_path, "55532", "opentext-seed", "opentext", N_OTHER, seed=33)
        try:
            _wait_for(stack, view.id, "DELIVRD", N_OTHER)
        finally:
            jobs = gateway.call(lambda: dict(fake.jobs))
            print(f"refused: {gateway.call(lambda: fake.refused[:5])}")
    sent = Counter(d["sms"] for job in jobs.values() for d in job["destinations"])
    assert sent == Counter({"00" + to[1:]: 1 for to in rows})  # each once, as the seed's 00…
    # every message settled by one applied DELIVRD; two beat ticks that overlap on a loaded
    # machine may ask about a job twice, and the repeat is kept in the history, not applied
    got = _receipts_by_message(stack.engine, view.id)
    assert got[("DELIVRD", True)] == N_OTHER, got
    assert set(got) <= {("DELIVRD", True), ("DELIVRD", False)}, got

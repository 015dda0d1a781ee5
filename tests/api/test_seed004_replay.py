"""Seed 004's optional replay guard (issue 14, as issue 11 asks of every signed request).

A seed-004 URL signed without the guard can be replayed (the seed's design). A client that adds
``?timestamp=<Unix seconds>&nonce=<8-64 of A-Z a-z 0-9 - _>`` and signs them (after the POST
parameters, before the secret) gets /v1's guard: the timestamp within the signature window, the
nonce remembered in /v1's durable nonce store, and a 503 (never a pass) when that store cannot
answer.
"""

from __future__ import annotations

import hashlib
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from broadcaster.api.seed004_sign import seed_signature
from broadcaster.api.signatures import DatabaseNonces
from broadcaster.services.apikeys import create_key
from broadcaster.services.nonces import NonceLedger
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import broadcasts
from tests.api.test_replay_guard import _HeldLock
from tests.support.api import PHONES
from tests.support.api_client import Api, MakeApi

TO = json.dumps({"text": "Hi", "to": [PHONES[0]]})


def _create_url(made, guard: tuple[str, str] | None, *, signed_guard: bool = True) -> str:
    params = [str(made.instance_id), "-1", "55501", "ana", "true", "null", "null", made.public_key]
    digest = hashlib.sha256(TO.encode()).hexdigest()
    signed = guard if (guard and signed_guard) else ()
    sig = seed_signature(params, [digest], made.seed_secret, signed or ())
    url = "/rest/api/createBroadcastFromJson/" + "".join(quote(p, safe="") + "/" for p in params)
    url += sig
    if guard:
        url += f"?timestamp={guard[0]}&nonce={guard[1]}"
    return url


async def _post(api: Api, url: str) -> tuple[int, str, str]:
    resp = await api.client.post(url, data={"to": TO})
    root = ET.fromstring(await resp.read())
    return resp.status, root.findtext("status") or "", root.findtext("description") or ""


def _count(api: Api) -> int:
    with api.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(broadcasts)).scalar_one())


async def test_a_guarded_call_cannot_be_replayed(api: Api) -> None:
    made = create_key(api.engine, "acme")
    now = str(int(time.time()))
    url = _create_url(made, (now, "seed-nonce-0001"))
    # Given a guarded create that is served once...
    assert (await _post(api, url))[:2] == (200, "OK")
    assert _count(api) == 1
    # ...its exact replay is refused in the envelope, and nothing more is stored
    status, word, why = await _post(api, url)
    assert (status, word) == (401, "ERROR") and "nonce" in why and "already used" in why
    # the guard's parameters are signed: a fresh nonce on the old signature does not pass
    moved = url.replace("seed-nonce-0001", "seed-nonce-0002")
    status, _, why = await _post(api, moved)
    assert status == 401 and "signature" in why
    # nor do guard parameters added to a URL signed without them
    status, _, why = await _post(
        api, _create_url(made, (now, "seed-nonce-0003"), signed_guard=False)
    )
    assert status == 401 and "signature" in why
    assert _count(api) == 1
    # a call without the guard is served as before (the seed's own URLs)
    assert (await _post(api, _create_url(made, None)))[0] == 200
    assert _count(api) == 2


async def test_the_guards_timestamp_and_nonce_are_checked(api: Api) -> None:
    made = create_key(api.engine, "acme")
    now = int(time.time())
    cases = {
        (str(now - 3600), "seed-nonce-old1"): "window",
        ("soon", "seed-nonce-bad1"): "Unix seconds",
        (str(now), "no"): "nonce",
        (str(now), "bad nonce!"): "nonce",
    }
    for guard, words in cases.items():
        status, word, why = await _post(api, _create_url(made, guard))
        assert (status, word) == (401, "ERROR") and words in why, (guard, why)
    # one of the two alone is refused too
    half = _create_url(made, None) + f"?timestamp={now}"
    status, _, why = await _post(api, half)
    assert status == 401 and "both" in why
    assert _count(api) == 0


async def test_a_guard_that_cannot_answer_refuses_with_503(
    make_api: MakeApi, tmp_path: Path
) -> None:
    # Given an API whose nonce insert waits at most 300 ms for the database...
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    ledger = NonceLedger(engine_for(url), wait_ms=300)
    api = await make_api(url, nonces=DatabaseNonces(ledger))
    made = create_key(api.engine, "acme")
    call = _create_url(made, (str(int(time.time())), "seed-locked-01"))
    # ...while another connection holds the lock it needs, a guarded create is refused, 503
    with _HeldLock(url):
        resp = await api.client.post(call, data={"to": TO})
        assert resp.status == 503 and resp.headers["Retry-After"].isdigit()
        root = ET.fromstring(await resp.read())
        assert root.findtext("status") == "ERROR" and "replay guard" in root.findtext("description")
    assert _count(api) == 0
    # Then the same call is served once, and its replay refused
    assert (await _post(api, call))[0] == 200
    assert (await _post(api, call))[0] == 401
    assert _count(api) == 1

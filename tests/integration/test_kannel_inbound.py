"""MO messages through a real Kannel: fakesmsc sends them, smsbox calls the ``sms-service``
``get-url`` of docs/inbound.md, and broadcaster's ``/v1/inbound/<account>`` stores each once
and suppresses the STOP's sender (issue 13)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
import sqlalchemy as sa

from broadcaster.api.app import create_app
from broadcaster.api.context import CTX
from broadcaster.config import Settings
from broadcaster.services.codes import add_code
from broadcaster.store.models import inbound_messages, optouts
from tests.support.inprocess import ListQueue
from tests.support.kannel import KannelHarness, KannelUnavailable
from tests.support.served import ServedApp

CODE = "15550100"
STOPPER, ASKER = "+525530000001", "+525530000002"
SECRET = "kannel-mo-secret"


def _rows(engine: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(inbound_messages)).mappings()]


def test_kannel_mo_reaches_the_inbound_webhook(sqlite_url: str) -> None:
    accounts = {
        "kannel-main": {
            "provider": "kannel",
            "base_url": "http://127.0.0.1:1",  # sending is not part of this test
            "username": "u",
            "password": "p",
            "dlr_secret": SECRET,
        }
    }
    settings = Settings(database_url=sqlite_url, accounts=json.dumps(accounts), redis_url=None)
    app = create_app(settings, queue=ListQueue())
    engine = app[CTX].engine
    add_code(engine, settings, CODE, "long", account="kannel-main", workspace="acme")
    with ServedApp(app) as served:
        url = served.url(f"/v1/inbound/kannel-main?secret={SECRET}")
        mo = (f"{STOPPER} {CODE} text Stop", f"{ASKER} {CODE} text HELP")
        harness = KannelHarness(mo=mo, inbound_url=url)
        try:
            harness.start()
        except KannelUnavailable as exc:
            reason = f"REAL KANNEL TESTS NOT RUN: {exc} (apt-get install kannel kannel-extras)"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        try:
            deadline = time.monotonic() + 30
            while len(_rows(engine)) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            rows = _rows(engine)
        finally:
            harness.stop()
    # fakesmsc picks among its lines at random: at least the two kinds, each stored once per id
    assert len(rows) >= 2, rows
    assert len({r["gateway_id"] for r in rows}) == len(rows)
    assert {r["route"] for r in rows} == {"kannel-main"}
    assert {r["recipient"] for r in rows} == {CODE}
    by_keyword = {r["keyword"]: r["sender"] for r in rows}
    assert set(by_keyword) <= {"OPT_OUT", "HELP"}
    with engine.connect() as conn:
        listed = {n for (n,) in conn.execute(sa.select(optouts.c.number))}
    assert listed == ({STOPPER} if "OPT_OUT" in by_keyword else set())

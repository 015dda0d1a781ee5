"""MO messages through a real Kannel: fakesmsc sends them, smsbox calls the ``sms-service``
``get-url`` of docs/inbound.md, and broadcaster's ``/v1/inbound/<account>`` stores each once
with its text decoded (a UCS-2 ARRÊT too), suppresses a STOP's sender and makes one reply from
the code (issue 13)."""

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
from broadcaster.store.models import broadcasts, inbound_messages, messages, optouts
from tests.support.inprocess import ListQueue
from tests.support.kannel import KannelHarness, KannelUnavailable
from tests.support.served import ServedApp

CODE = "15550100"
STOPPER, ASKER = "+525530000001", "+525530000002"
SECRET = "kannel-mo-secret"


def _rows(engine: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(inbound_messages)).mappings()]


def _ucs2(text: str) -> str:
    """fakesmsc's ``ucs2`` msgdata: the text's UTF-16BE octets, URL-encoded."""
    return "".join(f"%{b:02X}" for b in text.encode("utf-16-be"))


#: One fakesmsc line per Kannel (with several it picks among them at random): the sender, its
#: text as the subscriber typed it, and what broadcaster must read. ARRÊT is UCS-2 on a phone
#: (Ê is not in the GSM alphabet); ¡Ayuda! is GSM 7-bit, which Kannel hands on as UTF-8.
MOS = [
    pytest.param(STOPPER, f"ucs2 {_ucs2('ARRÊT')}", "ARRÊT", "OPT_OUT", id="ucs2-ARRET"),
    pytest.param(ASKER, "text ¡Ayuda!", "¡Ayuda!", "HELP", id="gsm-Ayuda"),
    pytest.param(STOPPER, "text Stop", "Stop", "OPT_OUT", id="gsm-Stop"),
]


@pytest.mark.parametrize(("sender", "line", "text", "keyword"), MOS)
def test_kannel_mo_reaches_the_inbound_webhook(
    sqlite_url: str, sender: str, line: str, text: str, keyword: str
) -> None:
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
    queue = ListQueue()
    app = create_app(settings, queue=queue)
    engine = app[CTX].engine
    add_code(engine, settings, CODE, "long", account="kannel-main", workspace="acme")
    with ServedApp(app) as served:
        url = served.url(f"/v1/inbound/kannel-main?secret={SECRET}")
        harness = KannelHarness(mo=(f"{sender} {CODE} {line}",), inbound_url=url)
        try:
            harness.start()
        except KannelUnavailable as exc:
            reason = f"REAL KANNEL TESTS NOT RUN: {exc} (apt-get install kannel kannel-extras)"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        try:
            deadline = time.monotonic() + 30
            while not _rows(engine) and time.monotonic() < deadline:
                time.sleep(0.2)
            rows = _rows(engine)
        finally:
            harness.stop()
    # Then the MO is stored once, with the text the subscriber typed, as that keyword
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["route"], row["recipient"], row["sender"]) == ("kannel-main", CODE, sender)
    assert (row["text"], row["keyword"]) == (text, keyword), row
    assert row["gateway_id"] and not row["gateway_id"].startswith("sha1:")  # Kannel's %I
    with engine.connect() as conn:
        listed = {n for (n,) in conn.execute(sa.select(optouts.c.number))}
        replies = conn.execute(
            sa.select(
                broadcasts.c.sender_code, messages.c.recipient, broadcasts.c.reply_to_inbound
            ).join(messages, messages.c.broadcast_id == broadcasts.c.id)
        ).all()
    assert listed == ({sender} if keyword == "OPT_OUT" else set())
    # ...and answered once, from the code it was sent to (the send path takes it from here)
    assert [tuple(r) for r in replies] == [(CODE, sender, row["id"])], replies

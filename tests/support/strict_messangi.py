"""A strict Messangi Outbound SMS gateway written from seed 001's text alone, as a web.Application.

Unlike the lenient simulator (``broadcaster/simulator/app.py``) it accepts only what the
seed defines, the way a real gateway built from that document would::

    fake = StrictMessangi(api_key="KEY", codes={"12345"}, blacklist={"+5215500000009"})
    server = await aiohttp_server(fake.app())        # or serve_in_thread(fake.app())
    # base URL for the adapter: server.make_url(BASE_PATH)
    fake.accepted     # every accepted request body, in order
    fake.posted       # every receipt it posted: (url, body, HTTP status or error text)

``POST {BASE_PATH}/messages`` (seed: "HTTP Request : POST / messages", host path ``/raven/v2``)
needs ``Authorization: Bearer <key>`` (401 otherwise) and a JSON object (400 otherwise) with
``from`` (1-6 digits, 7+ digits, or alphanumeric), ``text`` and ``to`` (E.164, "+" optional, up to
15 digits) as strings. The optional fields are type-checked (400 on a wrong type): ``requestDR``
a boolean ("By default is false"), ``connection``, ``email``, ``externalId``, ``clientId``
strings, ``type`` only ``"MT"``, and ``callbacks`` "one or more (separated by comma) webhook
URLs": a string. Fields the seed does not name are ignored (kept in ``ignored``).

The answer is the seed's ``{"meta": {timestamp, transactionId}, "data": {id, from, text, to,
requestDR, type, owner, operator, status: "QUEUE", date, ...}}``. A text over 1,600 characters
is answered with ``data.status`` ``"ERROR"`` and the seed's message "Text exceeds the limit of
allowed segments".

Receipts: only when ``requestDR`` is true ("To notify the status of the message delivery
through a callback, the requestDR must be true"), one JSON POST to each comma-separated URL
with ``{id, from, to, status, date, externalId, clientId}`` (the fields the seed says are
"sent back to you"), status ``DELIVRD``, or the seed's refusal names: ``CODE_NOT_ALLOWED``
when ``from`` is not one of ``codes``, ``BLACKLISTED`` for a number in ``blacklist``,
``INVALID_ROUTING`` for a ``to`` that is not E.164 or is in ``unroutable``. Nothing else is
served: the seed defines no look-up route (a GET on ``/messages`` is 405, as aiohttp answers for
a POST-only route).

Replies (MO): seed 001 sends them elsewhere ("If you desire to receive SMS messages (MO), go to
the Receive SMS section", which it does not include), so :meth:`StrictMessangi.deliver_mo` posts
the Messangi-compatible JSON that issue 13 names, ``{"id", "from", "to", "text", "date"}``, and
nothing more, to the webhook URL an operator would configure for the account.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

BASE_PATH = "/raven/v2"
API_KEY = "strict-messangi-key"
#: Seed: "ensure that your SMS messages do not exceed 1600 characters".
MAX_TEXT_CHARS = 1600
SEGMENTS_ERROR = "Text exceeds the limit of allowed segments"
#: Seed: E.164, "The plus sign prefix of the format is optional", up to 15 digits.
E164 = re.compile(r"^\+?[1-9]\d{1,14}$")
#: Seed: Shortcode 1-6 digits, Longcode 7 digits on, or an alphanumeric shortcode.
SENDER = re.compile(r"^(\d{1,15}|[A-Za-z0-9]{1,11})$")
OPTIONAL_STRINGS = ("connection", "email", "externalId", "clientId")
DEFINED = frozenset({"from", "text", "to", "requestDR", "callbacks", "type", *OPTIONAL_STRINGS})
RECEIPT_TIMEOUT_S = 10.0
#: A receipt's POST: connect and each read bounded, its wait for one of the session's pooled
#: connections not (a burst of thousands of receipts queues there; a total timeout would drop
#: the tail of the burst on a loaded machine, which no receiver could tell from a lost receipt).
RECEIPT_TIMEOUT = aiohttp.ClientTimeout(
    total=None, connect=None, sock_connect=RECEIPT_TIMEOUT_S, sock_read=6 * RECEIPT_TIMEOUT_S
)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class StrictMessangi:
    """State of the strict gateway; ``app()`` serves it."""

    api_key: str = API_KEY
    #: Sender codes assigned to the account; others are CODE_NOT_ALLOWED. None: any code.
    codes: set[str] | None = None
    blacklist: set[str] = field(default_factory=set)
    #: Numbers it cannot route ("INVALID_ROUTING: Phone number is not valid"), beside non-E.164.
    unroutable: set[str] = field(default_factory=set)
    #: Seconds before the receipt is posted.
    dlr_delay_s: float = 0.05
    #: Longest text it sends (the seed's 1,600; tests lower it to meet the refusal).
    max_text_chars: int = MAX_TEXT_CHARS
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    posted: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(0x611B3A42C5F7))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(BASE_PATH + "/messages", self.send)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    def _refuse(self, status: int, explain: str) -> web.Response:
        self.refused.append((status, explain))
        return web.json_response(
            {"meta": {"timestamp": int(time.time() * 1000), "explain": explain}}, status=status
        )

    # -- POST /messages --------------------------------------------------------------------------

    async def send(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._refuse(401, "Unauthorized")
        if request.content_type != "application/json":
            return self._refuse(400, "the payload must be JSON")
        try:
            body = await request.json()
        except ValueError:
            return self._refuse(400, "the payload is not valid JSON")
        if not isinstance(body, dict):
            return self._refuse(400, "the payload must be a JSON object")
        problem = self._check(body)
        if problem:
            return self._refuse(400, problem)
        self.ignored.extend(k for k in body if k not in DEFINED)
        return self._accept(body)

    def _check(self, body: dict[str, Any]) -> str | None:
        """The first way ``body`` breaks the seed's field table, or None."""
        for name in ("from", "text", "to"):
            if not isinstance(body.get(name), str) or not body[name]:
                return f"{name} is required and must be a string"
        if not SENDER.match(body["from"]):
            return "from must be a short code, long code or alphanumeric code"
        if "requestDR" in body and not isinstance(body["requestDR"], bool):
            return "requestDR must be true or false"
        if "callbacks" in body and not isinstance(body["callbacks"], str):
            return "callbacks must be one or more URLs separated by comma"
        if body.get("type", "MT") != "MT":
            return "type must be MT"
        for name in OPTIONAL_STRINGS:
            if name in body and not isinstance(body[name], str):
                return f"{name} must be a string"
        return None

    def _accept(self, body: dict[str, Any]) -> web.Response:
        gateway_id = f"{next(self._ids):x}"
        status = "ERROR" if len(body["text"]) > self.max_text_chars else "QUEUE"
        data: dict[str, Any] = {
            "id": gateway_id,
            "from": body["from"],
            "text": body["text"],
            "to": body["to"],
            "requestDR": body.get("requestDR", False),
            "type": "MT",
            "owner": "owner@example.com",
            "operator": "operator@example.com",
            "status": status,
            "date": _now_iso(),
        }
        for name in ("callbacks", "connection", "email", "externalId", "clientId"):
            if name in body:
                data[name] = body[name]
        meta: dict[str, Any] = {
            "timestamp": int(time.time() * 1000),
            "transactionId": str(uuid.uuid4()),
        }
        if status == "ERROR":
            meta["explain"] = SEGMENTS_ERROR
            data["error"] = SEGMENTS_ERROR
        self.accepted.append(body)
        if status == "QUEUE" and data["requestDR"] and body.get("callbacks"):
            task = asyncio.get_running_loop().create_task(self._report(body, data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response({"meta": meta, "data": data})

    # -- receipts --------------------------------------------------------------------------------

    async def deliver_mo(
        self, url: str, sender: str, to: str, text: str, gid: str | None = None
    ) -> tuple[int, str]:
        """POST one subscriber's reply to ``url``; (HTTP status, body) of the answer."""
        body = {
            "id": gid or f"mo-{uuid.uuid4().hex[:12]}",
            "from": sender,
            "to": to,
            "text": text,
            "date": _now_iso(),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=RECEIPT_TIMEOUT_S)
        async with self._session.post(url, json=body, timeout=timeout) as resp:
            return resp.status, await resp.text()

    def outcome(self, body: dict[str, Any]) -> str:
        """The status word a message's receipt carries."""
        if self.codes is not None and body["from"] not in self.codes:
            return "CODE_NOT_ALLOWED"
        if not E164.match(body["to"]) or "+" + body["to"].lstrip("+") in self.unroutable:
            return "INVALID_ROUTING"
        if body["to"] in self.blacklist or "+" + body["to"].lstrip("+") in self.blacklist:
            return "BLACKLISTED"
        return "DELIVRD"

    async def _report(self, body: dict[str, Any], data: dict[str, Any]) -> None:
        await asyncio.sleep(self.dlr_delay_s)
        receipt = {
            "id": data["id"],
            "from": body["from"],
            "to": body["to"],
            "status": self.outcome(body),
            "date": _now_iso(),
        }
        for name in ("externalId", "clientId"):
            if name in body:
                receipt[name] = body[name]
        if self._session is None:
            self._session = aiohttp.ClientSession()
        for url in (u.strip() for u in body["callbacks"].split(",")):
            if not url:
                continue
            try:
                async with self._session.post(url, json=receipt, timeout=RECEIPT_TIMEOUT) as resp:
                    outcome = str(resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            self.posted.append((url, receipt, outcome))

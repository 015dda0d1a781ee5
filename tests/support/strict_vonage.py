"""A strict KPN Vonage (Nexmo) SMS gateway written from seed 002's text alone, as a web.Application.

``fake_vonage.py`` beside it is the scriptable fake of the adapter's unit tests; this one only
does what the seed says, and refuses what breaks it::

    fake = StrictVonage()
    # adapter: VonageProvider(url(SMS_PATH), CLIENT_ID, CLIENT_SECRET, token_url=url(TOKEN_PATH))
    fake.accepted    # every accepted send body;  fake.refused  # (HTTP status, why)

``POST /oauth/client_credential/accesstoken?grant_type=client_credentials`` takes a form
(``content-type: application/x-www-form-urlencoded``, ``client_id``, ``client_secret``) and
answers the seed's token JSON (``token_type`` "Bearer", ``expires_in`` "3599" as a string);
anything else is 400 (grant type, content type) or 401 (credentials).

``POST /communication/nexmo/sms/send`` needs ``Authorization: Bearer <token>`` (401 otherwise)
and values for ``from``, ``to`` and ``text`` (400 "Bad request" when one is missing or not a
string; ``to`` is the recipient's digits, as the seed's ``"to": "316*****"``). "Other advanced
keys can be filled at will": they are kept, not checked. The answer is the seed's result:
``{"message-count": "1", "messages": [{to, message-id, status: "0", remaining-balance,
message-price, network}]}``.

Seed 002 defines no delivery receipts for sent messages (its only webhook is for inbound SMS),
so this gateway posts none: a message it accepts stays SENT.

Inbound SMS: "Register Webhook endpoint" is ``POST {SMS_PATH}/register`` with ``to`` and
``callback_url`` (form or JSON; 400 without them), answered with the seed's ``{"message": "Your
callback url is registered."}``. :meth:`StrictVonage.deliver_mo` then calls the URL registered
for the number the subscriber wrote to with the inbound webhook's parameters (``msisdn``,
``to``, ``messageId``, ``text``, ``type``, ``keyword``, ``message-timestamp``), as a GET query
string by default or a POSTed form; a number without a registered webhook gets nothing.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

TOKEN_PATH = "/oauth/client_credential/accesstoken"
SMS_PATH = "/communication/nexmo/sms"
CLIENT_ID = "APP_CONSUMER_KEY"
CLIENT_SECRET = "APP_CONSUMER_SECRET"
FORM = "application/x-www-form-urlencoded"
#: Seed: "expires_in": "3599".
EXPIRES_IN_S = 3599
DIGITS = re.compile(r"^\d{6,15}$")
MO_TIMEOUT_S = 10.0


async def _form_or_json(request: web.Request) -> dict[str, Any] | None:
    """The body as a form or a JSON object; None when it is neither."""
    try:
        body: Any = (
            dict(await request.post()) if request.content_type == FORM else await request.json()
        )
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def account(gateway_url: Callable[[str], str]) -> dict[str, str]:
    """A ``BROADCASTER_ACCOUNTS`` entry for this gateway served at ``gateway_url(path)``."""
    return {
        "provider": "vonage",
        "base_url": gateway_url(SMS_PATH),
        "token_url": gateway_url(TOKEN_PATH),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


@dataclass
class StrictVonage:
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    token_requests: int = 0
    _tokens: dict[str, float] = field(default_factory=dict)
    #: Number (digits) -> the callback URL registered for its inbound SMS.
    webhooks: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(130000000001))
    _session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(TOKEN_PATH, self.token)
        app.router.add_post(SMS_PATH + "/send", self.send)
        app.router.add_post(SMS_PATH + "/register", self.register)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def register(self, request: web.Request) -> web.Response:
        body = await _form_or_json(request)
        if body is None:
            return self._refuse(400, "Bad request")
        to, url = body.get("to"), body.get("callback_url")
        if not isinstance(to, str) or not isinstance(url, str) or not DIGITS.match(to) or not url:
            return self._refuse(400, "Bad request: to and callback_url")
        self.webhooks[to] = url
        return web.json_response({"message": "Your callback url is registered."})

    async def deliver_mo(
        self, msisdn: str, to: str, text: str, message_id: str | None = None, method: str = "GET"
    ) -> tuple[int, str]:
        """The subscriber ``msisdn`` writes ``text`` to ``to``; (HTTP status, body) answered."""
        url = self.webhooks.get(to)
        if url is None:
            raise LookupError(f"no webhook registered for {to}")
        params = {
            "msisdn": msisdn.lstrip("+"),
            "to": to,
            "messageId": message_id or str(next(self._ids)),
            "text": text,
            "type": "text",
            "keyword": (text.split() or [""])[0].upper(),
            "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=MO_TIMEOUT_S)
        if method == "GET":
            call = self._session.get(url, params=params, timeout=timeout)
        else:
            call = self._session.post(url, data=params, timeout=timeout)
        async with call as resp:
            return resp.status, await resp.text()

    def _refuse(self, status: int, why: str) -> web.Response:
        self.refused.append((status, why))
        return web.json_response({"message": why}, status=status)

    async def token(self, request: web.Request) -> web.Response:
        if request.query.get("grant_type") != "client_credentials":
            return self._refuse(400, "grant_type must be client_credentials")
        if request.content_type != FORM:
            return self._refuse(400, f"content-type must be {FORM}")
        form = await request.post()
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return self._refuse(401, "Unauthorized")
        self.token_requests += 1
        value = f"haf2SDl07E9N7RluNQ4kJ{self.token_requests}"
        self._tokens[value] = time.monotonic() + EXPIRES_IN_S
        return web.json_response(
            {
                "refresh_token_expires_in": "0",
                "api_product_list": "[nexmo-sms]",
                "api_product_list_json": ["nexmo-sms"],
                "organization_name": "kpn",
                "developer_email": "demo123@kpn.com",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "client_id": self.client_id,
                "access_token": value,
                "application_name": "6e38edxxxxxxxxxxxxxxxx4065d79c",
                "scope": "",
                "expires_in": str(EXPIRES_IN_S),
                "refresh_count": "0",
                "status": "approved",
            }
        )

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        expiry = self._tokens.get(value)
        return scheme == "Bearer" and expiry is not None and time.monotonic() < expiry

    async def send(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse(401, "Unauthorized")
        body = await _form_or_json(request)
        if body is None:
            return self._refuse(400, "Bad request")
        for key in ("from", "to", "text"):
            if not isinstance(body.get(key), str) or not body[key]:
                return self._refuse(400, f"Bad request: {key}")
        if not DIGITS.match(body["to"]):
            return self._refuse(400, "Bad request: to")
        self.accepted.append(body)
        return web.json_response(
            {
                "message-count": "1",
                "messages": [
                    {
                        "to": body["to"],
                        "message-id": str(next(self._ids)),
                        "status": "0",
                        "remaining-balance": "15.53590000",
                        "message-price": "0.03330000",
                        "network": "20408",
                    }
                ],
            }
        )

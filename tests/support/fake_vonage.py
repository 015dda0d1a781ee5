"""A fake of KPN's Vonage (Nexmo) SMS API, built from the shapes in seed 002, as a web.Application.

::

    fake = FakeVonage(expires_in_s=3599)
    server = await aiohttp_server(fake.app())
    provider = VonageProvider(str(server.make_url(SMS_PATH)), CLIENT_ID, CLIENT_SECRET,
                              token_url=str(server.make_url(TOKEN_PATH)))
    fake.script = ["429", "throttled", "ok"]      # one action per send request, then "ok"
    fake.sends      # every accepted body;  fake.token_requests  # how many tokens were issued

Endpoints: ``POST /oauth/client_credential/accesstoken?grant_type=client_credentials`` (form
``client_id, client_secret``) answers the seed's token JSON (``expires_in`` a string); ``POST
/communication/nexmo/sms/send`` with a Bearer token answers ``{"message-count", "messages":
[{"to", "message-id", "status", …}]}``, one entry per SMS part. An unknown or expired token
gets 401 with an Apigee-style fault body.

Script actions: ``ok``; ``429`` (HTTP 429, Retry-After 0.05 s); ``500``; ``throttled`` (status
"1"); ``status:N`` (that Nexmo status code in the body); ``revoke`` (every token is revoked,
this request answers 401); ``hang`` (never answers in time, but the message *is* accepted);
``partial`` (first part accepted, the rest throttled); ``garbage`` (2xx that is not JSON, the
message accepted).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from broadcaster.domain.segments import measure

TOKEN_PATH = "/oauth/client_credential/accesstoken"
SMS_PATH = "/communication/nexmo/sms"
CLIENT_ID = "APP_CONSUMER_KEY"
CLIENT_SECRET = "APP_CONSUMER_SECRET"

ERROR_TEXT = {
    "1": "Throughput Rate Exceeded - please wait [ 10 ] and retry",
    "2": "Missing to param",
    "3": "Invalid to param",
    "4": "Bad Credentials",
    "5": "Internal Error",
    "6": "Unroutable message - rejected",
    "7": "Number barred",
    "9": "Quota Exceeded - rejected",
}


@dataclass
class FakeVonage:
    """State and behaviour of the fake; ``app()`` serves it."""

    expires_in_s: float = 3599
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    #: Actions for the coming send requests, consumed one per request.
    script: list[str] = field(default_factory=list)
    hang_s: float = 2.0
    #: Bodies of the messages it accepted (``hang`` and ``garbage`` included).
    sends: list[dict[str, Any]] = field(default_factory=list)
    #: Every send request, accepted or not.
    requests: int = 0
    token_requests: int = 0
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(130000000001))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(TOKEN_PATH, self.token)
        app.router.add_post(SMS_PATH + "/send", self.send)
        return app

    # -- OAuth2 ----------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if request.query.get("grant_type") != "client_credentials":
            return web.json_response(
                {"ErrorCode": "invalid_request", "Error": "Unsupported grant type"}, status=400
            )
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return web.json_response(
                {"ErrorCode": "invalid_client", "Error": "ClientId is Invalid"}, status=401
            )
        self.token_requests += 1
        value = f"tok{self.token_requests}xN7RluNQ4kJ1TkGgso"
        self._tokens[value] = time.monotonic() + self.expires_in_s
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
                "application_name": "6e38ed-broadcaster",
                "scope": "",
                "expires_in": str(self.expires_in_s),
                "refresh_count": "0",
                "status": "approved",
            }
        )

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        expiry = self._tokens.get(header[len("Bearer ") :])
        return expiry is not None and time.monotonic() < expiry

    # -- SMS -------------------------------------------------------------------------------------

    async def send(self, request: web.Request) -> web.Response:
        self.requests += 1
        action = self.script.pop(0) if self.script else "ok"
        if action == "revoke":
            self._tokens.clear()
        if not self._authorized(request):
            return web.json_response(
                {
                    "fault": {
                        "faultstring": "Invalid Access Token",
                        "detail": {"errorcode": "keymanagement.service.invalid_access_token"},
                    }
                },
                status=401,
            )
        if action == "429":
            return web.json_response(
                {"message": "Too many requests"}, status=429, headers={"Retry-After": "0.05"}
            )
        if action == "500":
            return web.json_response({"message": "Internal server error"}, status=500)
        body = await request.json()
        missing = [k for k in ("from", "to", "text") if not body.get(k)]
        if missing:
            return self._answer(body, ["2"], f"Missing {missing[0]} param")
        if action == "throttled":
            return self._answer(body, ["1"])
        if action.startswith("status:"):
            return self._answer(body, [action.split(":", 1)[1]])
        parts = measure(body["text"]).segments
        if action == "partial":
            self.sends.append(body)
            return self._answer(body, ["0"] + ["1"] * (parts - 1))
        self.sends.append(body)
        if action == "hang":
            await asyncio.sleep(self.hang_s)
        if action == "garbage":
            return web.Response(text="<html>OK</html>", content_type="text/html")
        return self._answer(body, ["0"] * parts)

    def _answer(
        self, body: dict[str, Any], statuses: list[str], text: str | None = None
    ) -> web.Response:
        messages = []
        for status in statuses:
            entry: dict[str, Any] = {"to": str(body.get("to", "")), "status": status}
            if status == "0":
                entry.update(
                    {
                        "message-id": str(next(self._ids)),
                        "remaining-balance": "15.53590000",
                        "message-price": "0.03330000",
                        "network": "20408",
                    }
                )
            else:
                entry["error-text"] = text or ERROR_TEXT.get(status, "Error")
            messages.append(entry)
        return web.json_response({"message-count": str(len(messages)), "messages": messages})

    # -- webhooks Vonage would send us -----------------------------------------------------------

    @staticmethod
    def receipt(
        body: dict[str, Any], message_id: str, status: str = "delivered", err_code: str = "0"
    ) -> dict[str, str]:
        """The delivery receipt webhook Vonage posts for an accepted message."""
        return {
            "msisdn": str(body["to"]),
            "to": str(body["from"]),
            "network-code": "20408",
            "messageId": message_id,
            "price": "0.03330000",
            "status": status,
            "scts": "2001011400",
            "err-code": err_code,
            "api-key": "abcd1234",
            "client-ref": str(body.get("client-ref", "")),
            "message-timestamp": "2020-01-01 14:00:00",
        }

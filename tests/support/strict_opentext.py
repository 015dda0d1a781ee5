"""A strict OpenText Notifications SMS gateway written from seed 000's text alone.

``fake_opentext.py`` beside it is the scriptable fake of the adapter's unit tests; this one only
does what the seed shows, and refuses what breaks it::

    fake = StrictOpenText()
    # adapter: OpenTextProvider(url(""), USERNAME, PASSWORD)
    fake.jobs        # job id → the submitted body;  fake.refused  # (HTTP status, why)

``POST /mra/v1/outbound/sms``: HTTP Basic authentication (401 otherwise), "pure JSON request
body" (400 otherwise) with ``destinations`` (a non-empty list of ``{"sms": digits, "ref"}``)
and ``sms_text`` (a non-empty string); ``options`` (``billing_code``, ``customer_reference``)
and ``reports`` (``delivery_report``) must be objects when given. The answer is the job id,
``{"job_id": "xsi2-…"}`` as the status document names it.

``GET /mra/v1/outbound/sms/status/?job_id=`` answers the seed's document: ``job_state``
["Complete", "Posted"], and per destination ``ref_base64``, ``sms``, a ``delivery_attempts``
entry "Sent" and an ``sms_delivery_events`` entry "Confirmed". No job id: 400; unknown: 404.
This API pushes nothing (the seed's delivery report goes by email): receipts are read by
polling the status.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

USERNAME = "xsi-user"
PASSWORD = "xsi-pass"
SUBMIT_PATH = "/mra/v1/outbound/sms"
STATUS_PATH = "/mra/v1/outbound/sms/status/"
STAMP = "2023-08-21T10:26:00.000Z"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@dataclass
class StrictOpenText:
    username: str = USERNAME
    password: str = PASSWORD
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: list[tuple[int, str]] = field(default_factory=list)
    status_requests: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(44417320))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(SUBMIT_PATH, self.submit)
        app.router.add_get(STATUS_PATH, self.status)
        return app

    def _refuse(self, status: int, why: str) -> web.Response:
        self.refused.append((status, why))
        return web.json_response({"error": why}, status=status)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            return False
        return scheme == "Basic" and (login, password) == (self.username, self.password)

    async def submit(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse(401, "Unauthorized")
        if request.content_type != "application/json":
            return self._refuse(400, "the request body must be JSON")
        try:
            body = await request.json()
        except ValueError:
            return self._refuse(400, "the request body is not valid JSON")
        problem = self._check(body)
        if problem:
            return self._refuse(400, problem)
        job_id = f"xsi2-{next(self._ids)}"
        self.jobs[job_id] = body
        return web.json_response({"job_id": job_id})

    @staticmethod
    def _check(body: Any) -> str | None:
        if not isinstance(body, dict):
            return "the request body must be a JSON object"
        if not isinstance(body.get("sms_text"), str) or not body["sms_text"]:
            return "sms_text is required"
        destinations = body.get("destinations")
        if not isinstance(destinations, list) or not destinations:
            return "destinations is required"
        for i, d in enumerate(destinations):
            if not isinstance(d, dict) or not str(d.get("sms", "")).isdigit():
                return f"destinations[{i}].sms must be the number's digits"
            if "ref" in d and not isinstance(d["ref"], str):
                return f"destinations[{i}].ref must be a string"
        for name in ("options", "reports"):
            if name in body and not isinstance(body[name], dict):
                return f"{name} must be an object"
        return None

    async def status(self, request: web.Request) -> web.Response:
        self.status_requests += 1
        if not self._authorized(request):
            return self._refuse(401, "Unauthorized")
        job_id = request.query.get("job_id")
        if not job_id:
            return self._refuse(400, "job_id is required")
        body = self.jobs.get(job_id)
        if body is None:
            return self._refuse(404, f"job {job_id} not found")
        options = body.get("options") or {}
        return web.json_response(
            {
                "job_id": job_id,
                "billing_code_base64": _b64(str(options.get("billing_code", ""))),
                "customer_reference_base64": _b64(str(options.get("customer_reference", ""))),
                "entry_time": "2023-08-21T09:25:26.000Z",
                "job_state": ["Complete", "Posted"],
                "deliveries": [
                    {
                        "ref_base64": _b64(str(d.get("ref", ""))),
                        "sms": d["sms"],
                        "delivery_attempts": [
                            {"state": "Sent", "first_attempt": "2023-08-21T10:25:26.000Z"}
                        ],
                        "events": {
                            "sms_delivery_events": [{"event_time": STAMP, "status": "Confirmed"}]
                        },
                    }
                    for d in body["destinations"]
                ],
            }
        )

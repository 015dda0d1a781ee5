"""A fake of the OpenText Notifications SMS REST API, built from seed 000, as a web.Application.

::

    fake = FakeOpenText()
    server = await aiohttp_server(fake.app())
    provider = OpenTextProvider(str(server.make_url("")), USERNAME, PASSWORD)
    fake.script = ["429", "ok"]            # one action per submit, then "ok"
    fake.jobs["xsi-1000001"].destinations  # what a job was sent to

``POST /mra/v1/outbound/sms`` (Basic auth, JSON ``destinations, sms_text, options``) answers
``{"job_id": "xsi-…"}``; a destination whose number is not digits makes the whole job a 400.
``GET /mra/v1/outbound/sms/status/?job_id=`` answers the seed's status document; each call moves
the job one page on::

    page 0  job_state ["Submitted"]          deliveries without attempts
    page 1  job_state ["Processing"]         attempts [{"state": "Submitted"}]
    page 2  job_state ["Complete","Posted"]  attempt "Sent" + event "Confirmed" (delivered), or,
                                             for numbers ending in ``FAIL_SUFFIX``, attempt
                                             "Error" (gamma_code 5000) and event "Failed"

Submit script actions: ``ok``, ``429`` (Retry-After 0.05 s), ``500``, ``503``, ``hang`` (the job
*is* created, the answer comes too late), ``garbage`` (job created, 2xx without JSON).
``status_script`` does the same for status requests (``ok``, ``429``, ``500``).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

USERNAME = "xsi-user"
PASSWORD = "xsi-pass"
#: Destinations whose number ends so fail on the last page.
FAIL_SUFFIX = "13"


@dataclass
class Job:
    job_id: str
    destinations: list[dict[str, Any]]
    sms_text: str
    options: dict[str, Any]
    submit_id: str | None
    page: int = 0


@dataclass
class FakeOpenText:
    username: str = USERNAME
    password: str = PASSWORD
    script: list[str] = field(default_factory=list)
    status_script: list[str] = field(default_factory=list)
    hang_s: float = 2.0
    jobs: dict[str, Job] = field(default_factory=dict)
    submits: int = 0
    status_requests: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000001))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/mra/v1/outbound/sms", self.submit)
        app.router.add_get("/mra/v1/outbound/sms/status/", self.status)
        return app

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            return False
        return scheme == "Basic" and (login, password) == (self.username, self.password)

    @staticmethod
    def _unauthorized() -> web.Response:
        return web.json_response(
            {"error": "Unauthorized", "message": "Bad credentials"}, status=401
        )

    # -- submit ----------------------------------------------------------------------------------

    async def submit(self, request: web.Request) -> web.Response:
        self.submits += 1
        if not self._authorized(request):
            return self._unauthorized()
        action = self.script.pop(0) if self.script else "ok"
        if action == "429":
            return web.json_response(
                {"error": "Too Many Requests"}, status=429, headers={"Retry-After": "0.05"}
            )
        if action in ("500", "503"):
            return web.json_response({"error": "Server Error"}, status=int(action))
        body = await request.json()
        destinations = body.get("destinations") or []
        errors = [
            f"destinations[{i}].sms invalid"
            for i, d in enumerate(destinations)
            if not str(d.get("sms", "")).isdigit()
        ]
        if not destinations or not body.get("sms_text"):
            errors.append("destinations and sms_text are required")
        if errors:
            return web.json_response({"errors": errors}, status=400)
        job = Job(
            f"xsi-{next(self._ids)}",
            destinations,
            body["sms_text"],
            body.get("options", {}),
            request.headers.get("X-MRA-SubmitId"),
        )
        self.jobs[job.job_id] = job
        if action == "hang":
            await asyncio.sleep(self.hang_s)
        if action == "garbage":
            return web.Response(text="Accepted", content_type="text/plain")
        return web.json_response({"job_id": job.job_id})

    # -- status ----------------------------------------------------------------------------------

    async def status(self, request: web.Request) -> web.Response:
        self.status_requests += 1
        if not self._authorized(request):
            return self._unauthorized()
        action = self.status_script.pop(0) if self.status_script else "ok"
        if action in ("429", "500"):
            return web.json_response(
                {"error": action},
                status=int(action),
                headers={"Retry-After": "0.05"} if action == "429" else {},
            )
        job_id = request.query.get("job_id")
        if not job_id:
            return web.json_response({"error": "job_id is required"}, status=400)
        job = self.jobs.get(job_id)
        if job is None:
            return web.json_response({"error": f"job {job_id} not found"}, status=404)
        document = self.document(job)
        job.page = min(job.page + 1, 2)
        return web.json_response(document)

    def document(self, job: Job) -> dict[str, Any]:
        """The status answer of ``job`` at its current page."""
        state = [["Submitted"], ["Processing"], ["Complete", "Posted"]][job.page]
        options = job.options
        return {
            "job_id": job.job_id,
            "billing_code_base64": _b64(options.get("billing_code", "")),
            "customer_reference_base64": _b64(options.get("customer_reference", "")),
            "entry_time": "2023-08-21T09:25:26.000Z",
            "job_state": state,
            "deliveries": [self._delivery(d, job.page) for d in job.destinations],
        }

    @staticmethod
    def _delivery(destination: dict[str, Any], page: int) -> dict[str, Any]:
        delivery: dict[str, Any] = {
            "ref_base64": _b64(str(destination.get("ref", ""))),
            "sms": destination["sms"],
        }
        if page == 0:
            return delivery
        if page == 1:
            delivery["delivery_attempts"] = [
                {"state": "Submitted", "first_attempt": "2023-08-21T10:25:26.000Z"}
            ]
            return delivery
        if str(destination["sms"]).endswith(FAIL_SUFFIX):
            delivery["delivery_attempts"] = [
                {"state": "Error", "gamma_code": 5000, "first_attempt": "2023-08-21T10:25:26.000Z"}
            ]
            delivery["events"] = {
                "sms_delivery_events": [
                    {"event_time": "2023-08-21T10:26:00.000Z", "status": "Failed"}
                ]
            }
        else:
            delivery["delivery_attempts"] = [
                {"state": "Sent", "first_attempt": "2023-08-21T10:25:26.000Z"}
            ]
            delivery["events"] = {
                "sms_delivery_events": [
                    {"event_time": "2023-08-21T10:26:00.000Z", "status": "Confirmed"}
                ]
            }
        return delivery


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")

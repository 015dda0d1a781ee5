"""Errors as RFC 9457 problem documents (``application/problem+json``).

Every error the API answers is one JSON object::

    {"type": "urn:broadcaster:problem:invalid-input", "title": "Invalid input", "status": 422,
     "detail": "from: must be a string", "field": "from"}

``field`` names the input at fault (a body member, query parameter, header or multipart part);
``messageStatus`` carries the seeds' refusal status (``INVALID_ROUTING``, ``CODE_NOT_ALLOWED``,
``SEGMENTS_EXCEEDED``) where one applies; uploads add ``file`` and ``line``.

The middleware here turns our exceptions (:class:`Problem`, the service layer's
:mod:`broadcaster.errors`, aiohttp's HTTP exceptions) into such documents and counts every
request for Prometheus.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from broadcaster import metrics
from broadcaster.errors import Conflict, FileRejected, InputError, InvalidTransition, NotFound
from broadcaster.logsafe import printable
from broadcaster.outages import unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:broadcaster:problem:"

#: Seed statuses an InputError may start with, and the input each one is about.
_REFUSALS = {"INVALID_ROUTING": "to", "CODE_NOT_ALLOWED": "from", "SEGMENTS_EXCEEDED": "text"}

#: Service-layer messages that start so are about this input (netguard, domain/schedule).
_FIELD_OF_PREFIX = {"callback URL": "callbacks", "start time": "startDate"}

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    503: "Unavailable",
}
SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "invalid-transition",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "rate-limited",
    500: "internal",
    503: "unavailable",
}


class Problem(Exception):
    """An error answer: HTTP status, what went wrong, and which input is at fault."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.field = status, detail, field
        self.slug = slug or SLUGS.get(status, "error")
        self.headers = headers or {}
        self.extra = extra

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": TYPE_PREFIX + self.slug,
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
        }
        if self.field is not None:
            doc["field"] = self.field
        doc.update(self.extra)
        return doc

    def response(self) -> web.Response:
        return web.json_response(
            self.document(), status=self.status, headers=self.headers, content_type=PROBLEM_JSON
        )


def bad_request(detail: str, field: str | None = None) -> Problem:
    return Problem(400, detail, field=field)


def invalid(detail: str, field: str | None = None, **extra: Any) -> Problem:
    return Problem(422, detail, field=field, **extra)


def from_input_error(exc: InputError, field: str | None = None) -> Problem:
    """422 for bad input from the service layer; seed refusals keep their status name."""
    if isinstance(exc, FileRejected):
        extra: dict[str, Any] = {"file": exc.path}
        if exc.line is not None:
            extra["line"] = exc.line
        return Problem(422, str(exc), field=field or "file", slug="file-rejected", **extra)
    text = str(exc)
    for prefix, name in _FIELD_OF_PREFIX.items():
        if field is None and text.startswith(prefix):
            field = name
    for status, at in _REFUSALS.items():
        if text.startswith(status):
            return Problem(
                422, text, field=at, slug=status.lower().replace("_", "-"), messageStatus=status
            )
    return Problem(422, text, field=field)


#: Seconds a client is told to wait (Retry-After) while the database or Redis is unreachable.
UNAVAILABLE_RETRY_AFTER_S = 5


def to_problem(exc: BaseException) -> Problem | None:
    """The problem an exception stands for; None for an unexpected one (a 500)."""
    if isinstance(exc, Problem):
        return exc
    down = unavailable(exc)
    if down is not None:  # a restart of PostgreSQL or Redis: the next request may well succeed
        log.warning("%s unavailable: %s", down, exc.__class__.__name__)
        return Problem(
            503,
            f"the {down} is unavailable; try again shortly",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )
    if isinstance(exc, NotFound):
        return Problem(404, str(exc))
    if isinstance(exc, InvalidTransition):
        return Problem(409, str(exc), current=exc.current, action=exc.action)
    if isinstance(exc, Conflict):
        return Problem(409, str(exc), slug="conflict")
    if isinstance(exc, InputError):
        return from_input_error(exc)
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return Problem(exc.status, detail, headers=headers)
    return None


def _route_name(request: web.Request) -> str:
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Outermost: every error becomes a problem document; every request is counted."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if isinstance(exc, web.HTTPException) and exc.status < 400:
            status = exc.status
            raise
        problem = to_problem(exc)
        if problem is None:
            log.exception(
                "unhandled error on %s %s", printable(request.method), printable(request.path)
            )
            problem = Problem(500, "the server failed on this request; it is logged")
        status = problem.status
        return problem.response()
    finally:
        metrics.record_http(
            request.method, _route_name(request), status, time.perf_counter() - started
        )

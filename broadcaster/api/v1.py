"""Wiring of the v1 API: middlewares, shared state, routes, ``/metrics`` and ``/openapi.json``.

``create_app`` calls :func:`setup`; everything the v1 API needs hangs off the application here.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from broadcaster import metrics
from broadcaster.api import (
    apikeys,
    broadcasts,
    codes,
    contacts,
    dry_run,
    inbound,
    lists,
    messages,
    openapi,
    resend,
)
from broadcaster.api.auth import auth_middleware
from broadcaster.api.bodies import url_middleware
from broadcaster.api.body_gate import GATE_KEY, BodyGate, body_gate_middleware
from broadcaster.api.context import CTX
from broadcaster.api.limits import ApiLimits
from broadcaster.api.problems import Problem, problem_middleware
from broadcaster.api.ratelimit import KeyBuckets
from broadcaster.api.signatures import NonceStore, nonce_store
from broadcaster.api.state import STATE_KEY, ApiState, blocking, principal, state
from broadcaster.services import queries
from broadcaster.services.nonces import NonceLedger

#: Threads that parse big JSON bodies; more big bodies at once wait their turn.
PARSE_THREADS = 2
MIDDLEWARES = (problem_middleware, body_gate_middleware, url_middleware, auth_middleware)


async def get_metrics(request: web.Request) -> web.Response:
    key, limits = principal(request), state(request).limits
    if key.workspace != limits.metrics_workspace:
        raise Problem(
            403,
            f"metrics span every workspace: use a key of workspace {limits.metrics_workspace!r}",
        )
    depth = await blocking(request, queries.queue_depth, request.app[CTX].engine)
    metrics.set_queue_depth(depth)
    body = await blocking(request, metrics.render)
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi.document(state(request).limits))


def setup(
    app: web.Application,
    limits: ApiLimits,
    *,
    nonces: NonceStore | None = None,
    wall_clock: object = time.time,
) -> ApiState:
    """Attach the v1 API to ``app`` (whose middlewares must include :data:`MIDDLEWARES`)."""
    db_pool = ThreadPoolExecutor(limits.db_threads, thread_name_prefix="api-db")
    st = ApiState(
        limits=limits,
        buckets=KeyBuckets(rate_per_s=limits.rate_per_s, burst=limits.rate_burst),
        workspace_buckets=KeyBuckets(
            rate_per_s=limits.workspace_rate_per_s, burst=limits.workspace_rate_burst
        ),
        nonces=nonces or nonce_store(NonceLedger(app[CTX].engine), db_pool),
        db_pool=db_pool,
        report_pool=ThreadPoolExecutor(limits.report_threads, thread_name_prefix="api-report"),
        parse_pool=ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="api-parse"),
        wall_clock=wall_clock,  # type: ignore[arg-type]
    )
    app[STATE_KEY] = st
    app[GATE_KEY] = BodyGate(
        limits.big_bodies, limits.big_bodies_per_workspace, limits.big_body_wait_s
    )
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/openapi.json", get_openapi)
    messages.add_routes(app)
    broadcasts.add_routes(app)
    resend.add_routes(app)
    dry_run.add_routes(app)
    apikeys.add_routes(app)
    codes.add_routes(app)
    inbound.add_routes(app)
    contacts.add_routes(app)
    lists.add_routes(app)

    async def close(_: web.Application) -> None:
        await st.close()

    app.on_cleanup.append(close)
    return st

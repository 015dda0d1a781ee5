"""The HTTP API application (aiohttp.web): receipts, health, and the v1 API."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from broadcaster import wiring
from broadcaster.api.context import CTX, ApiContext
from broadcaster.api.limits import ApiLimits
from broadcaster.api.signatures import NonceStore
from broadcaster.config import Settings
from broadcaster.services.dispatch import TaskQueue
from broadcaster.store.db import upgrade


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(
    settings: Settings,
    *,
    migrate: bool = True,
    queue: TaskQueue | None = None,
    extra: Callable[[web.Application], None] | None = None,
    limits: ApiLimits | None = None,
    nonces: NonceStore | None = None,
) -> web.Application:
    """The API: receipts, health, and the v1 routes behind keys (``broadcaster/api/v1.py``).

    ``limits`` defaults to :meth:`ApiLimits.from_settings`; ``nonces`` (signed requests) to the
    database (``broadcaster/services/nonces.py``), whether Redis is set or not.
    """
    from broadcaster.api import dashboard, receipts, seed003, seed004, uploads, v1

    if migrate:
        upgrade(settings.database_url)
    app = web.Application(client_max_size=settings.max_file_bytes, middlewares=v1.MIDDLEWARES)
    ctx = ApiContext(
        settings=settings,
        engine=wiring.engine(settings),
        providers=wiring.ProviderCache(settings),
        queue=queue,
    )
    app[CTX] = ctx
    app.router.add_get("/healthz", healthz)
    receipts.add_routes(app)
    dashboard.add_routes(app)
    limits = limits or ApiLimits.from_settings(settings)
    v1.setup(app, limits, nonces=nonces)
    uploads.setup_uploads(app, limits)
    seed004.add_routes(app)  # seed 004's /rest/api/... beside /v1 (docs/seed-api.md)
    seed003.add_routes(app)  # seed 003's /api/rest/... (docs/contacts.md)
    if extra:
        extra(app)

    async def close_providers(_: web.Application) -> None:
        await ctx.providers.close()

    app.on_cleanup.append(close_providers)
    return app


def run_api(
    settings: Settings, queue: TaskQueue, host: str = "127.0.0.1", port: int = 8080
) -> None:
    """Serve until interrupted. The port is bound first: a busy one raises ``PortBusy`` before
    any work; once serving, one line says where. ``queue`` is the caller's (the CLI hands it
    Celery's): the API never imports the workers."""
    from broadcaster import listen

    sock = listen.bind(host, port)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    where = listen.url(host, port)
    web.run_app(
        create_app(settings, queue=queue),
        sock=sock,
        print=lambda _: print(f"broadcaster API listening on {where}", flush=True),
    )

"""The simulator's replies: it delivers MO messages to broadcaster's inbound webhook.

- ``POST /_sim/mo`` ``{"from", "to", "text"[, "id", "url"]}`` delivers one MO now, in the
  Messangi-compatible format (``{"id", "from", "to", "text", "date"}``), to ``url`` or the
  configured ``inbound_url``; it answers with broadcaster's status and body.
- ``GET|POST /_sim/mo/config`` ``{"inbound_url", "share_stop", "stop_delay_s", "stop_text"}``:
  with ``share_stop`` > 0 that share of the recipients of accepted messages answer
  ``stop_text`` ``stop_delay_s`` after their message (each number at most once, and never one
  that wrote through ``POST /_sim/mo``), so demos and tests see the whole loop: STOP,
  confirmation, suppression.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

#: How long one MO delivery may take.
DELIVERY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class MoConfig:
    #: broadcaster's ``/v1/inbound/<route>?secret=…``; None: auto-replies off.
    inbound_url: str | None = None
    #: Share of recipients (0..1) that answer ``stop_text``.
    share_stop: float = 0.0
    stop_delay_s: float = 1.0
    stop_text: str = "STOP"


@dataclass
class MoState:
    config: MoConfig = field(default_factory=MoConfig)
    session: aiohttp.ClientSession | None = None
    answered: set[str] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)
    delivered: int = 0


MO = web.AppKey("simulator_mo", MoState)


def _body(sender: str, to: str, text: str, gid: str | None) -> dict[str, Any]:
    return {
        "id": gid or f"mo-{uuid.uuid4().hex[:16]}",
        "from": sender,
        "to": to,
        "text": text,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }


async def deliver(state: MoState, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST one MO; (HTTP status, JSON or text answer)."""
    assert state.session is not None
    timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S)
    async with state.session.post(url, json=body, timeout=timeout) as resp:
        state.delivered += 1
        try:
            return resp.status, await resp.json(content_type=None)
        except ValueError:
            return resp.status, await resp.text()


async def post_mo(request: web.Request) -> web.Response:
    state = request.app[MO]
    try:
        req = await request.json()
        sender, to, text = str(req["from"]), str(req["to"]), str(req["text"])
    except (ValueError, KeyError, TypeError):
        raise web.HTTPBadRequest(text='body: {"from", "to", "text"[, "id", "url"]}') from None
    url = req.get("url") or state.config.inbound_url
    if not url:
        raise web.HTTPBadRequest(
            text="no url given and no inbound_url configured (/_sim/mo/config)"
        )
    body = _body(sender, to, text, req.get("id"))
    # a subscriber who wrote already answers no confirmation of it with a random STOP: the
    # demo's ARRÊT, START and HELP get their one reply each, not a STOP on top
    state.answered.add(sender)
    try:
        status, answer = await deliver(state, str(url), body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise web.HTTPBadGateway(text=f"inbound URL did not answer: {exc}") from None
    return web.json_response({"sent": body, "status": status, "answer": answer})


async def mo_config(request: web.Request) -> web.Response:
    state = request.app[MO]
    if request.method == "POST":
        changes = await request.json()
        known = set(asdict(state.config))
        if not isinstance(changes, dict) or set(changes) - known:
            raise web.HTTPBadRequest(text=f"keys: {', '.join(sorted(known))}")
        state.config = replace(state.config, **changes)
    return web.json_response(asdict(state.config))


def after_accept(app: web.Application, sender: str, recipient: str) -> None:
    """Called for each accepted message: maybe schedule the recipient's STOP."""
    state = app.get(MO)
    cfg = state.config if state else None
    if state is None or cfg is None or not cfg.inbound_url or cfg.share_stop <= 0:
        return
    if recipient in state.answered or state.rng.random() >= cfg.share_stop:
        return
    state.answered.add(recipient)
    body = _body(recipient, sender, cfg.stop_text, None)

    async def later() -> None:
        await asyncio.sleep(cfg.stop_delay_s)
        try:
            await deliver(state, str(cfg.inbound_url), body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("simulated STOP from %s not delivered: %s", recipient, exc)

    task = asyncio.get_running_loop().create_task(later())
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


def setup(app: web.Application) -> None:
    """Add the MO routes and their HTTP session to the simulator's application."""
    state = MoState()
    app[MO] = state

    async def session(_: web.Application) -> AsyncIterator[None]:
        state.session = aiohttp.ClientSession()
        yield
        for task in list(state.tasks):
            task.cancel()
        await state.session.close()

    app.cleanup_ctx.append(session)
    app.router.add_post("/_sim/mo", post_mo)
    app.router.add_route("*", "/_sim/mo/config", mo_config)

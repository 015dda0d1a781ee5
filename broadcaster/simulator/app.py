"""The carrier simulator: a Messangi-compatible gateway with faults on demand.

It is the default gateway of an embedded install and the opponent of every integration test.
Public API (under ``""``, ``/v1`` and ``/raven/v2``, so any base URL of ours works)::

    POST /messages                   Bearer auth (401), validation (400); answers {meta, data}
    GET  /messages?externalId=ID     {"data": [{id, externalId, status, from, to, date}, …]}
    GET  /messages/{id}              {"data": {…}} or 404

Control and measurement (no auth; a test tool)::

    GET  /_sim/config                POST /_sim/config  {field: value, …} -> the whole config
    GET  /_sim/stats                 {accepted_total, posts_total, lookups_total, by_status_code,
                                      faults, duplicates, accepted_by_sender, receipts_sent,
                                      receipts_failed, receipts_pending}
    GET  /_sim/stats/external/{externalId}   {"externalId", "count"}
    GET  /_sim/stats/rate?from=CODE  {"from", "per_second": [[epoch_second, count], …]}
    GET  /_sim/stats/accepted?from=CODE  {"from", "accepted", "first_ms", "last_ms",
                                      "accepted_ms": [epoch_ms, …]}: every acceptance of that
                                      sender code, oldest first (first_ms/last_ms null if none),
                                      for rates measured to the millisecond
    GET  /_sim/messages?externalId=  the public look-up, without auth
    POST /_sim/reset                 forget messages, counters and pending receipts

Run it: ``python -m broadcaster.simulator --port 8025 --share-429 0.05``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from broadcaster import listen
from broadcaster.simulator import mo as simulator_mo
from broadcaster.simulator.config import STARTUP_ONLY, Dice, SimulatorConfig
from broadcaster.simulator.receipts import ReceiptDispatcher, now_ms
from broadcaster.simulator.store import Counters, MessageStore, iso_ms

log = logging.getLogger(__name__)

#: Path prefixes the public API answers under (our default base URL ends in /v1).
API_PREFIXES = ("", "/v1", "/raven/v2")
#: E.164: optional '+', 1–15 digits, no leading zero.
E164 = re.compile(r"\+?[1-9][0-9]{0,14}")
#: ``GET /messages`` without a filter lists at most this many recent messages.
LIST_LIMIT = 100
#: The status a dropped connection is counted under (nobody receives it).
DROPPED = 499


class Simulator:
    """The state of one simulated gateway: config, dice, store, counters, receipts."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.dice = Dice(config)
        self.store = MessageStore()
        self.counters = Counters()
        self.receipts = ReceiptDispatcher(self.store, self.counters, self.dice)

    def reconfigure(self, changes: dict[str, Any]) -> SimulatorConfig:
        self.config = self.config.updated(changes)
        self.dice.apply(self.config, set(changes))
        return self.config

    def reset(self) -> None:
        self.store.clear()
        self.counters = self.receipts.counters = Counters()
        self.receipts.clear()
        self.dice.reset(self.config)

    def stats(self) -> dict[str, Any]:
        c = self.counters
        return {
            "accepted_total": len(self.store),
            "posts_total": c.posts_total,
            "lookups_total": c.lookups_total,
            "by_status_code": dict(c.by_status_code),
            "faults": dict(c.faults),
            "duplicates": self.store.duplicates(),
            "accepted_by_sender": self.store.accepted_by_sender(),
            "receipts_sent": c.receipts_sent,
            "receipts_failed": c.receipts_failed,
            "receipts_pending": self.receipts.pending,
        }

    def authorized(self, request: web.BaseRequest) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.config.api_key}"

    def reply(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> web.Response:
        # Bytes, not text: json_response's text path re-encodes and re-parses the content type.
        return web.Response(
            body=json.dumps(body).encode(),
            status=status,
            headers=headers,
            content_type="application/json",
        )


SIM = web.AppKey("simulator", Simulator)


def _error(
    sim: Simulator, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return sim.reply(status, {"meta": {"timestamp": now_ms()}, "error": message}, headers)


def _validate(body: Any, max_text_chars: int) -> str | None:
    """What is wrong with a send request, or None."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    missing = [k for k in ("from", "text", "to") if not isinstance(body.get(k), str) or not body[k]]
    if missing:
        return f"missing or empty: {', '.join(missing)}"
    if not E164.fullmatch(body["to"]):
        return "to must be an E.164 number"
    callbacks = body.get("callbacks")
    if callbacks is not None and not isinstance(callbacks, str | list):
        return "callbacks must be a list of URLs or a comma-separated string"
    ext = body.get("externalId")
    if ext is not None and not isinstance(ext, str):
        return "externalId must be a string"
    return None


def _callback_urls(body: dict[str, Any], default_url: str | None) -> tuple[str, ...]:
    """Where this message's receipts go: its ``callbacks``, else the account default."""
    raw = body.get("callbacks") or ()
    urls = raw.split(",") if isinstance(raw, str) else raw
    named = tuple(u.strip() for u in urls if isinstance(u, str) and u.strip())
    if named:
        return named
    return (default_url,) if body.get("requestDR") is True and default_url else ()


def _drop(request: web.Request) -> web.Response:
    """Close the connection without a word; the client sees the server disconnect."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=DROPPED)  # never reaches anyone


async def _read_send(sim: Simulator, request: web.Request) -> dict[str, Any] | web.Response:
    """The request body, or the 401/400 answer it deserves."""
    config = sim.config
    if not sim.authorized(request):
        return _error(sim, 401, "invalid or missing API key")
    if config.latency_ms:
        await asyncio.sleep(config.latency_ms / 1000)
    try:
        body = json.loads(
            await request.read()
        )  # bytes: JSON is UTF-8 (RFC 8259), no charset look-up
    except ValueError:
        return _error(sim, 400, "body is not JSON")
    problem = _validate(body, config.max_text_chars)
    return _error(sim, 400, problem) if problem else body


def _accept(sim: Simulator, body: dict[str, Any]) -> dict[str, Any]:
    """Store the message, plan its receipts; the ``data`` of the answer."""
    stamp_ms = now_ms()
    too_long = len(body["text"]) > sim.config.max_text_chars
    slot = sim.store.add(
        body.get("externalId") or "", body["from"], int(body["to"].lstrip("+")), stamp_ms
    )
    if too_long:
        sim.store.set_status(slot, "ERROR", stamp_ms)
    else:
        sim.receipts.schedule(slot, _callback_urls(body, sim.config.default_callback_url))
    data = {
        "id": sim.store.gateway_id(slot),
        "from": body["from"],
        "text": body["text"],
        "to": body["to"],
        "requestDR": bool(body.get("requestDR", False)),
        "type": body.get("type") or "MT",
        "externalId": body.get("externalId"),
        "clientId": body.get("clientId"),
        "callbacks": body.get("callbacks"),
        "status": "ERROR" if too_long else "QUEUE",
        "date": iso_ms(stamp_ms),
    }
    if too_long:
        data["error"] = "Text exceeds the limit of allowed segments"
    return data


async def post_message(request: web.Request) -> web.StreamResponse:
    """Send one SMS; counts every answer by status (``dropped`` for closed connections)."""
    sim = request.app[SIM]
    sim.counters.posts_total += 1
    response = await _send(sim, request)
    key = "dropped" if response.status == DROPPED else str(response.status)
    sim.counters.by_status_code[key] += 1
    return response


async def _send(sim: Simulator, request: web.Request) -> web.StreamResponse:
    """429/500/drop_before store nothing; drop_after and slow store the message."""
    body = await _read_send(sim, request)
    if isinstance(body, web.Response):
        return body
    fault = sim.dice.send_fault()
    if fault:
        sim.counters.faults[fault] += 1
    if fault == "429":
        headers = {"Retry-After": f"{sim.config.retry_after_s:g}"}
        return _error(sim, 429, "too many requests", headers)
    if fault == "500":
        return _error(sim, 500, "internal error")
    if fault == "drop_before":
        return _drop(request)
    data = _accept(sim, body)
    simulator_mo.after_accept(request.app, body["from"], body["to"])
    if fault == "drop_after":
        return _drop(request)
    if fault == "slow":
        await asyncio.sleep(sim.config.slow_s)
    meta = {
        "timestamp": now_ms(),
        "transactionId": str(uuid.UUID(int=sim.dice.transaction_bits(), version=4)),
    }
    return sim.reply(200, {"meta": meta, "data": data})


def _list(sim: Simulator, request: web.Request) -> web.Response:
    ext = request.query.get("externalId")
    slots = sim.store.find(ext) if ext is not None else sim.store.last_slots(LIST_LIMIT)
    return sim.reply(
        200, {"meta": {"timestamp": now_ms()}, "data": [sim.store.row(s) for s in slots]}
    )


async def list_messages(request: web.Request) -> web.StreamResponse:
    """The look-up: ``?externalId=`` answers every message holding it (``[]`` when none)."""
    sim = request.app[SIM]
    sim.counters.lookups_total += 1
    if not sim.authorized(request):
        return _error(sim, 401, "invalid or missing API key")
    if sim.config.latency_ms:
        await asyncio.sleep(sim.config.latency_ms / 1000)
    fault = sim.dice.lookup_fault()
    if fault:
        sim.counters.faults[f"lookup_{fault}"] += 1
    if fault == "500":
        return _error(sim, 500, "internal error")
    if fault == "drop":
        return _drop(request)
    return _list(sim, request)


async def get_message(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    if not sim.authorized(request):
        return _error(sim, 401, "invalid or missing API key")
    slot = sim.store.slot_of(request.match_info["id"])
    if slot is None:
        return _error(sim, 404, "no such message")
    return sim.reply(200, {"meta": {"timestamp": now_ms()}, "data": sim.store.row(slot)})


# -- control ---------------------------------------------------------------------------------


async def sim_config(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    if request.method == "POST":
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of settings")
            ignored = sorted(STARTUP_ONLY & set(changes))
            sim.reconfigure(changes)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if ignored:
            log.warning("simulator: %s only take effect at startup", ignored)
    return web.json_response(sim.config.to_dict())


async def sim_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM].stats())


async def sim_external(request: web.Request) -> web.Response:
    ext = request.match_info["external_id"]
    return web.json_response({"externalId": ext, "count": request.app[SIM].store.count(ext)})


async def sim_rate(request: web.Request) -> web.Response:
    sender = request.query.get("from", "")
    return web.json_response({"from": sender, "per_second": request.app[SIM].store.rate(sender)})


async def sim_accepted(request: web.Request) -> web.Response:
    """One sender's acceptance times: a rate to ±2 % needs more than whole seconds."""
    sender = request.query.get("from", "")
    times = request.app[SIM].store.accepted_times(sender)
    return web.json_response(
        {
            "from": sender,
            "accepted": len(times),
            "first_ms": times[0] if times else None,
            "last_ms": times[-1] if times else None,
            "accepted_ms": times,
        }
    )


async def sim_messages(request: web.Request) -> web.Response:
    return _list(request.app[SIM], request)


async def sim_reset(request: web.Request) -> web.Response:
    request.app[SIM].reset()
    return web.json_response({"reset": True})


def build_app(config: SimulatorConfig | None = None) -> web.Application:
    """The simulator as an aiohttp application (serve it with any runner or test server)."""
    sim = Simulator(config or SimulatorConfig())
    app = web.Application()
    app[SIM] = sim

    async def receipts(app: web.Application) -> AsyncIterator[None]:
        await sim.receipts.start(sim.config.callback_workers)
        yield
        await sim.receipts.stop()

    app.cleanup_ctx.append(receipts)
    for prefix in API_PREFIXES:
        app.router.add_post(f"{prefix}/messages", post_message)
        app.router.add_get(f"{prefix}/messages", list_messages)
        app.router.add_get(f"{prefix}/messages/{{id}}", get_message)
    app.router.add_route("*", "/_sim/config", sim_config)
    app.router.add_get("/_sim/stats", sim_stats)
    app.router.add_get("/_sim/stats/external/{external_id}", sim_external)
    app.router.add_get("/_sim/stats/rate", sim_rate)
    app.router.add_get("/_sim/stats/accepted", sim_accepted)
    app.router.add_get("/_sim/messages", sim_messages)
    app.router.add_post("/_sim/reset", sim_reset)
    simulator_mo.setup(app)  # MO replies (issue 13)
    return app


def run_simulator(
    host: str = "127.0.0.1", port: int = 8025, config: SimulatorConfig | None = None
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM); on uvloop when it is installed."""
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sock = listen.bind(host, port)  # a busy port: PortBusy before anything starts
    where = f"{listen.url(host, port)}/v1"
    web.run_app(
        build_app(config),
        sock=sock,
        access_log=None,
        print=lambda _: print(f"carrier simulator listening on {where}", flush=True),
        loop=loop,
    )

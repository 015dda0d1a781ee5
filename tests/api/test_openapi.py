"""``/openapi.json`` names every route, and schemathesis finds no server error against it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from broadcaster import metrics
from broadcaster.api.app import create_app
from broadcaster.api.context import CTX
from broadcaster.api.limits import ApiLimits
from broadcaster.config import Settings
from broadcaster.services.apikeys import create_key
from broadcaster.services.codes import add_code
from tests.support.inprocess import ListQueue
from tests.support.services import free_port, wait_port

#: Cases per operation and phase; the whole run stays well under a minute on two cores.
MAX_EXAMPLES = 25
#: The one check left out: schema-valid input may still be refused (an unregistered sender code,
#: a number that is not a phone number), which is the API's job, not a schema mismatch.
EXCLUDED_CHECKS = "positive_data_acceptance"


def _routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical if route.resource else ""
        out.add((route.method.lower(), path))
    return out


async def test_document_names_every_route(api):
    doc = await api.json("GET", "/openapi.json", 200)
    assert doc["openapi"].startswith("3.")
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == _routes(api.client.app)
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            public = path in ("/healthz", "/dashboard") or path.startswith(
                ("/v1/dlr/", "/v1/inbound/")
            )
            assert public or {"401", "429"} <= set(op["responses"]), (method, path)
            if "{id}" in path:
                assert "404" in op["responses"], (method, path)


async def test_document_needs_a_key(api):
    assert (await api.client.get("/openapi.json")).status == 401


class ServedApp:
    """The API on a real port, in a thread with its own event loop (schemathesis calls it over HTTP)."""

    def __init__(self, app: web.Application) -> None:
        self.app, self.port = app, free_port()
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.loop.run_forever()

    def __enter__(self) -> ServedApp:
        self.thread.start()
        wait_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def _server_errors() -> float:
    total = 0.0
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.name == "broadcaster_http_requests_total" and s.labels["status"].startswith("5"):
                total += s.value
    return total


@pytest.mark.slow
@pytest.mark.postgres
def test_schemathesis_finds_no_server_error(tmp_path: Path, database_url: str) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("schemathesis is not installed (pip install -e .[dev])")
    # Given an API on SQLite or PostgreSQL (whose INTEGER ids overflow where SQLite's do not)...
    limits = ApiLimits(rate_per_s=1e6, rate_burst=1_000_000, upload_max_bytes=1 << 20)
    settings = Settings(database_url=database_url, redis_url=None)
    app = create_app(settings, queue=ListQueue(), limits=limits)
    engine = app[CTX].engine
    key = create_key(engine, "acme").key
    add_code(engine, settings, "55501", "short", workspace="acme")
    from broadcaster.api.openapi import document

    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(document(limits)))
    errors_before = _server_errors()
    # ...when schemathesis runs every phase and check against it (its examples create data)...
    with ServedApp(app) as served:
        result = subprocess.run(
            [
                st,
                "run",
                str(schema),
                "--url",
                f"http://127.0.0.1:{served.port}",
                "-H",
                f"Authorization: Bearer {key}",
                "--checks",
                "all",
                "--exclude-checks",
                EXCLUDED_CHECKS,
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                "20261123",
                "--workers",
                "1",
                "--no-color",
                "--generation-database",
                "none",
                "--request-timeout",
                "30",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
    # ...then nothing fails and the server answered no request with a 5xx.
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert _server_errors() == errors_before

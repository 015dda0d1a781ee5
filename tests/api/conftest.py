"""Fixtures of the HTTP API tests: an app on a fresh database, two workspaces with a key each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broadcaster.api.app import create_app
from broadcaster.api.context import CTX
from broadcaster.api.limits import ApiLimits
from broadcaster.config import Settings
from broadcaster.services.apikeys import create_key
from broadcaster.services.codes import add_code

#: Numbers the phone rules accept (Mexico City mobiles).
PHONES = [f"+5255{n:08d}" for n in range(1, 50)]
#: Generous limits so that tests which do not test them never meet them.
TEST_LIMITS = ApiLimits(rate_per_s=100_000, rate_burst=100_000, upload_max_bytes=5 * 1024 * 1024)


@dataclass
class ListQueue:
    """The TaskQueue of the tests: remembers the chunks it was given."""

    chunks: list[tuple[int, list[int], float]] = field(default_factory=list)

    def send_chunk(self, broadcast_id: int, ids: list[int], countdown_s: float = 0.0) -> None:
        self.chunks.append((broadcast_id, list(ids), countdown_s))


@dataclass
class Api:
    client: TestClient
    settings: Settings
    queue: ListQueue
    keys: dict[str, str]

    @property
    def engine(self) -> Any:
        return self.client.app[CTX].engine

    def auth(self, workspace: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[workspace]}"}

    async def call(self, method: str, path: str, workspace: str = "acme", **kw: Any) -> Any:
        headers = {**self.auth(workspace), **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    async def json(
        self, method: str, path: str, status: int, workspace: str = "acme", **kw: Any
    ) -> Any:
        resp = await self.call(method, path, workspace, **kw)
        body = await resp.json(content_type=None)
        assert resp.status == status, (resp.status, body)
        return body

    async def broadcast(
        self, recipients: list[Any] | None = None, workspace: str = "acme", **fields: Any
    ) -> Any:
        body = {
            "from": "55501" if workspace == "acme" else "55502",
            "text": "Hi {0}",
            "recipients": recipients
            or [{"to": p, "params": [f"n{i}"]} for i, p in enumerate(PHONES[:3])],
            **fields,
        }
        return await self.json("POST", "/v1/broadcasts", 201, workspace, json=body)


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
def make_api(aiohttp_client: Any, tmp_path: Any) -> MakeApi:
    async def make(
        database_url: str | None = None, limits: ApiLimits = TEST_LIMITS, **app_kw: Any
    ) -> Api:
        url = database_url or f"sqlite:///{tmp_path / 'api.db'}"
        settings = Settings(database_url=url, default_region=None, redis_url=None)
        queue = ListQueue()
        app = create_app(settings, queue=queue, limits=limits, **app_kw)
        client = await aiohttp_client(app)
        engine = app[CTX].engine
        keys = {ws: create_key(engine, ws).key for ws in ("acme", "globex", "ops")}
        add_code(engine, settings, "55501", "short", workspace="acme")
        add_code(engine, settings, "55502", "short", workspace="globex")
        return Api(client=client, settings=settings, queue=queue, keys=keys)

    return make


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()

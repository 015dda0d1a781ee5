"""Fixtures of the HTTP API tests: an app on a fresh database, two workspaces with a key each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broadcaster.api.app import create_app
from broadcaster.api.limits import ApiLimits
from broadcaster.config import Settings
from broadcaster.services.apikeys import create_key
from broadcaster.services.codes import add_code
from tests.support.api import PHONES, TEST_LIMITS
from tests.support.inprocess import ListQueue


@dataclass
class Api:
    client: TestClient
    settings: Settings
    queue: ListQueue
    keys: dict[str, str]

    @property
    def engine(self) -> Any:
        return self.client.app["ctx"].engine  # type: ignore[index]

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
        engine = app["ctx"].engine
        keys = {ws: create_key(engine, ws).key for ws in ("acme", "globex", "ops")}
        add_code(engine, settings, "55501", "short", workspace="acme")
        add_code(engine, settings, "55502", "short", workspace="globex")
        return Api(client=client, settings=settings, queue=queue, keys=keys)

    return make


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()

"""Fixtures of the HTTP API tests: an app on a fresh database, two workspaces with a key each."""

from __future__ import annotations

from typing import Any

import pytest

from broadcaster.api.app import create_app
from broadcaster.api.context import CTX
from broadcaster.api.limits import ApiLimits
from broadcaster.config import Settings
from broadcaster.services.apikeys import create_key
from broadcaster.services.codes import add_code
from tests.support.api import TEST_LIMITS
from tests.support.api_client import Api, MakeApi
from tests.support.inprocess import ListQueue


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

"""The in-process API client the HTTP API tests drive (the ``make_api`` fixture builds it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from broadcaster.api.context import CTX
from broadcaster.config import Settings
from tests.support.api import PHONES
from tests.support.inprocess import ListQueue


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

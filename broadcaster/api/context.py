"""What every handler of the API reaches through its app: settings, engine, queue, gateways.

A typed ``web.AppKey`` (``request.app[CTX]``), not the string ``"ctx"``: handlers get an
``ApiContext`` back, and aiohttp stops warning (NotAppKeyWarning) on every app built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from broadcaster.config import Settings
from broadcaster.providers.base import Provider
from broadcaster.services.dispatch import TaskQueue
from broadcaster.store.db import Engine


@dataclass
class ApiContext:
    settings: Settings
    engine: Engine
    #: Where resumed/started broadcasts' chunks go; Celery in production (set by ``run_api``).
    queue: TaskQueue | None = None
    providers: dict[str, Provider] = field(default_factory=dict)

    def provider_for(self, name: str) -> Provider:
        from broadcaster.providers.registry import build_named_provider

        if name not in self.providers:
            self.providers[name] = build_named_provider(self.settings, name)
        return self.providers[name]


CTX = web.AppKey("ctx", ApiContext)

"""What every handler of the API reaches through its app: settings, engine, queue, gateways.

A typed ``web.AppKey`` (``request.app[CTX]``), not the string ``"ctx"``: handlers get an
``ApiContext`` back, and aiohttp stops warning (NotAppKeyWarning) on every app built.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from broadcaster.config import Settings
from broadcaster.providers.base import Provider
from broadcaster.services.dispatch import TaskQueue
from broadcaster.store.db import Engine
from broadcaster.wiring import ProviderCache


@dataclass
class ApiContext:
    settings: Settings
    engine: Engine
    #: The app's gateways, one adapter per routing key (``broadcaster/wiring.py``).
    providers: ProviderCache
    #: Where resumed/started broadcasts' chunks go; Celery in production (set by ``run_api``).
    queue: TaskQueue | None = None

    def provider_for(self, name: str) -> Provider:
        return self.providers(name)


CTX = web.AppKey("ctx", ApiContext)

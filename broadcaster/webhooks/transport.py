"""The port the callbacks use case posts through: one POST, its outcome as data, no aiohttp."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Failure(StrEnum):
    """Why a POST got no HTTP status."""

    #: The host resolved to an address the SSRF guard refuses: never try again.
    REFUSED_ADDRESS = "refused_address"
    #: The URL cannot be requested at all: never try again.
    INVALID_URL = "invalid_url"
    #: Could not connect, timed out, or the exchange broke: perhaps passing, try again.
    TRANSIENT = "transient"


@dataclass(frozen=True, slots=True)
class PostResult:
    """An HTTP ``status`` (and its raw ``Retry-After``), or a ``failure`` with its ``detail``."""

    status: int | None = None
    retry_after: str | None = None
    failure: Failure | None = None
    detail: str = ""


class WebhookTransport(Protocol):
    """POSTs one signed body; never follows redirects, never raises for a network fault."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostResult: ...

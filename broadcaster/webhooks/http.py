"""The aiohttp webhook transport: an SSRF-guarded session, one POST per call, faults as data."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from broadcaster.config import Settings
from broadcaster.constants import ERROR_TEXT_CHARS
from broadcaster.net import guard
from broadcaster.webhooks.transport import Failure, PostResult

USER_AGENT = "broadcaster-callbacks/1"
#: Connections the session keeps open at once (twice the callbacks in flight per call).
CONNECTION_LIMIT = 100
#: Seconds a resolved address is reused (short: the guard checks what DNS says now).
DNS_CACHE_S = 10


def make_session(settings: Settings) -> aiohttp.ClientSession:
    """The HTTP session for callbacks: connects only to addresses the SSRF guard accepted.

    Call inside a running event loop. No proxies from the environment, no cookies kept.
    """
    resolver = None if settings.callback_allow_private else guard.GuardedResolver()
    connector = aiohttp.TCPConnector(
        resolver=resolver, limit=CONNECTION_LIMIT, ttl_dns_cache=DNS_CACHE_S
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


class HttpWebhookTransport:
    """:class:`~broadcaster.webhooks.transport.WebhookTransport` over an aiohttp ``session``
    (from :func:`make_session`), each POST bounded by ``timeout_s``."""

    def __init__(self, session: aiohttp.ClientSession, timeout_s: float) -> None:
        self.session, self.timeout_s = session, timeout_s

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostResult:
        try:
            async with self.session.post(
                url,
                data=body,
                headers=dict(headers),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as resp:
                return PostResult(resp.status, resp.headers.get("Retry-After"))
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, guard.RefusedAddress):
                detail = f"callback URL {url!r} is refused: {exc.os_error}"
                return PostResult(failure=Failure.REFUSED_ADDRESS, detail=detail)
            return PostResult(failure=Failure.TRANSIENT, detail=f"connection failed: {exc}")
        except TimeoutError:
            detail = f"no answer within {self.timeout_s:g} s"
            return PostResult(failure=Failure.TRANSIENT, detail=detail)
        except aiohttp.InvalidURL as exc:
            return PostResult(failure=Failure.INVALID_URL, detail=f"invalid URL: {exc}")
        except aiohttp.ClientError as exc:
            detail = f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_CHARS]
            return PostResult(failure=Failure.TRANSIENT, detail=detail)

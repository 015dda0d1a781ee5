"""``GET /dashboard``: one static HTML page (inline CSS and JS) that drives the v1 API.

The page itself needs no key (``auth.PUBLIC_PATHS``) and holds no data: the user pastes an API
key, the page keeps it in ``sessionStorage`` and sends it as ``Authorization: Bearer`` to the v1
routes, exactly like any other client. The answer carries a Content-Security-Policy that allows
only this page's own inline script and style (by hash) and requests to this origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

from aiohttp import web

PAGE = Path(__file__).parent / "static" / "dashboard.html"
PATH = "/dashboard"

_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def _hashes(html: str, tag: str) -> str:
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for t, body in _INLINE.findall(html)
        if t == tag
    )


@cache
def page() -> tuple[bytes, dict[str, str]]:
    """The page's bytes and headers, read once per process."""
    html = PAGE.read_text(encoding="utf-8")
    csp = "; ".join(
        (
            "default-src 'none'",
            f"script-src {_hashes(html, 'script')}",
            f"style-src {_hashes(html, 'style')}",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return html.encode("utf-8"), headers


async def dashboard(request: web.Request) -> web.Response:
    body, headers = page()
    return web.Response(body=body, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, dashboard)

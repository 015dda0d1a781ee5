"""The API's one serializer: a service's answer (frozen views, lists, dicts) as a JSON response.

Everything goes through :func:`broadcaster.domain.wire.to_wire`, as the command line's
``--json`` does, so an HTTP body and ``--json`` carry the same names and the same ISO 8601 times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from broadcaster.domain.wire import encode_cursor, to_wire


def json_answer(
    value: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(to_wire(value), status=status, headers=headers)


def page_answer(items: Any, next_after: tuple[int, ...] | None) -> web.Response:
    """One page of a list route: its items and the opaque cursor of the next (null: the last)."""
    return json_answer({"items": items, "nextCursor": encode_cursor(next_after)})

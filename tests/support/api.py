"""What API tests share: phone numbers, generous limits, problem and signature helpers."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import sqlalchemy as sa

from broadcaster.api.limits import ApiLimits
from broadcaster.api.signatures import sign
from broadcaster.store.db import utcnow
from broadcaster.store.models import messages

PROBLEM = "application/problem+json"

#: Numbers the phone rules accept (Mexico City mobiles).
PHONES = [f"+5255{n:08d}" for n in range(1, 50)]
#: Generous limits so that tests which do not test them never meet them.
TEST_LIMITS = ApiLimits(rate_per_s=100_000, rate_burst=100_000, upload_max_bytes=5 * 1024 * 1024)


async def problem(resp: aiohttp.ClientResponse, status: int) -> dict:
    body = await resp.json(content_type=None)
    assert resp.status == status, (resp.status, body)
    assert resp.content_type == PROBLEM
    assert body["status"] == status and body["type"].startswith("urn:broadcaster:problem:")
    return body


def signed_headers(
    created,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    ts: float | None = None,
    nonce: str | None = None,
    secret: str | None = None,
) -> dict[str, str]:
    ts_text = str(int(ts if ts is not None else time.time()))
    nonce = nonce or f"n{time.monotonic_ns()}"
    return {
        "Authorization": f"Bearer {created.key}",
        "X-Timestamp": ts_text,
        "X-Nonce": nonce,
        "X-Signature": sign(secret or created.signing_secret, method, path, ts_text, nonce, body),
    }


def fill_messages(api: Any, bid: int, n: int) -> None:
    """``n`` delivered messages of broadcast ``bid``, written straight to the table."""
    now = utcnow()
    with api.engine.begin() as conn:
        for start in range(0, n, 20_000):
            conn.execute(
                sa.insert(messages),
                [
                    {
                        "broadcast_id": bid,
                        "line": i + 10,
                        "recipient": f"+1415{i:07d}",
                        "text": f"Hello number {i}, "
                        "this is a message of ordinary length for a report row.",
                        "encoding": "GSM-7",
                        "segments": 1,
                        "status": "DELIVRD",
                        "attempts": 1,
                        "gateway_id": f"gw-{i}",
                        "created_at": now,
                        "sent_at": now,
                        "updated_at": now,
                    }
                    for i in range(start, min(n, start + 20_000))
                ],
            )


def form(
    data: bytes, filename: str, content_type: str = "application/octet-stream", **fields: str
) -> aiohttp.FormData:
    f = aiohttp.FormData()
    for k, v in fields.items():
        f.add_field(k, v)
    f.add_field("file", data, filename=filename, content_type=content_type)
    return f

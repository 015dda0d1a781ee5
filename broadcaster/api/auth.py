"""Who may call: bearer API keys, per-key rate limits, and request signatures.

Order for every path but the public ones: a key (401) → its rate (429) → its signature when the
key has a signing secret (401). Public: ``/healthz``, ``/dashboard`` (a static page that
calls the API with the user's key) and the gateways' ``/v1/dlr/*`` (which check
their own shared secret). Unknown paths answer 401 without a key, so nobody can map the API
anonymously.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Awaitable, Callable

from aiohttp import web

from broadcaster.api.bodies import read_body, too_large
from broadcaster.api.context import CTX
from broadcaster.api.problems import Problem
from broadcaster.api.signatures import (
    NONCE_HEADER,
    NONCE_RE,
    SIGNATURE_HEADER,
    SIGNATURE_HEADERS,
    TIMESTAMP_HEADER,
    NonceStoreUnavailable,
    body_digest,
    signature_matches,
    timestamp_skew_s,
)
from broadcaster.api.state import PRINCIPAL, ApiState, blocking, state
from broadcaster.api.uploads import CHUNK_BYTES, SPOOLED_BODY
from broadcaster.services.apikeys import Principal, authenticate

PUBLIC_PATHS = frozenset({"/healthz", "/dashboard"})
# seed 004 signs its URLs (api/seed004.py); gateways post MOs with their route's secret
PUBLIC_PREFIXES = ("/v1/dlr/", "/rest/api/", "/v1/inbound/")
#: Spooled signed uploads stay in memory up to this size, then go to a temporary file.
SPOOL_MEMORY_BYTES = 1024 * 1024
#: Retry-After of a signed request refused because the replay guard could not answer, seconds.
NONCE_RETRY_AFTER_S = 5
_CHALLENGE = 'Bearer realm="broadcaster"'


def take_request(st: ApiState, key: Principal) -> None:
    """One request of ``key``: 429 over the key's rate, or over its workspace's (all its keys)."""
    wait_s = st.buckets.take(key.prefix)
    if wait_s > 0:
        what = f"{st.limits.rate_per_s:g} requests/s for this key"
    else:
        wait_s = st.workspace_buckets.take(f"ws:{key.workspace_id}")
        what = f"{st.limits.workspace_rate_per_s:g} requests/s for this workspace's keys together"
    if wait_s > 0:
        raise Problem(
            429,
            f"over {what}; retry in {wait_s:.2f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def unauthorized(
    detail: str, error: str = "invalid_token", field: str = "Authorization"
) -> Problem:
    return Problem(
        401, detail, field=field, headers={"WWW-Authenticate": f'{_CHALLENGE}, error="{error}"'}
    )


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if not header:
        raise Problem(
            401,
            "send your API key: Authorization: Bearer <key>",
            field="Authorization",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise unauthorized("the Authorization header must be: Bearer <key>", "invalid_request")
    return key.strip()


async def _body_sha256(request: web.Request, workspace: str) -> str:
    """Hash of the raw body; a multipart upload is spooled (and kept) so the handler can parse it."""
    limits = state(request).limits
    if not request.content_type.startswith("multipart/"):
        return body_digest(await read_body(request, limits.json_max_bytes, workspace))
    cap = limits.upload_max_bytes + limits.form_field_max_bytes * 16
    if request.content_length is not None and request.content_length > cap:
        raise too_large(f"the body is {request.content_length:,} bytes, over the limit of {cap:,}")
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - closed by the middleware
    request[SPOOLED_BODY] = spool
    digest = hashlib.sha256()
    total = 0
    async for chunk in request.content.iter_chunked(CHUNK_BYTES):
        total += len(chunk)
        if total > cap:
            raise too_large(f"the body is over the upload limit of {cap:,} bytes")
        digest.update(chunk)
        spool.write(chunk)
    return digest.hexdigest()


async def _verify_signature(request: web.Request, key: Principal) -> None:
    assert key.signing_secret is not None
    st = state(request)
    missing = [h for h in SIGNATURE_HEADERS if not request.headers.get(h)]
    if missing:
        raise unauthorized(
            f"this key signs its requests: send {', '.join(missing)}", field=missing[0]
        )
    timestamp, nonce = request.headers[TIMESTAMP_HEADER], request.headers[NONCE_HEADER]
    window_s = st.limits.signature_window_s
    skew = timestamp_skew_s(timestamp, st.wall_clock())
    if skew is None:
        raise unauthorized(f"{TIMESTAMP_HEADER} must be Unix seconds", field=TIMESTAMP_HEADER)
    if skew > window_s:
        raise unauthorized(
            f"{TIMESTAMP_HEADER} is {skew:.0f} s from the server's clock (window {window_s} s)",
            field=TIMESTAMP_HEADER,
        )
    if not NONCE_RE.match(nonce):
        raise unauthorized(f"{NONCE_HEADER} must be 8-64 of A-Z a-z 0-9 - _", field=NONCE_HEADER)
    body_hash = await _body_sha256(request, key.workspace)
    if not signature_matches(
        key.signing_secret,
        request.headers[SIGNATURE_HEADER],
        request.method,
        request.raw_path,
        timestamp,
        nonce,
        body_hash,
    ):
        raise unauthorized("the signature does not match this request", field=SIGNATURE_HEADER)
    # Remembered only once the signature holds: strangers cannot burn a client's nonces.
    try:
        fresh = await st.nonces.remember(f"{key.prefix}:{nonce}", 2 * window_s)
    except NonceStoreUnavailable:
        # Fail closed: a nonce we cannot check may be a replay.
        raise Problem(
            503,
            "the replay guard (nonce store) is unavailable, so signed requests are refused; "
            f"retry in {NONCE_RETRY_AFTER_S} s with a new {NONCE_HEADER}",
            field=NONCE_HEADER,
            slug="replay-guard-unavailable",
            headers={"Retry-After": str(NONCE_RETRY_AFTER_S)},
        ) from None
    if not fresh:
        raise unauthorized(f"{NONCE_HEADER} was already used", field=NONCE_HEADER)


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if is_public(request.path):
        return await handler(request)
    st = state(request)
    engine = request.app[CTX].engine
    key = await blocking(request, authenticate, engine, _bearer(request))
    if key is None:
        raise unauthorized("unknown, malformed or revoked API key")
    take_request(st, key)
    try:
        if key.signing_secret is not None:
            await _verify_signature(request, key)
        elif request.headers.get(SIGNATURE_HEADER):
            raise unauthorized(
                "this key has no signing secret; drop X-Signature or use a signing key",
                field=SIGNATURE_HEADER,
            )
        request[PRINCIPAL] = key
        return await handler(request)
    finally:
        spool = request.get(SPOOLED_BODY)
        if spool is not None:
            spool.close()

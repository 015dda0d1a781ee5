"""API keys: one workspace each, shown once, stored as a SHA-256 hash.

A key reads ``bk_<prefix>_<secret>``: ``prefix`` is 12 hex characters, stored in clear and used to
find the row; ``secret`` is 32 random bytes (base64url). Only SHA-256 of the whole key is stored;
a 256-bit random secret needs no slow hash, and the comparison is constant-time.

A key may also carry a *signing secret* (``--signing``): then every request made with the key
must be signed (HMAC-SHA256, see ``broadcaster/api/signatures.py``). The server needs that secret
itself to check signatures, so it is stored as given; it is shown once too.

Seed 004's API (``broadcaster/api/seed004.py``) names a key by a *public key* (``pk_`` and 32
hex characters, safe in a URL) and signs with a *seed secret*: HMAC-SHA256 of the label
:data:`SEED_SECRET_LABEL` under the whole key, in hex. It is derived, so a client holding its key
can always recompute it; the server keeps it (it must, to check a plain SHA-256 signature) but a
database reader still cannot call ``/v1`` with it. Why so: docs/seed-api.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from broadcaster.errors import Conflict, InputError, NotFound
from broadcaster.store import apikeys_repo, codes_repo
from broadcaster.store.db import Engine, utcnow

KEY_MARK = "bk_"
PREFIX_HEX_CHARS = 12
SECRET_BYTES = 32
SIGNING_SECRET_BYTES = 32
PUBLIC_MARK = "pk_"
PUBLIC_HEX_CHARS = 32
SEED_SECRET_LABEL = b"broadcaster seed-004 signature"
_HEX = frozenset("0123456789abcdef")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
MAX_KEY_CHARS = 100
WORKSPACE_NAME_CHARS = 100
# Compared against when no row matches, so a wrong prefix costs about as long as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key as listed: never its secret."""

    prefix: str
    workspace: str
    created_at: datetime
    revoked_at: datetime | None
    signing: bool


@dataclass(frozen=True, slots=True)
class RevokedKey:
    prefix: str
    revoked_at: datetime


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: ``key`` and ``signing_secret`` are never shown again."""

    prefix: str
    key: str
    workspace: str
    signing_secret: str | None
    #: Seed 004: the key's name in URLs, and the secret its signatures end with.
    public_key: str = ""
    seed_secret: str = ""
    #: The workspace's number: seed 004's ``instanceId``.
    instance_id: int = 0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request speaks for: a live key and its workspace."""

    key_id: int
    prefix: str
    workspace_id: int
    workspace: str
    #: Present when the key requires signed requests.
    signing_secret: str | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def seed_secret_of(key: str) -> str:
    """The secret seed-004 signatures end with, derived from the whole key (shown with it)."""
    return hmac.new(key.encode(), SEED_SECRET_LABEL, hashlib.sha256).hexdigest()


def parse_prefix(key: str) -> str | None:
    """The prefix of a well-formed key, else None (nothing else about it is trusted yet)."""
    if not key.startswith(KEY_MARK) or len(key) > MAX_KEY_CHARS:
        return None
    prefix, sep, secret = key[len(KEY_MARK) :].partition("_")
    if not sep or len(prefix) != PREFIX_HEX_CHARS or not secret or not set(key) <= _KEY_CHARS:
        return None
    if any(c not in "0123456789abcdef" for c in prefix):
        return None
    return prefix


def _check_workspace_name(name: str) -> None:
    if (
        not name
        or len(name) > WORKSPACE_NAME_CHARS
        or not name.isprintable()
        or name.strip() != name
    ):
        raise InputError(
            f"workspace name must be 1-{WORKSPACE_NAME_CHARS} printable characters without "
            f"leading or trailing spaces, not {name!r}"
        )


def create_key(
    engine: Engine, workspace: str, *, signing: bool = False, max_live: int | None = None
) -> CreatedKey:
    """A new key for ``workspace`` (created on first use); the only time the key is readable.

    ``max_live``: refuse (Conflict) when the workspace has that many unrevoked keys already (the
    API's ``keys_per_workspace``; the operator's command line passes None).
    """
    _check_workspace_name(workspace)
    prefix = secrets.token_hex(PREFIX_HEX_CHARS // 2)
    key = f"{KEY_MARK}{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    signing_secret = secrets.token_urlsafe(SIGNING_SECRET_BYTES) if signing else None
    public_key = PUBLIC_MARK + secrets.token_hex(PUBLIC_HEX_CHARS // 2)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        if max_live is not None and apikeys_repo.live_keys_locked(conn, ws) >= max_live:
            raise Conflict(
                f"workspace {workspace!r} has {max_live} live API keys, the most it may make "
                "(keys_per_workspace); revoke one it no longer uses first"
            )
        apikeys_repo.insert_key(
            conn,
            ws,
            prefix,
            key_hash=hash_key(key),
            secret=signing_secret,
            public_key=public_key,
            seed_secret=seed_secret_of(key),
        )
    return CreatedKey(
        prefix=prefix,
        key=key,
        workspace=workspace,
        signing_secret=signing_secret,
        public_key=public_key,
        seed_secret=seed_secret_of(key),
        instance_id=int(ws),
    )


def list_keys(engine: Engine, workspace: str | None = None) -> list[KeyView]:
    """Every key's prefix, workspace and dates; never a secret."""
    with engine.connect() as conn:
        return [KeyView(**row) for row in apikeys_repo.list_keys(conn, workspace)]


def revoke_key(engine: Engine, prefix: str, workspace_id: int | None = None) -> RevokedKey:
    """Revoke a key by prefix (``bk_`` and anything after the prefix are ignored); idempotent.

    ``workspace_id``: only that workspace's key (the API's), NotFound for another's.
    """
    bare = prefix.removeprefix(KEY_MARK)[:PREFIX_HEX_CHARS]
    now = utcnow()
    with engine.begin() as conn:
        found = apikeys_repo.revocation_of(conn, bare, workspace_id)
        if found is None:
            raise NotFound(f"no API key with prefix {prefix!r}")
        key_id, revoked_at = found
        if revoked_at is None:
            apikeys_repo.revoke(conn, key_id, now)
        revoked_at = revoked_at or now
    return RevokedKey(bare, revoked_at)


def authenticate(engine: Engine, key: str) -> Principal | None:
    """The principal of a live key, or None for a malformed, unknown, wrong or revoked one."""
    prefix = parse_prefix(key)
    presented = hash_key(key)
    row = None
    if prefix is not None:
        with engine.connect() as conn:
            row = apikeys_repo.find_by_prefix(conn, prefix)
    stored = row.key_hash if row is not None else _DUMMY_HASH
    if not hmac.compare_digest(presented, stored) or row is None or row.revoked_at is not None:
        return None
    assert prefix is not None
    return Principal(
        key_id=int(row.id),
        prefix=prefix,
        workspace_id=int(row.workspace_id),
        workspace=str(row.name),
        signing_secret=row.secret,
    )


@dataclass(frozen=True, slots=True)
class SeedKey:
    """A live key named by its public key (seed 004), with the secret its signatures end with."""

    principal: Principal
    #: None for a key made before migration 0014: it cannot sign seed-004 calls.
    seed_secret: str | None


def by_public_key(engine: Engine, public_key: str) -> SeedKey | None:
    """The live key with this public key, or None (unknown, malformed or revoked)."""
    digits = public_key.removeprefix(PUBLIC_MARK)
    if digits == public_key or len(digits) != PUBLIC_HEX_CHARS or set(digits) - _HEX:
        return None  # never sent to the database: a NUL byte there is an error, not a miss
    with engine.connect() as conn:
        row = apikeys_repo.by_public_key(conn, public_key)
    if row is None or row["revoked_at"] is not None:
        return None
    return SeedKey(
        principal=Principal(
            key_id=int(row["id"]),
            prefix=str(row["prefix"]),
            workspace_id=int(row["workspace_id"]),
            workspace=str(row["name"]),
            signing_secret=row["secret"],
        ),
        seed_secret=row["seed_secret"],
    )

"""Seed 004's request signature: SHA-256 over the call's inputs and the key's seed secret.

The seed says a signature "involves all input parameters" and points at a Java example that is
not in its documents, so broadcaster defines it once (docs/seed-api.md)::

    signature = hex(sha256( p1 + p2 + … + pk            every path parameter before {signature},
                                                         URL-decoded, in URL order (publicKey too)
                            + hex(sha256(post1)) + …     a POST's parameters' raw bytes, in order
                            + timestamp + nonce          only with the optional replay guard
                            + seed_secret ))             the key's seed secret

UTF-8 throughout, lowercase hex, nothing between the parts. The comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from pathlib import Path

#: Length of a lowercase hex SHA-256.
SIGNATURE_HEX_CHARS = 64
_HEX = frozenset("0123456789abcdef")
_FILE_CHUNK_BYTES = 64 * 1024


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks (an upload may be hundreds of megabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_FILE_CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def seed_signature(
    path_params: Sequence[str],
    post_digests: Iterable[str],
    secret: str,
    guard: Sequence[str] = (),
) -> str:
    """The signature a client computes for these inputs (``guard``: the replay guard's
    ``timestamp`` and ``nonce`` query parameters, when the client sends them)."""
    text = "".join(path_params) + "".join(post_digests) + "".join(guard) + secret
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def well_formed(signature: str) -> bool:
    return len(signature) == SIGNATURE_HEX_CHARS and set(signature) <= _HEX


def signature_matches(
    presented: str,
    path_params: Sequence[str],
    post_digests: Iterable[str],
    secret: str,
    guard: Sequence[str] = (),
) -> bool:
    expected = seed_signature(path_params, post_digests, secret, guard)
    if not well_formed(presented):
        return False
    return hmac.compare_digest(expected.encode("ascii"), presented.encode("ascii"))

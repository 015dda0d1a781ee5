"""Named values shared across layers: Redis key prefixes, limits. Units are in the names."""

from __future__ import annotations

#: Redis key prefix of the token bucket per sender code (``bucket:code:<code>``).
BUCKET_CODE_PREFIX = "broadcaster:bucket:code:"
#: Redis key prefix of the token bucket per provider account.
BUCKET_ACCOUNT_PREFIX = "broadcaster:bucket:account:"

#: Redis key prefix of remembered signed-request nonces (``nonce:<key prefix>:<nonce>``).
NONCE_KEY_PREFIX = "broadcaster:nonce:"

#: GSM 03.38 limit: more than this many segments is SEGMENTS_EXCEEDED.
MAX_SEGMENTS = 10

#: Rows per INSERT batch while ingesting.
INSERT_BATCH_ROWS = 5_000

"""Named values shared across layers: Redis key prefixes, limits. Units are in the names."""

from __future__ import annotations

#: Redis key prefix of the token bucket per sender code (``bucket:code:<code>``).
BUCKET_CODE_PREFIX = "broadcaster:bucket:code:"
#: Redis key prefix of the token bucket per provider account.
BUCKET_ACCOUNT_PREFIX = "broadcaster:bucket:account:"

#: Redis of a process whose ``BROADCASTER_REDIS_URL`` is unset (Celery broker, token buckets).
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

#: Characters of an error text stored with a message or a callback delivery (longer is cut).
ERROR_TEXT_CHARS = 300

#: Redis key prefix of remembered signed-request nonces (``nonce:<key prefix>:<nonce>``).
NONCE_KEY_PREFIX = "broadcaster:nonce:"

#: GSM 03.38 limit: more than this many segments is SEGMENTS_EXCEEDED.
MAX_SEGMENTS = 10
#: Characters past which any text is over ``MAX_SEGMENTS`` (10 GSM-7 segments of 153 septets;
#: every character costs at least one unit and UCS-2 holds fewer). Rendering stops here, so a
#: message that is SEGMENTS_EXCEEDED anyway is never built or stored in full.
MAX_SENDABLE_CHARS = MAX_SEGMENTS * 153

#: Placeholders one template may hold (each use counts: ``{0}`` written 3 times is 3).
MAX_TEMPLATE_PLACEHOLDERS = 100
#: Longest value (parameter, cell) a placeholder may insert, in characters: a value this long
#: could never fit in ``MAX_SEGMENTS`` segments, so the row is refused with a row error.
MAX_PARAM_CHARS = 1_600

#: Slowest and fastest rate a sender code or gateway account may have, messages (segments) per
#: second: slower rates make waits that overflow dates and timers, faster ones no gateway has.
MIN_MPS = 0.01
MAX_MPS = 100_000.0

#: Rows per INSERT batch while ingesting; each batch is its own transaction, so this bounds how
#: long an import holds SQLite's write lock. Smaller batches cost ingest rate: every commit
#: rewrites the dirty pages of the random-keyed (broadcast_id, recipient) index (measured on a
#: loaded 2-core machine, 100k rows: 1,000 rows held the lock ~60-95 ms median but took 1.1-2x
#: as long as one transaction; 5,000 held it ~130-250 ms at about the same rate).
INSERT_BATCH_ROWS = 5_000

#: Largest value of an INTEGER column on PostgreSQL (broadcast ids, line numbers).
INT32_MAX = 2_147_483_647
#: Largest value of a BIGINT id the API and the command line accept (18 digits).
ID64_MAX = 999_999_999_999_999_999

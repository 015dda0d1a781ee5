"""Named values shared across layers: Redis key prefixes, limits. Units are in the names."""

from __future__ import annotations

#: Redis key prefix of the token bucket per sender code (``bucket:code:<code>``).
BUCKET_CODE_PREFIX = "broadcaster:bucket:code:"
#: Redis key prefix of the token bucket per provider account.
BUCKET_ACCOUNT_PREFIX = "broadcaster:bucket:account:"

#: GSM 03.38 limit: more than this many segments is SEGMENTS_EXCEEDED.
MAX_SEGMENTS = 10

#: Rows per INSERT batch while ingesting; each batch is its own transaction, so this bounds how
#: long an import holds SQLite's write lock (measured with a loaded 2-core machine: median 70 ms,
#: p90 125 ms per 1,000 rows; 5,000 rows held it 250-460 ms), at the same ingest rate.
INSERT_BATCH_ROWS = 1_000

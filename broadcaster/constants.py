"""Named values shared across layers: Redis key prefixes, limits. Units are in the names."""

from __future__ import annotations

#: Redis key prefix of the token bucket per sender code (``bucket:code:<code>``).
BUCKET_CODE_PREFIX = "broadcaster:bucket:code:"
#: Redis key prefix of the token bucket per provider account.
BUCKET_ACCOUNT_PREFIX = "broadcaster:bucket:account:"

#: GSM 03.38 limit: more than this many segments is SEGMENTS_EXCEEDED.
MAX_SEGMENTS = 10

#: Rows per INSERT batch while ingesting; each batch is its own transaction, so this bounds how
#: long an import holds SQLite's write lock. Smaller batches cost ingest rate: every commit
#: rewrites the dirty pages of the random-keyed (broadcast_id, recipient) index (measured on a
#: loaded 2-core machine, 100k rows: 1,000 rows held the lock ~60-95 ms median but took 1.1-2x
#: as long as one transaction; 5,000 held it ~130-250 ms at about the same rate).
INSERT_BATCH_ROWS = 5_000

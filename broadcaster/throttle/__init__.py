"""Token buckets per sender code and per provider account, counted in SMS segments.

``TokenBucket`` is the interface; ``RedisTokenBucket`` shares buckets across every process and
host through one Lua script, ``MemoryTokenBucket`` is its in-process twin for tests.
"""

from broadcaster.throttle.bucket import Grant, Limit, TokenBucket, acquire
from broadcaster.throttle.memory_bucket import MemoryTokenBucket
from broadcaster.throttle.redis_bucket import RedisTokenBucket

__all__ = ["Grant", "Limit", "MemoryTokenBucket", "RedisTokenBucket", "TokenBucket", "acquire"]

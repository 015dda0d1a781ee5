"""Token buckets in Redis: one Lua script, one round trip per ``take``, global across hosts."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio
import redis.exceptions

from broadcaster.throttle.bucket import Grant, Limit, check_request

#: The script's source; ``register_script`` runs it by EVALSHA and reloads it on NOSCRIPT
#: (after SCRIPT FLUSH, a failover or a restart of Redis).
#: A string here rather than a ``.lua`` file, so no package-data rule is needed to ship it.
TAKE_LUA = """
-- Token buckets: take up to ARGV[1] tokens from every bucket in KEYS at once.
--
-- KEYS:  bucket keys (hashes: l = level in tokens, t = last update, server microseconds)
-- ARGV:  tokens, min_tokens, then rate_per_s and capacity for each key, in KEYS order
-- Returns {granted, wait_s}; wait_s is a string because Redis truncates Lua floats to integers.
--
-- Mirrors bucket.py (refill, available, wait_for, idle_ttl_ms); the
-- in-memory twin runs that Python, and one contract test runs over both.

local EPS = 1e-6              -- TOKEN_EPSILON
local TTL_REFILLS = 3         -- IDLE_TTL_REFILLS
local TTL_MIN_MS = 1000       -- IDLE_TTL_MIN_MS
local TTL_MAX_MS = 604800000  -- IDLE_TTL_MAX_MS

-- Redis < 5 needs effect replication before a write that follows TIME; later versions: no-op.
if redis.replicate_commands then redis.replicate_commands() end

-- Server time, so that workers on hosts with skewed clocks agree.
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])

local tokens = tonumber(ARGV[1])
local min_tokens = tonumber(ARGV[2])
local levels, rates, caps = {}, {}, {}
local grant = tokens

for i = 1, #KEYS do
  local rate = tonumber(ARGV[1 + 2 * i])
  local cap = tonumber(ARGV[2 + 2 * i])
  local state = redis.call('HMGET', KEYS[i], 'l', 't')
  local level = cap  -- a missing key (new, expired, or Redis restarted) is a full bucket
  if state[1] and state[2] then
    local elapsed_s = math.max(0, now_us - tonumber(state[2])) / 1000000
    level = math.min(cap, tonumber(state[1]) + elapsed_s * rate)
  end
  local avail = math.floor(level + EPS)
  if level + EPS >= cap and avail < min_tokens then
    avail = min_tokens  -- a full bucket lends a message bigger than its capacity (debt)
  end
  if avail < grant then grant = avail end
  levels[i], rates[i], caps[i] = level, rate, cap
end
if grant < min_tokens then grant = 0 end

local wait_s = 0
for i = 1, #KEYS do
  local level = levels[i] - grant
  local rate, cap = rates[i], caps[i]
  if grant < tokens then
    local w = math.max(0, math.min(min_tokens, cap) - level) / rate
    if w > wait_s then wait_s = w end
  end
  local ttl_ms = math.ceil(TTL_REFILLS * math.max(cap, cap - level) / rate * 1000)
  ttl_ms = math.min(TTL_MAX_MS, math.max(TTL_MIN_MS, ttl_ms))
  redis.call('HSET', KEYS[i], 'l', string.format('%.17g', level), 't', string.format('%.17g', now_us))
  redis.call('PEXPIRE', KEYS[i], string.format('%d', ttl_ms))
end

return {grant, string.format('%.17g', wait_s)}
"""


class RedisTokenBucket:
    """Buckets as Redis hashes, refilled on read by server time, expiring when idle.

    All buckets of one ``take`` must live on one Redis node (one hash slot in Redis Cluster),
    because the script is atomic over its keys.
    """

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._script = client.register_script(TAKE_LUA)

    async def take(self, limits: Sequence[Limit], tokens: int, *, min_tokens: int = 1) -> Grant:
        check_request(limits, tokens, min_tokens)
        if tokens == 0:
            return Grant(granted=0, wait_s=0.0)
        args: list[int | float] = [tokens, min_tokens]
        for limit in limits:
            args += [float(limit.rate_per_s), float(limit.burst)]
        keys = [limit.key for limit in limits]
        try:
            granted, wait_s = await self._script(keys=keys, args=args)
        except redis.exceptions.ConnectionError:
            # A pooled connection that died with a Redis restart fails once, and clients made by
            # ``from_url`` do not retry by default. Asking again is safe: if the first call did
            # run, its tokens are lost, which errs on the slow side, never over the rate.
            granted, wait_s = await self._script(keys=keys, args=args)
        return Grant(granted=int(granted), wait_s=float(wait_s))

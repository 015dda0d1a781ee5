"""Is the stack that sends running? Asked before a command waits for it.

``broadcaster send`` used to store its message and then wait 60 s for workers that were never
started. Without a broker URL nothing can be running (``broadcaster dev`` prints the one to
export); with one, a Redis that does not answer a PING within seconds means no worker can take
the message either.
"""

from __future__ import annotations

from broadcaster.config import Settings
from broadcaster.errors import StackUnavailable

#: How long a PING to the broker may take before the stack counts as not running.
PING_TIMEOUT_S = 2.0
START_HINT = (
    "start it with `broadcaster dev` in another shell and export the BROADCASTER_REDIS_URL "
    "it prints"
)


def require_broker(settings: Settings, timeout_s: float = PING_TIMEOUT_S) -> None:
    """StackUnavailable unless the broker (Redis) of ``settings`` answers a PING in time."""
    import redis

    url = settings.redis_url
    if not url:
        raise StackUnavailable(f"no running stack: BROADCASTER_REDIS_URL is not set; {START_HINT}")
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise StackUnavailable(
            f"no running stack: Redis at {_safe_url(url)} does not answer "
            f"({type(exc).__name__}); {START_HINT}"
        ) from None
    finally:
        client.close()


def _safe_url(url: str) -> str:
    """The URL without its password, for an error message."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))

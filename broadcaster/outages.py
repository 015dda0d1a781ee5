"""Which exceptions mean "a dependency is down for now" (PostgreSQL or Redis restarting).

Long-running processes (the API, the drop-folder watcher) answer these with a clean "unavailable,
try again" and carry on; anything else is a bug and is logged as one.
"""

from __future__ import annotations


def unavailable(exc: BaseException) -> str | None:
    """``database`` or ``redis`` when ``exc`` says that dependency is unreachable, else None."""
    import kombu.exceptions
    import redis.exceptions
    import sqlalchemy.exc

    if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
        return "database"
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return "database"
    redis_down = (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        kombu.exceptions.OperationalError,
    )
    if isinstance(exc, redis_down):
        return "redis"
    return None

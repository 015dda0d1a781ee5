"""Shared fixtures: private Redis, SQLite and PostgreSQL databases of the tests' own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import PostgresDatabase, RedisServer

IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private redis-server for the session; tests flush it, some restart it."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[PostgresDatabase | None]:
    try:
        db = PostgresDatabase().start()
    except Exception as exc:  # no server and no binaries: skip locally, fail in CI
        if IN_CI:
            raise
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield db
    db.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    pg: PostgresDatabase = request.getfixturevalue("postgres_db")
    import sqlalchemy as sa

    engine = sa.create_engine(pg.url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    yield pg.url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


# The whole running stack for integration tests (``make_stack``), shared by every suite.
from tests.support.stack import make_stack  # noqa: E402,F401

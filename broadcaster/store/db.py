"""Engines and schema upgrades. SQLite gets WAL and a busy timeout so worker processes share it."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection as Connection
from sqlalchemy.engine import Engine as Engine
from sqlalchemy.exc import IntegrityError as IntegrityError
from sqlalchemy.exc import InterfaceError, OperationalError

# Services name the database's types through the store (``from broadcaster.store.db import
# Connection, Engine``): the store alone imports SQLAlchemy.

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 60_000
#: Database errors that say "try again later", not "this input is bad".
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError, IntegrityError)


def utcnow() -> datetime:
    """Naive UTC now: the one time convention of the store."""
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_engine(url: str) -> Engine:
    """An engine with the pragmas and pool settings broadcaster relies on."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process (worker processes build their own after fork)."""
    return create_engine(url)


def describe_unreachable(url: str, exc: BaseException) -> str:
    """One line on why the database at ``url`` cannot be used (its password hidden)."""
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if path.name and not path.parent.exists():
            return (
                f"the directory {path.parent} of the SQLite database does not exist "
                f"(BROADCASTER_DATABASE_URL={shown}): create it or point the URL elsewhere"
            )
    orig = getattr(exc, "orig", None) or exc
    reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return (
        f"cannot reach the database {shown}: {reason} "
        "(is it running? check BROADCASTER_DATABASE_URL)"
    )


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``, the newest by default (idempotent; run on every start)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["engine"] = engine_for(url)
    command.upgrade(cfg, revision)

"""Alembic environment: runs on the engine handed in by ``store.db.upgrade`` (or the URL)."""

from __future__ import annotations

from alembic import context

from broadcaster.store.db import create_engine
from broadcaster.store.models import metadata

config = context.config
engine = config.attributes.get("engine") or create_engine(
    config.get_main_option("sqlalchemy.url") or ""
)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=engine.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()

"""The baseline a hand-rolled script would be: one Celery task per SMS, one HTTP POST each.

Two tasks:

- ``naive.send_one``: POST only, nothing read or recorded. A lower bound on what a
  task-per-message sender costs; no real sender can skip knowing what it sent.
- ``naive.send_message``: what such scripts actually do per message: read the message row,
  POST it, write back status and gateway id (SQLAlchemy Core, the same database and tables
  broadcaster uses). This is the like-for-like comparison.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import requests
import sqlalchemy as sa
from celery import Celery

from broadcaster.store.models import messages

app = Celery("naive", broker=os.environ["NAIVE_BROKER"])
app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=4, task_acks_late=True)
_session = requests.Session()
_engine: sa.Engine | None = None


def _db() -> sa.Engine:
    global _engine
    if _engine is None:  # after the fork: one engine per worker process
        url = os.environ["NAIVE_DATABASE_URL"]
        # SQLite's busy timeout; PostgreSQL waits on its row locks by itself
        args = {"timeout": 60} if url.startswith("sqlite") else {}
        _engine = sa.create_engine(url, connect_args=args)
    return _engine


@app.task(name="naive.send_one")
def send_one(base_url: str, api_key: str, msg: dict) -> None:
    _session.post(
        f"{base_url}/messages", json=msg, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
    )


@app.task(name="naive.send_message")
def send_message(base_url: str, api_key: str, sender: str, message_id: int) -> None:
    with _db().begin() as conn:
        row = conn.execute(
            sa.select(messages.c.recipient, messages.c.text).where(messages.c.id == message_id)
        ).one()
    reply = _session.post(
        f"{base_url}/messages",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=10,
        json={"from": sender, "to": row.recipient, "text": row.text, "externalId": str(message_id)},
    )
    with _db().begin() as conn:
        conn.execute(
            sa.update(messages)
            .where(messages.c.id == message_id)
            .values(
                status="SENT",
                gateway_id=reply.json()["data"]["id"],
                sent_at=datetime.now(UTC).replace(tzinfo=None),
            )
        )

"""Celery tasks with stable names (``workers.tasks.*``): parse arguments, call a use case, return.

Admin scripts call the control tasks by name, e.g.
``app.send_task("workers.tasks.suspend_broadcast", args=[42])``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown

from broadcaster import wiring
from broadcaster.config import get_settings
from broadcaster.domain.wire import to_wire
from broadcaster.services import control, poller, sending
from broadcaster.store.db import Engine
from workers import heap, runtime
from workers.celery_app import app

log = logging.getLogger(__name__)


class CeleryQueue:
    """The service layer's TaskQueue, backed by Celery."""

    def send_chunk(self, broadcast_id: int, ids: list[int], countdown_s: float = 0.0) -> None:
        send_chunk.apply_async(args=[broadcast_id, ids], countdown=countdown_s or None)


QUEUE = CeleryQueue()


def _engine() -> Engine:
    return wiring.engine(get_settings())


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    runtime.reset_after_fork()
    heap.settle()  # the parent's imports are start-up's heap: out of every collection from here


@worker_process_shutdown.connect
def _before_exit(**_: Any) -> None:
    runtime.shutdown()


@app.task(name="workers.tasks.send_chunk", acks_late=True)
def send_chunk(broadcast_id: int, ids: list[int]) -> dict[str, Any]:
    outcome = runtime.run(sending.send_chunk(runtime.context(QUEUE), broadcast_id, ids))
    return {
        "sent": outcome.sent,
        "failed": outcome.failed,
        "unknown": outcome.unknown,
        "handed_back": outcome.handed_back,
        "stopped": outcome.stopped,
    }


@app.task(name="workers.tasks.tick", acks_late=True)
def tick() -> dict[str, Any]:
    report = runtime.run(poller.tick(_engine(), get_settings(), QUEUE, runtime.provider_for))
    return report.__dict__


@app.task(name="workers.tasks.start_broadcast")
def start_broadcast(broadcast_id: int) -> bool:
    return control.start(_engine(), get_settings(), QUEUE, broadcast_id)


@app.task(name="workers.tasks.suspend_broadcast")
def suspend_broadcast(broadcast_id: int) -> str:
    return control.suspend(_engine(), broadcast_id).status


@app.task(name="workers.tasks.resume_broadcast")
def resume_broadcast(broadcast_id: int) -> str:
    return control.resume(_engine(), get_settings(), QUEUE, broadcast_id).status


@app.task(name="workers.tasks.stop_broadcast")
def stop_broadcast(broadcast_id: int) -> dict[str, Any]:
    # The task's result keeps its names (id, status, cancelled): admin scripts read them.
    return asdict(control.stop(_engine(), broadcast_id))


@app.task(name="workers.tasks.delete_broadcast")
def delete_broadcast(broadcast_id: int) -> dict[str, Any]:
    # The task's result keeps its names (id, status, messages_removed): admin scripts read them.
    return asdict(control.delete(_engine(), broadcast_id))


@app.task(name="workers.tasks.deliver_callbacks", acks_late=True)
def deliver_callbacks() -> dict[str, int]:
    from broadcaster.services.client_callbacks import deliver_pending
    from broadcaster.webhooks.http import HttpWebhookTransport

    settings = get_settings()
    transport = HttpWebhookTransport(runtime.callback_session(), settings.callback_timeout_s)
    return runtime.run(deliver_pending(_engine(), settings, transport)).as_dict()


# ---------------------------------------------------------------------------- admin task API
# For admin scripts (docs/tasks.md). Results are kept in the Redis result backend for
# ``result_expires`` so a script can ``.get()`` them. A create delivered twice (same task id: a
# worker died before acknowledging it) returns the broadcast its first run made.


@app.task(name="workers.tasks.create_broadcast_from_file", bind=True, ignore_result=False)
def create_broadcast_from_file(
    self: Any,
    path: str,
    sender: str,
    text: str | None,
    name: str | None = None,
    at: str | None = None,
    tz: str = "UTC",
    region: str | None = None,
    sheet: str | None = None,
    workspace: str = "default",
) -> dict[str, Any]:
    from broadcaster.services.broadcasts import NewBroadcast, create_from_file
    from broadcaster.services.ledger import create_for_task

    req = NewBroadcast(
        sender=sender, text=text, name=name, at=at, tz=tz, region=region, workspace=workspace
    )
    engine = _engine()
    made = create_for_task(
        engine,
        self.request.id,
        path,
        lambda on_publish: create_from_file(
            engine, get_settings(), path, req, sheet=sheet, on_publish=on_publish
        ),
    )
    out: dict[str, Any] = to_wire(made)
    return out


@app.task(name="workers.tasks.create_broadcast_from_json", bind=True, ignore_result=False)
def create_broadcast_from_json(
    self: Any, payload: dict[str, Any], workspace: str = "default"
) -> dict[str, Any]:
    from broadcaster.services.ledger import create_for_task
    from broadcaster.services.requests import create_from_payload

    engine = _engine()
    made = create_for_task(
        engine,
        self.request.id,
        "payload",
        lambda on_publish: create_from_payload(
            engine, get_settings(), payload, workspace=workspace, on_publish=on_publish
        ),
    )
    out: dict[str, Any] = to_wire(made)
    return out


@app.task(name="workers.tasks.get_broadcast", ignore_result=False)
def get_broadcast(broadcast_id: int, workspace: str | None = None) -> dict[str, Any]:
    from broadcaster.services.broadcasts import get_broadcast as get

    out: dict[str, Any] = to_wire(get(_engine(), int(broadcast_id), workspace))
    return out

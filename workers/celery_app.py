"""The Celery application: Redis broker, four queues, settings chosen for long batched tasks."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from broadcaster.config import get_settings
from broadcaster.constants import DEFAULT_REDIS_URL

#: Chunk tasks carry hundreds of sends and may run for seconds; a worker should hold no more
#: than the one it is running, or a killed worker takes a queue of others down with it.
PREFETCH_MULTIPLIER = 1
#: Redis redelivers an unacknowledged task after this long (acks_late: a task is acknowledged
#: when it ends). It must exceed the longest task *and* the longest countdown (ETA tasks are also
#: held unacknowledged), or Redis hands a running task to a second worker. Chunk tasks hand back
#: after ~2 s of throttling and countdowns are seconds, so 10 minutes is a wide margin; lost work
#: is found sooner anyway by the status poller (stale dispatch stamps, expired leases).
VISIBILITY_TIMEOUT_S = 600

#: Seconds between redis-py's PINGs on an idle broker or result connection: a connection that a
#: Redis restart cut is found and replaced before a task is acknowledged on it.
REDIS_HEALTH_CHECK_S = 10
#: Socket deadline of a broker call, so a Redis that vanished mid-call is a clean error, not a hang.
REDIS_SOCKET_TIMEOUT_S = 30

QUEUES = ("send", "control", "ingest", "poll")
#: How long an admin task's result waits in Redis for its script to read it.
RESULT_EXPIRES_S = 3600


def make_app() -> Celery:
    settings = get_settings()
    broker = settings.redis_url or DEFAULT_REDIS_URL
    app = Celery("broadcaster", broker=broker, include=["workers.tasks"])
    app.conf.update(
        task_queues=[Queue(q) for q in QUEUES],
        task_default_queue="control",
        task_routes={
            "workers.tasks.send_chunk": {"queue": "send"},
            "workers.tasks.tick": {"queue": "poll"},
            "workers.tasks.deliver_callbacks": {"queue": "poll"},
            "workers.tasks.create_broadcast_from_file": {"queue": "ingest"},
            "workers.tasks.create_broadcast_from_json": {"queue": "ingest"},
        },
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=PREFETCH_MULTIPLIER,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT_S,
            "health_check_interval": REDIS_HEALTH_CHECK_S,
            "socket_keepalive": True,
            "socket_timeout": REDIS_SOCKET_TIMEOUT_S,
            "retry_on_timeout": True,
        },
        # Ride out a Redis restart however long it takes (Celery's default gives up after 100
        # tries); a consumer that dies anyway is started again by broadcaster/cli/supervise.py.
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        redis_backend_health_check_interval=REDIS_HEALTH_CHECK_S,
        redis_socket_keepalive=True,
        redis_retry_on_timeout=True,
        task_ignore_result=True,
        # Admin tasks (docs/tasks.md) keep their results here so scripts can .get() them; every
        # other task ignores its result, so the send path writes nothing to it.
        result_backend=broker,
        result_expires=RESULT_EXPIRES_S,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        beat_schedule={
            "tick": {
                "task": "workers.tasks.tick",
                "schedule": settings.tick_s,
                "options": {"expires": settings.tick_s * 2},
            },
            # Client callbacks outbox: about every second; a pass left over is dropped, not queued.
            "deliver-callbacks": {
                "task": "workers.tasks.deliver_callbacks",
                "schedule": 1.0,
                "options": {"expires": 2.0},
            },
        },
    )
    return app


app = make_app()

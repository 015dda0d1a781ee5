#!/usr/bin/env python3
"""An admin script that drives broadcaster through its Celery tasks, called by name.

It needs nothing of broadcaster: only ``celery[redis]`` and the Redis URL the workers use
(``BROADCASTER_REDIS_URL``). Every task is sent with ``ignore_result=False`` and answered through
the Redis result backend, so each step prints the worker's answer (docs/tasks.md)::

    BROADCASTER_REDIS_URL=redis://127.0.0.1:6379/0 \\
        python examples/admin_script.py /data/lists/march.csv --from 55501 --text "Hi {name}"

Steps: create a broadcast from a file (the path is read by the ingest worker, so it must exist on
*its* machine), poll it until it runs, suspend it, resume it, stop it, show the final state. Each
answer is one JSON line on stdout. A refused step prints the worker's reason and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from celery import Celery

#: The queue each task is consumed from (workers read only these queues).
QUEUE_OF = {
    "create_broadcast_from_file": "ingest",
    "create_broadcast_from_json": "ingest",
    "get_broadcast": "control",
    "start_broadcast": "control",
    "suspend_broadcast": "control",
    "resume_broadcast": "control",
    "stop_broadcast": "control",
    "delete_broadcast": "control",
}


def connect(redis_url: str) -> Celery:
    """A bare Celery client: the same Redis as broker (to send) and result backend (to answer)."""
    return Celery("broadcaster-admin", broker=redis_url, backend=redis_url)


def call(app: Celery, task: str, *args: Any, timeout_s: float = 120.0, **kwargs: Any) -> Any:
    """Run ``workers.tasks.<task>`` on a worker and return its answer; a refusal raises.

    The exception that comes back carries the worker's error type name (NotFound, InputError,
    FileRejected, InvalidTransition) and its message.
    """
    result = app.send_task(
        f"workers.tasks.{task}", args=args, kwargs=kwargs, queue=QUEUE_OF[task], ignore_result=False
    )
    try:
        return result.get(timeout=timeout_s)
    finally:
        result.forget()  # answered: drop it from Redis now rather than at result_expires


def show(step: str, answer: Any) -> None:
    print(json.dumps({"step": step, "answer": answer}, ensure_ascii=False), flush=True)


def wait_for(
    app: Celery, broadcast_id: int, statuses: set[str], timeout_s: float, poll_s: float
) -> dict[str, Any]:
    """Poll ``get_broadcast`` until the status is one of ``statuses``."""
    deadline = time.monotonic() + timeout_s
    while True:
        view: dict[str, Any] = call(app, "get_broadcast", broadcast_id)
        if view["status"] in statuses or time.monotonic() > deadline:
            return view
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "file", help="recipient file (CSV, TXT, XLSX, JSON), as the ingest worker sees it"
    )
    parser.add_argument("--from", dest="sender", required=True, help="sender code (registered)")
    parser.add_argument("--text", required=True, help="template: {0}, <0> or {column}")
    parser.add_argument("--name", help="broadcast name")
    parser.add_argument(
        "--redis-url", default=os.environ.get("BROADCASTER_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument(
        "--pause-s", type=float, default=2.0, help="seconds between the control steps"
    )
    parser.add_argument("--timeout-s", type=float, default=60.0, help="longest wait for a state")
    args = parser.parse_args(argv)

    app = connect(args.redis_url)
    try:
        created = call(
            app, "create_broadcast_from_file", args.file, args.sender, args.text, name=args.name
        )
        show("create_broadcast_from_file", created)
        bid = created["id"]
        # The scheduler (beat) starts it within a tick or two.
        show("get_broadcast", wait_for(app, bid, {"RUNNING", "COMPLETED"}, args.timeout_s, 0.5))
        time.sleep(args.pause_s)
        show("suspend_broadcast", call(app, "suspend_broadcast", bid))
        show("get_broadcast", call(app, "get_broadcast", bid))
        time.sleep(args.pause_s)
        show("resume_broadcast", call(app, "resume_broadcast", bid))
        time.sleep(args.pause_s)
        show("stop_broadcast", call(app, "stop_broadcast", bid))
        show("get_broadcast", call(app, "get_broadcast", bid))
    except Exception as exc:  # the worker's refusal (or a timeout): say it, exit non-zero
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

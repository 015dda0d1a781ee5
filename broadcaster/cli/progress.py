"""``--wait``: follow a broadcast until it ends, as a progress bar or JSON lines."""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from broadcaster.cli._output import console, engine
from broadcaster.domain.states import IN_NETWORK_STATES, BroadcastStatus
from broadcaster.services.broadcasts import get_broadcast

ENDED = {
    BroadcastStatus.COMPLETED.value,
    BroadcastStatus.STOPPED.value,
    BroadcastStatus.DELETED.value,
}
POLL_S = 0.5
#: After the last send, wait this long at most for receipts to settle.
RECEIPT_GRACE_S = 15.0


def _in_network(view: dict[str, Any]) -> int:
    return sum(n for s, n in view["counts"].items() if s in {x.value for x in IN_NETWORK_STATES})


def _settled(view: dict[str, Any], ended_at: float | None) -> bool:
    if view["status"] not in ENDED:
        return False
    grace_over = ended_at is not None and time.monotonic() - ended_at > RECEIPT_GRACE_S
    return _in_network(view) == 0 or grace_over


def wait_for(broadcast_id: int, as_json: bool, timeout_s: float | None = None) -> dict[str, Any]:
    """Poll until the broadcast ended and its receipts settled (or a grace period passed)."""
    eng = engine()
    started = time.monotonic()
    ended_at: float | None = None
    view = get_broadcast(eng, broadcast_id)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
        transient=False,
    ) as progress:
        bar = progress.add_task(
            f"broadcast {broadcast_id}", total=max(1, view["expectedMessages"]), detail=""
        )
        while True:
            view = get_broadcast(eng, broadcast_id)
            if view["status"] in ENDED and ended_at is None:
                ended_at = time.monotonic()
            elapsed = max(0.001, time.monotonic() - started)
            detail = (
                f"{view['status']} sent {view['sentMessages']} delivered {view['deliveredMessages']} "
                f"failed {view['failedMessages']} · {view['sentMessages'] / elapsed:.0f} msg/s"
            )
            unsent = view["counts"].get("QUEUE", 0) + view["counts"].get("DEQUEUED", 0)
            progress.update(bar, completed=view["expectedMessages"] - unsent, detail=detail)
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "progress": {
                                k: view[k]
                                for k in (
                                    "status",
                                    "expectedMessages",
                                    "sentMessages",
                                    "deliveredMessages",
                                    "failedMessages",
                                )
                            }
                        }
                    ),
                    err=True,
                )
            if _settled(view, ended_at) or (timeout_s and time.monotonic() - started > timeout_s):
                return view
            time.sleep(POLL_S)

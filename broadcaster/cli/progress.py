"""Progress for people: ``--wait`` follows a broadcast until it ends (a bar, or JSON lines), and
an import that takes more than a second shows the rows read so far."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from broadcaster.cli._output import console, engine, err_console, safe
from broadcaster.domain.states import (
    IN_NETWORK_STATES,
    UNSENT_STATES,
    BroadcastStatus,
    MessageStatus,
)
from broadcaster.domain.wire import to_wire
from broadcaster.errors import StackUnavailable
from broadcaster.services.broadcasts import get_broadcast
from broadcaster.services.views import BroadcastDetail

ENDED = {
    BroadcastStatus.COMPLETED.value,
    BroadcastStatus.STOPPED.value,
    BroadcastStatus.DELETED.value,
}
POLL_S = 0.5
#: After the last send, wait this long at most for receipts to settle.
RECEIPT_GRACE_S = 15.0


def _in_network(view: BroadcastDetail) -> int:
    return sum(n for s, n in view.counts.items() if s in {x.value for x in IN_NETWORK_STATES})


def _settled(view: BroadcastDetail, ended_at: float | None) -> bool:
    if view.status not in ENDED:
        return False
    grace_over = ended_at is not None and time.monotonic() - ended_at > RECEIPT_GRACE_S
    return _in_network(view) == 0 or grace_over


def _untouched(view: BroadcastDetail) -> bool:
    """Nothing of the broadcast left the queue: no worker (or no beat) has taken it yet."""
    return (
        view.status not in ENDED
        and view.counts.get(MessageStatus.QUEUE, 0) == view.expected_messages
    )


def wait_for(
    broadcast_id: int,
    as_json: bool,
    timeout_s: float | None = None,
    *,
    quiet: bool = False,
    idle_limit_s: float | None = None,
) -> BroadcastDetail:
    """Poll until the broadcast ended and its receipts settled (or a grace period passed).

    ``quiet``: neither a bar nor JSON progress lines (a caller that prints its own result).
    ``idle_limit_s``: StackUnavailable when nothing has left the queue by then (no workers).
    """
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
        disable=as_json or quiet,
        transient=False,
    ) as progress:
        bar = progress.add_task(
            f"broadcast {broadcast_id}", total=max(1, view.expected_messages), detail=""
        )
        while True:
            view = get_broadcast(eng, broadcast_id)
            if view.status in ENDED and ended_at is None:
                ended_at = time.monotonic()
            elapsed = max(0.001, time.monotonic() - started)
            detail = (
                f"{view.status} sent {view.sent_messages} delivered {view.delivered_messages} "
                f"failed {view.failed_messages} · {view.sent_messages / elapsed:.0f} msg/s"
            )
            unsent = sum(view.counts.get(s, 0) for s in UNSENT_STATES)
            progress.update(bar, completed=view.expected_messages - unsent, detail=detail)
            if as_json and not quiet:
                wired = to_wire(view)
                click.echo(
                    json.dumps(
                        {
                            "progress": {
                                k: wired[k]
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
            waited = time.monotonic() - started
            if idle_limit_s is not None and waited > idle_limit_s and _untouched(view):
                raise StackUnavailable(
                    f"broadcast {broadcast_id} is stored, but no worker took it in "
                    f"{idle_limit_s:g} s: are the workers and the beat running (broadcaster dev)?"
                )
            time.sleep(POLL_S)


#: An import shows its progress only once it has taken this long (a small file: no bar at all).
IMPORT_BAR_AFTER_S = 1.0


class ImportBar:
    """The ``on_progress`` hook of an import: after :data:`IMPORT_BAR_AFTER_S`, a bar on stderr
    with the rows read (stdout stays the command's result); nothing when disabled (``--json``)."""

    def __init__(self, source: str, *, disabled: bool = False) -> None:
        self.source, self.disabled = source, disabled
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None

    def __call__(self, rows: int) -> None:
        if self.disabled or time.monotonic() - self.started < IMPORT_BAR_AFTER_S:
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]importing {task.description}"),
                BarColumn(bar_width=20),
                TextColumn("{task.completed:,} rows"),
                TimeElapsedColumn(),
                console=err_console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(safe(Path(self.source).name), total=None)
        self._progress.update(self._task, completed=rows)

    def __enter__(self) -> ImportBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

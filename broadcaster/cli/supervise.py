"""Run a child process and start it again whenever it dies: the project's own supervisor.

Celery's worker can die on a broker restart (kombu 5.x: ``AttributeError: 'NoneType' object has no
attribute 'hostname'`` in ``_connparams`` when a task is acknowledged on a channel whose connection
is already gone; celery/kombu#582 and kin). No setting prevents every such exit, so
``broadcaster worker`` and ``broadcaster beat`` run Celery as a child of this loop: a death is
logged with its exit code and the child is started again after a backoff (1 s doubling to 30 s,
back to 1 s once a child has run for a minute). Work is never lost meanwhile: tasks are
acknowledged late, messages are leased in the database, and the poller recovers the rest.

SIGTERM and SIGINT are passed to the child and end the loop: a service manager's stop still
stops the process.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger("broadcaster.supervise")

#: First pause before a dead child is started again, doubling on every quick death...
MIN_BACKOFF_S = 1.0
#: ...up to this pause.
MAX_BACKOFF_S = 30.0
#: A child that ran this long before dying was healthy: the next pause is the first one again.
STABLE_S = 60.0
#: How long a stopping child gets between SIGTERM and SIGKILL.
STOP_GRACE_S = 30.0


def describe_exit(returncode: int) -> str:
    """``exited with code 1`` or ``killed by SIGKILL``, for the log line that says why."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class Backoff:
    """Exponential pauses between restarts, reset by a child that stayed up ``stable_s``."""

    min_s: float = MIN_BACKOFF_S
    max_s: float = MAX_BACKOFF_S
    stable_s: float = STABLE_S
    current_s: float = MIN_BACKOFF_S

    def next_pause(self, ran_s: float) -> float:
        """The pause before the next start, given how long the dead child ran (seconds)."""
        if ran_s >= self.stable_s:
            self.current_s = self.min_s
        pause = self.current_s
        self.current_s = min(self.max_s, self.current_s * 2)
        return pause


class Supervisor:
    """Keep ``argv`` running until told to stop (SIGTERM/SIGINT); returns the last exit code."""

    def __init__(self, argv: Sequence[str], name: str, backoff: Backoff | None = None) -> None:
        self.argv, self.name = list(argv), name
        self.backoff = backoff or Backoff()
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    def install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def run(self) -> int:
        returncode = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            self.child = subprocess.Popen(self.argv)
            self.starts += 1
            log.info("%s started (pid %s, start %d)", self.name, self.child.pid, self.starts)
            returncode = self._wait()
            if self.stopping.is_set():
                break
            pause = self.backoff.next_pause(time.monotonic() - started)
            log.error(
                "%s %s after %.1f s; starting it again in %.0f s (its log above says why)",
                self.name,
                describe_exit(returncode),
                time.monotonic() - started,
                pause,
            )
            self.stopping.wait(pause)
        log.info("%s stopped (%s)", self.name, describe_exit(returncode))
        return returncode

    def _wait(self) -> int:
        assert self.child is not None
        while True:
            try:
                return self.child.wait(timeout=1.0 if not self.stopping.is_set() else STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                if self.stopping.is_set():  # the grace is over
                    self.child.kill()


def supervise(argv: Sequence[str], name: str) -> int:
    """Run ``argv`` under a :class:`Supervisor` with signal handling; the exit code to return."""
    supervisor = Supervisor(argv, name)
    supervisor.install_signals()
    code = supervisor.run()
    return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code

"""Run a child process and start it again whenever it dies or hangs: the project's own supervisor.

Celery's worker can die on a broker restart (kombu 5.x: ``AttributeError: 'NoneType' object has no
attribute 'hostname'`` in ``_connparams`` when a task is acknowledged on a channel whose connection
is already gone; celery/kombu#582 and kin). No setting prevents every such exit, so
``broadcaster worker`` and ``broadcaster beat`` run Celery as a child of this loop: a death is
logged with its exit code and the child is started again after a backoff (1 s doubling to 30 s,
back to 1 s once a child has run for a minute). Work is never lost meanwhile: tasks are
acknowledged late, messages are leased in the database, and the poller recovers the rest.

A worker can also stay alive and stop consuming, silently, after broker reconnects (Celery's bug
class of celery/celery#8030, #9054, #10205; seen once in CI's test_outages). So a worker child is
also *probed*: every ``interval_s`` the supervisor asks the child's Celery node for a ping through
the broker (``app.control.ping``), which the worker's consumer answers from the same event loop and
broker connection that take its tasks; a process that merely exists does not answer. Only when
Redis itself answers us does a missing answer count: ``failures`` missing answers in a row, outside
the ``grace_s`` after the child's start and after a broker outage, and the child is stopped
(SIGTERM, SIGKILL with its pool after ``kill_grace_s``) and started again by the loop above. While
Redis is down nothing is judged: the child reconnects by itself, and the grace starts again once
Redis answers. The beat is not probed: it consumes nothing (the bug class is a consumer's), has no
control mailbox to answer a ping, and Celery logs each tick it fails to publish; a beat that hangs
without dying is not detected here.

SIGTERM and SIGINT are passed to the child and end the loop: a service manager's stop still
stops the process.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

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


class Verdict(enum.Enum):
    """What one liveness probe found."""

    #: The child's Celery node answered through the broker.
    ALIVE = "alive"
    #: Redis answered us, the child's node did not: one failure.
    SILENT = "silent"
    #: Redis did not answer us (or our own ping could not get through it): no verdict on the child.
    BROKER_DOWN = "broker down"


class Probe(Protocol):
    """Asks a child whether it is alive; one blocking call, bounded in time."""

    #: What is asked, for the log (``Celery node send@host``).
    target: str

    def check(self) -> Verdict: ...


@dataclass(frozen=True)
class LivenessPolicy:
    """How often to probe and how much silence stops a child (``BROADCASTER_LIVENESS_*``)."""

    interval_s: float = 15.0
    failures: int = 3
    #: Silence is not counted this long after a start or after the broker was seen down.
    grace_s: float = 60.0
    #: Between the SIGTERM and the SIGKILL of a child found hung.
    kill_grace_s: float = STOP_GRACE_S


class Liveness:
    """Consecutive probe failures of one child, judged from verdicts and times (pure logic)."""

    def __init__(self, policy: LivenessPolicy, now: float) -> None:
        self.policy = policy
        self.failed = 0
        self.quiet_until = now + policy.grace_s
        self.next_at = now + policy.interval_s
        self.broker_down = False

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def record(self, verdict: Verdict, now: float) -> bool:
        """Count the verdict of a probe asked at ``now``; True when the child is to be stopped and
        started again."""
        self.next_at = now + self.policy.interval_s
        self.broker_down = verdict is Verdict.BROKER_DOWN
        if verdict is Verdict.BROKER_DOWN:  # no verdict; the child reconnects, give it time
            self.failed = 0
            self.quiet_until = now + self.policy.grace_s
        elif verdict is Verdict.ALIVE:
            self.failed = 0
        elif now >= self.quiet_until:
            self.failed += 1
        return self.failed >= self.policy.failures


class Supervisor:
    """Keep ``argv`` running until told to stop (SIGTERM/SIGINT); returns the last exit code.

    With a ``probe``, a child that stays alive but stops answering it is stopped and started
    again (``policy``: :class:`LivenessPolicy`).
    """

    def __init__(
        self,
        argv: Sequence[str],
        name: str,
        backoff: Backoff | None = None,
        *,
        probe: Probe | None = None,
        policy: LivenessPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.argv, self.name = list(argv), name
        self.backoff = backoff or Backoff()
        self.probe, self.policy, self.clock = probe, policy or LivenessPolicy(), clock
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.liveness: Liveness | None = None
        self.starts = 0
        #: Children stopped because they stopped answering the probe.
        self.hung = 0
        #: How often a running child is looked at (its exit, a stop, a probe that is due).
        self.poll_s = 1.0
        self.stop_grace_s = STOP_GRACE_S

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
            if self.probe is not None:
                self.liveness = Liveness(self.policy, self.clock())
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
        child = self.child
        assert child is not None
        kill_at: float | None = None
        while True:
            try:
                return child.wait(timeout=self.poll_s)
            except subprocess.TimeoutExpired:
                pass
            if self.stopping.is_set():  # the child has its grace from the first look since
                now = time.monotonic()
                if kill_at is None:
                    kill_at = now + self.stop_grace_s
                elif now >= kill_at:
                    kill_tree(child)
                    kill_at = float("inf")
            elif self._hung():
                return self._stop_hung()

    def _hung(self) -> bool:
        """Probe the child when a probe is due; True when it has been silent too long."""
        liveness, probe = self.liveness, self.probe
        if liveness is None or probe is None or not liveness.due(self.clock()):
            return False
        was_down, asked_at = liveness.broker_down, self.clock()
        verdict = probe.check()
        if self.stopping.is_set():
            return False
        hung = liveness.record(verdict, asked_at)  # a ping asked during a grace does not count
        if verdict is Verdict.BROKER_DOWN and not was_down:
            log.warning(
                "%s: Redis does not answer; not judging %s until %.0f s after it does",
                self.name,
                probe.target,
                self.policy.grace_s,
            )
        elif verdict is not Verdict.BROKER_DOWN and was_down:
            log.info("%s: Redis answers again", self.name)
        if verdict is Verdict.SILENT:
            log.log(
                logging.WARNING if liveness.failed else logging.INFO,
                "%s: %s did not answer a ping while Redis answers (%s)",
                self.name,
                probe.target,
                f"{liveness.failed} of {self.policy.failures}" if liveness.failed else "in grace",
            )
        return hung

    def _stop_hung(self) -> int:
        child = self.child
        assert child is not None
        grace = self.policy.kill_grace_s
        self.hung += 1
        log.error(
            "%s: %s did not answer %d pings in a row (every %.0f s) while Redis answered: the "
            "process is alive but not consuming; stopping it (SIGTERM, SIGKILL after %.0f s) "
            "to start it again",
            self.name,
            self.probe.target if self.probe else "the child",
            self.policy.failures,
            self.policy.interval_s,
            grace,
        )
        child.terminate()
        try:
            return child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            kill_tree(child)
            return child.wait()


def kill_tree(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child and every process under it (a Celery worker's pool), left to run a task
    with nobody to report to otherwise."""
    import psutil

    try:
        descendants = psutil.Process(child.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    child.kill()
    for proc in descendants:
        with contextlib.suppress(psutil.Error):
            proc.kill()


class CeleryPing:
    """The probe of a Celery worker: ``app.control.ping`` to its node through the broker, asked
    only when Redis answers a PING of our own first.

    The worker's consumer answers control messages from the event loop and broker connection
    that take its tasks, so a consumer that hangs or lost that connection does not answer. The
    ping runs in a daemon thread with a deadline: kombu retries a publish for ever while the
    broker is away, which must not stall the supervisor.
    """

    def __init__(self, broker_url: str, nodename: str, timeout_s: float = 5.0) -> None:
        self.broker_url, self.nodename, self.timeout_s = broker_url, nodename, timeout_s
        self.target = f"Celery node {nodename}"
        self._app: Any = None
        self._redis: Any = None
        self._running: threading.Thread | None = None

    def _broker_answers(self) -> bool:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if self._redis is None:
            self._redis = redis.Redis.from_url(
                self.broker_url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def _ping(self, answered: list[bool]) -> None:
        if self._app is None:
            from celery import Celery

            self._app = Celery(
                "broadcaster-supervisor", broker=self.broker_url, set_as_current=False
            )
            self._app.conf.broker_connection_timeout = self.timeout_s
            self._app.conf.broker_transport_options = {
                "socket_timeout": self.timeout_s + 5,
                "socket_connect_timeout": self.timeout_s,
            }
        with self._app.connection_for_write() as conn:
            replies = self._app.control.ping(
                destination=[self.nodename], timeout=self.timeout_s, connection=conn
            )
        answered.append(any(self.nodename in reply for reply in replies or ()))

    def check(self) -> Verdict:
        if not self._broker_answers():
            return Verdict.BROKER_DOWN
        if self._running is not None and self._running.is_alive():
            return Verdict.BROKER_DOWN  # our previous ping is still stuck in the broker
        answered: list[bool] = []

        def ping() -> None:
            try:
                self._ping(answered)
            except Exception:  # a broker error mid-ping: decided below, from Redis
                log.debug("liveness ping of %s failed", self.nodename, exc_info=True)

        self._running = threading.Thread(target=ping, name="liveness-ping", daemon=True)
        self._running.start()
        self._running.join(self.timeout_s + 10)
        if answered:
            return Verdict.ALIVE if answered[0] else Verdict.SILENT
        if self._running.is_alive() or not self._broker_answers():
            return Verdict.BROKER_DOWN
        return Verdict.SILENT


def supervise(
    argv: Sequence[str],
    name: str,
    *,
    probe: Probe | None = None,
    policy: LivenessPolicy | None = None,
) -> int:
    """Run ``argv`` under a :class:`Supervisor` with signal handling; the exit code to return."""
    supervisor = Supervisor(argv, name, probe=probe, policy=policy)
    supervisor.install_signals()
    code = supervisor.run()
    return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code

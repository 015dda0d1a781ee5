"""The supervisor's pure parts (backoff between restarts, the words for an exit, the liveness
verdicts) and its loop around real children, driven by a fake probe."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable

import psutil
import pytest

from broadcaster.cli.supervise import (
    Backoff,
    Liveness,
    LivenessPolicy,
    Supervisor,
    Verdict,
    describe_exit,
)

A, S, D = Verdict.ALIVE, Verdict.SILENT, Verdict.BROKER_DOWN


@pytest.mark.parametrize(
    ("runs_s", "pauses_s"),
    [
        ((0.1, 0.1, 0.1, 0.1), (1, 2, 4, 8)),  # quick deaths double the pause
        ((0.1,) * 8, (1, 2, 4, 8, 16, 30, 30, 30)),  # up to the ceiling
        ((0.1, 0.1, 120.0, 0.1), (1, 2, 1, 2)),  # a child that ran a while resets it
    ],
)
def test_backoff(runs_s, pauses_s):
    backoff = Backoff(min_s=1, max_s=30, stable_s=60)
    assert tuple(backoff.next_pause(r) for r in runs_s) == pauses_s


@pytest.mark.parametrize(
    ("code", "words"),
    [(1, "exited with code 1"), (0, "exited with code 0"), (-9, "killed by SIGKILL")],
)
def test_describe_exit(code, words):
    assert describe_exit(code) == words


def test_a_dying_child_is_started_again_until_stopped(tmp_path):
    """A real child that dies at once is started again; a stop ends the loop."""
    marker = tmp_path / "starts"
    argv = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')"]
    sup = Supervisor(argv, "test", Backoff(min_s=0.01, max_s=0.02, stable_s=60))

    def stop_after_three(_code: int) -> None:
        if marker.exists() and len(marker.read_text()) >= 3:
            sup.stopping.set()

    original = sup._wait

    def waiting() -> int:
        code = original()
        stop_after_three(code)
        return code

    sup._wait = waiting  # type: ignore[method-assign]
    assert sup.run() == 0
    assert sup.starts == 3 and marker.read_text() == "xxx"


def _judge(verdicts: Iterable[Verdict], policy: LivenessPolicy, every_s: float = 1.0) -> list[bool]:
    """Feed one verdict per ``every_s`` seconds to a child started at 0: the restart decisions."""
    liveness = Liveness(policy, now=0.0)
    return [liveness.record(v, now=(i + 1) * every_s) for i, v in enumerate(verdicts)]


@pytest.mark.parametrize(
    ("verdicts", "restart_at"),
    [
        ((S, S, S), 2),  # three silences in a row
        ((S, S, A, S, S, A, S, S, S), 8),  # an answer starts the count again
        ((A,) * 10, None),
        # Redis down: never a restart, and the count starts again (after the grace) once it is up
        ((S, S, D, D, D, D, D, D, D, D), None),
        ((S, S, D, S, S, S), 5),  # Redis back at 4 s: three new silences
    ],
)
def test_consecutive_silences_restart_only_while_redis_answers(verdicts, restart_at):
    decisions = _judge(verdicts, LivenessPolicy(interval_s=1, failures=3, grace_s=0.5))
    if restart_at is None:
        assert not any(decisions)
    else:
        assert decisions.index(True) == restart_at, decisions


def test_the_grace_starts_again_after_redis_was_down():
    """Celery reconnects with pauses after an outage: silence right after it is not counted."""
    liveness = Liveness(LivenessPolicy(interval_s=1, failures=3, grace_s=2), now=0.0)
    decisions = [liveness.record(v, now=i + 1.0) for i, v in enumerate((S, S, S, D, S, S, S))]
    # grace over at 2 s: 2 and 3 count; down at 4; 5 in the new grace (until 6), 6 and 7 count
    assert decisions == [False] * 7 and liveness.failed == 2
    assert liveness.record(S, now=8.0)


def test_no_silence_counts_during_the_startup_grace():
    """Celery takes a while to start: silence in the first ``grace_s`` is not held against it."""
    policy = LivenessPolicy(interval_s=1, failures=3, grace_s=5)
    decisions = _judge([S] * 8, policy)  # probes at 1..8 s; 5, 6, 7 count
    assert decisions.index(True) == 6, decisions


def test_a_probe_is_due_every_interval():
    liveness = Liveness(LivenessPolicy(interval_s=15, grace_s=60), now=100.0)
    assert not liveness.due(114.9) and liveness.due(115.0)
    liveness.record(A, now=116.0)
    assert not liveness.due(130.9) and liveness.due(131.0)


class FakeProbe:
    """Answers ``verdicts(n)`` to its n-th check, then runs ``after(n)``."""

    target = "fake node"

    def __init__(self, verdicts: Callable[[int], Verdict]) -> None:
        self.verdicts, self.calls = verdicts, 0
        self.after: Callable[[int], None] = lambda _n: None

    def check(self) -> Verdict:
        self.calls += 1
        verdict = self.verdicts(self.calls)
        self.after(self.calls)
        return verdict


def _sleeper(tmp_path, *, ignore_term: bool = False, grandchild: bool = False) -> list[str]:
    """A child that sleeps (writing its pid, and its grandchild's, to pids.txt)."""
    code = [
        "import os, signal, subprocess, sys, time",
        f"pids = open({str(tmp_path / 'pids.txt')!r}, 'a')",
        "pids.write(f'{os.getpid()}\\n'); pids.flush()",
    ]
    if ignore_term:
        code.append("signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    if grandchild:
        code += [
            "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])",
            "pids.write(f'g{g.pid}\\n'); pids.flush()",
        ]
    code.append("time.sleep(120)")
    return [sys.executable, "-c", "\n".join(code)]


def _supervisor(argv: list[str], probe: FakeProbe, **policy: float) -> Supervisor:
    sup = Supervisor(
        argv,
        "test",
        Backoff(min_s=0.01, max_s=0.02, stable_s=60),
        probe=probe,
        policy=LivenessPolicy(**{"interval_s": 0.05, "failures": 3, "grace_s": 0, **policy}),
    )
    sup.poll_s = 0.02
    return sup


def _stop(sup: Supervisor) -> None:
    sup._on_signal(signal.SIGTERM, None)  # what a service manager's stop does


def test_a_silent_child_is_stopped_and_started_again(tmp_path):
    """Three silences in a row while Redis answers: SIGTERM, and a new child."""
    probe = FakeProbe(lambda n: S)
    sup = _supervisor(_sleeper(tmp_path), probe, kill_grace_s=30)
    probe.after = lambda n: _stop(sup) if sup.starts == 2 else None
    t0 = time.monotonic()
    assert sup.run() == -signal.SIGTERM
    assert sup.starts == 2 and sup.hung == 1
    assert probe.calls == 4  # three on the first child, one on the second
    assert time.monotonic() - t0 < 20  # the SIGTERM was enough: no wait for the kill grace


def test_a_child_that_ignores_sigterm_is_killed_with_its_children(tmp_path):
    """A hung child may not act on SIGTERM: after the grace it and its pool get SIGKILL."""
    pids_file = tmp_path / "pids.txt"

    def silent_once_set_up(_n: int) -> Verdict:
        # Alive until the child ignores SIGTERM and its own child runs (its line is written
        # last): a SIGTERM before that would end it at once, under a loaded machine's slow start.
        ready = pids_file.exists() and "g" in pids_file.read_text()
        return S if ready else A

    probe = FakeProbe(silent_once_set_up)
    sup = _supervisor(
        _sleeper(tmp_path, ignore_term=True, grandchild=True), probe, kill_grace_s=0.5
    )
    codes: list[int] = []
    original = sup._stop_hung

    def stop_hung() -> int:
        codes.append(original())
        _stop(sup)
        return codes[-1]

    sup._stop_hung = stop_hung  # type: ignore[method-assign]
    sup.run()
    assert codes == [-signal.SIGKILL]
    pids = (tmp_path / "pids.txt").read_text().split()
    grandchild = int(next(p for p in pids if p.startswith("g"))[1:])
    assert _gone(grandchild, timeout_s=10), "the hung child's own child survived it"


def _gone(pid: int, timeout_s: float) -> bool:
    """The process has ended (a zombie nobody reaped yet counts: it runs nothing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_no_restart_while_redis_is_down(tmp_path):
    """Silent, but Redis does not answer either: the child is left to reconnect by itself."""
    verdicts = [S, S, D, D, D, D, D, D, D, D, D, D]
    probe = FakeProbe(lambda n: verdicts[min(n, len(verdicts)) - 1])
    sup = _supervisor(_sleeper(tmp_path), probe)
    probe.after = lambda n: _stop(sup) if n == 20 else None
    sup.run()
    assert sup.starts == 1 and sup.hung == 0
    assert len((tmp_path / "pids.txt").read_text().split()) == 1


def test_without_a_probe_a_live_child_is_left_alone(tmp_path):
    """The beat (and ``BROADCASTER_LIVENESS_PROBE=0``): only an exit restarts the child."""
    sup = Supervisor(_sleeper(tmp_path), "test")
    sup.poll_s = 0.02
    threading.Timer(1.0, _stop, (sup,)).start()
    assert sup.run() == -signal.SIGTERM
    assert sup.starts == 1 and sup.hung == 0


def test_a_stopped_child_gets_its_grace_before_sigkill(tmp_path):
    """SIGTERM to the supervisor: the child's warm shutdown (here 1.5 s) is not cut short."""
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(1.5), sys.exit(7)))\n"
        "time.sleep(120)"
    )
    sup = Supervisor([sys.executable, "-c", code], "test")
    sup.poll_s, sup.stop_grace_s = 0.05, 30
    threading.Timer(1.0, _stop, (sup,)).start()
    assert sup.run() == 7

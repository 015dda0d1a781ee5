"""The supervisor's pure parts: backoff between restarts and the words for an exit."""

from __future__ import annotations

import sys

import pytest

from broadcaster.cli.supervise import Backoff, Supervisor, describe_exit


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

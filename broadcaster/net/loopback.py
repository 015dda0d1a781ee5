"""Processes on loopback: a free port, waiting until something listens, a private redis-server.

``broadcaster dev`` (cli/devstack.py), the benches and the tests start their own processes the
same way, so that a fix to how a port is awaited or how Redis is started reaches all of them.
"""

from __future__ import annotations

import socket
import subprocess
import time

from broadcaster.errors import BroadcasterError


class PortTimeout(BroadcasterError, TimeoutError):
    """Nothing listened in time (a TimeoutError too, for callers that retry on one)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing holds right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Return once 127.0.0.1:``port`` accepts; fail early if ``proc`` died before listening."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BroadcasterError(
                f"process {proc.args!r} exited with {proc.returncode} before listening"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise PortTimeout(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


def redis_argv(binary: str, port: int, directory: str) -> list[str]:
    """A throwaway redis-server on loopback: nothing saved, so a restart starts it empty."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        directory,
    ]

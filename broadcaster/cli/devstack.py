"""The whole stack as child processes: private Redis, simulator, API, Celery workers and beat.

``broadcaster dev`` runs it in the foreground; the integration tests run the very same stack,
so what the tests prove is what a user starts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from broadcaster.errors import BroadcasterError
from broadcaster.net.loopback import free_port, redis_argv, wait_for_port

PYTHON = sys.executable
#: The simulator's Bearer token (SimulatorConfig's default), sent when dev runs the simulator.
SIMULATOR_API_KEY = "simulator-key"


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@dataclass
class DevStack:
    """Start and stop every process of broadcaster on loopback."""

    database_url: str
    redis_url: str | None = None
    simulator_port: int = 8025
    api_port: int = 8080
    send_workers: int = 2
    control_workers: int = 2  # a callback delivery pass must not hold up the beat tick
    simulator_args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="broadcaster-dev-")))
    log_to: Path | None = None
    #: Run the carrier simulator and point the Messangi adapter at it. Off: the gateway the
    #: user configured (``BROADCASTER_PROVIDER``, ``BROADCASTER_MESSANGI_*``, accounts) is used.
    with_simulator: bool = True
    #: Ports the user gave explicitly: busy is an error naming them, never a silent other port.
    fixed_ports: frozenset[str] = frozenset()
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    #: The environment of a process started with one of its own (``start_send_worker``'s env).
    envs: dict[str, dict[str, str]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "BROADCASTER_DATABASE_URL": self.database_url,
                "BROADCASTER_REDIS_URL": self.redis_url or "",
                "BROADCASTER_PUBLIC_URL": f"http://127.0.0.1:{self.api_port}",
                "PYTHONUNBUFFERED": "1",
                # every process writes its counters here; the API's /metrics sums them
                "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
            }
        )
        if self.with_simulator:  # our simulator, with its own key: not the user's gateway key
            env["BROADCASTER_MESSANGI_BASE_URL"] = self.gateway_url
            env["BROADCASTER_MESSANGI_API_KEY"] = SIMULATOR_API_KEY
        env.update(self.extra_env)
        return env

    @property
    def gateway_url(self) -> str:
        """The simulator's Messangi API base URL (meaningful when ``with_simulator``)."""
        return f"http://127.0.0.1:{self.simulator_port}/v1"

    def _port(self, which: str, port: int) -> int:
        """``port`` if free; a busy one is an error when the user asked for it, else a free one."""
        if port_is_free(port):
            return port
        if which in self.fixed_ports:
            raise BroadcasterError(
                f"--{which}-port {port} is already in use on 127.0.0.1: stop what holds it "
                "or pick another port"
            )
        return free_port()

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            args,
            env=env or self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=os.getcwd(),
        )
        self.procs[name] = proc
        self.commands[name] = args
        if env is not None:
            self.envs[name] = env
        return proc

    def start(self) -> DevStack:
        (self.workdir / "metrics").mkdir(parents=True, exist_ok=True)
        # Ports the user named are checked before anything starts: a busy one is the error.
        self.api_port = self._port("api", self.api_port)
        if self.with_simulator:
            self.simulator_port = self._port("simulator", self.simulator_port)
        try:
            self._start_redis()
            self.start_simulator()
            self.start_api()
            self.start_workers()
            self.start_beat()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_redis(self) -> None:
        if self.redis_url:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise BroadcasterError(
                "redis-server is not installed and BROADCASTER_REDIS_URL is not set "
                "(install it: apt-get install redis-server)"
            )
        port = free_port()
        proc = self._spawn(
            "redis",
            redis_argv(binary, port, str(self.workdir)),
        )
        wait_for_port(port, proc=proc)
        self.redis_url = f"redis://127.0.0.1:{port}/0"

    def start_simulator(self) -> None:
        if not self.with_simulator:
            return
        self.simulator_port = self._port("simulator", self.simulator_port)
        proc = self._spawn(
            "simulator",
            [
                PYTHON,
                "-m",
                "broadcaster.simulator",
                "--port",
                str(self.simulator_port),
                *self.simulator_args,
            ],
        )
        wait_for_port(self.simulator_port, proc=proc)

    def start_api(self) -> None:
        self.api_port = self._port("api", self.api_port)
        proc = self._spawn(
            "api", [PYTHON, "-m", "broadcaster", "api", "--port", str(self.api_port)]
        )
        wait_for_port(self.api_port, 40, proc=proc)

    def broadcaster(self, *args: str) -> list[str]:
        """A ``broadcaster`` command: the same entrypoints as the Procfile's, supervisor included."""
        return [PYTHON, "-m", "broadcaster", *args]

    def start_workers(self, name: str = "send") -> None:
        """The send worker (none with ``send_workers=0``: hosts of their own start them) and
        the control worker."""
        if self.send_workers > 0:
            self.start_send_worker(name)
        self._spawn(
            "worker-control",
            self.broadcaster(
                "worker", "control", "-c", str(self.control_workers), "-n", "control@%h"
            ),
        )

    def start_send_worker(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        wrapper: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """One send worker, process ``worker-NAME``, Celery node ``NAME@%h``.

        ``wrapper`` runs it inside another command and ``env`` replaces the stack's environment:
        a worker host of its own (``ip netns exec NS``, reaching Redis, the database and the
        gateway at other addresses; tests/integration/test_multi_host.py).
        """
        self._spawn(
            f"worker-{name}",
            [
                *wrapper,
                *self.broadcaster(
                    "worker",
                    "send",
                    "-c",
                    str(concurrency or self.send_workers),
                    "-n",
                    f"{name}@%h",
                ),
            ],
            env,
        )

    def start_beat(self) -> None:
        self._spawn(
            "beat", self.broadcaster("beat", "--schedule", str(self.workdir / "beat-schedule"))
        )

    def start_watch(self, folder: Path) -> None:
        """The drop-folder watcher on ``folder`` (the Procfile's ``watch``), as one more child."""
        self._spawn("watch", self.broadcaster("watch", str(folder)))

    def stop(self, timeout_s: float = 15.0) -> None:
        """Terminate every child (their whole process groups), newest first."""
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def kill(self, name: str) -> None:
        """SIGKILL a process and its children (a worker and its pool), as a crash would."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def respawn(self, name: str) -> None:
        """Start a killed process again with the same command (and environment)."""
        self._spawn(name, self.commands[name], self.envs.get(name))

    def alive(self) -> dict[str, bool]:
        return {name: p.poll() is None for name, p in self.procs.items()}

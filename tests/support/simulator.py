"""The carrier simulator in a separate process, for integration tests.

::

    from tests.support.simulator import SimulatorProcess

    with SimulatorProcess(share_429=0.05, dlr_delay_s=0) as sim:   # any SimulatorConfig field
        settings = Settings(messangi_base_url=sim.base_url, messangi_api_key=sim.api_key)
        ...
        sim.reconfigure(share_500=0.1, fault_script=["slow"])     # at runtime
        stats = sim.stats()               # GET /_sim/stats as a dict
        sim.external_count("42")          # how many times externalId 42 was accepted
        sim.rate("12345")                 # [[epoch_second, accepted], …] for that sender
        sim.lookup("42")                  # rows holding externalId 42
        sim.wait_for(lambda s: s["receipts_pending"] == 0)
        sim.reset()

Calls are synchronous (urllib). From an async test whose own loop must keep serving (a receipt
receiver, say), wait with ``await sim.until(predicate)``, which polls off the loop. The process
runs on uvloop; its output goes to ``log_path`` for post-mortems.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.services import free_port, wait_port

REPO_ROOT = Path(__file__).resolve().parents[2]


class SimulatorProcess:
    """``python -m broadcaster.simulator`` on a free port, with its control API."""

    def __init__(self, *, port: int | None = None, **config: Any) -> None:
        self.port = port or free_port()
        self.config = config
        self.api_key: str = config.get("api_key", "simulator-key")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="bc-sim-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The Messangi API base the adapter takes."""
        return f"{self.url}/v1"

    # -- process ---------------------------------------------------------------------------------

    def start(self, timeout_s: float = 20.0) -> SimulatorProcess:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
        cmd = [
            sys.executable,
            "-m",
            "broadcaster.simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--config-json",
            json.dumps(self.config),
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"simulator exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                wait_port(self.port, timeout_s=0.2)
                return self
            except TimeoutError:
                continue
        self.stop()
        raise TimeoutError(f"simulator did not listen on {self.port}:\n{self.output()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (graceful: pending receipts are dropped), then SIGKILL if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)

    def kill(self) -> None:
        """kill -9: a gateway that vanishes mid-conversation."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, timeout_s: float = 10.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return json.loads(resp.read())

    def reconfigure(self, **changes: Any) -> dict[str, Any]:
        """Change knobs at runtime; returns the whole config now in force."""
        result: dict[str, Any] = self._call("POST", "/_sim/config", changes)
        return result

    def current_config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sim/config")
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sim/stats")
        return result

    def reset(self) -> None:
        self._call("POST", "/_sim/reset", {})

    def external_count(self, external_id: str) -> int:
        quoted = urllib.parse.quote(external_id, safe="")
        return int(self._call("GET", f"/_sim/stats/external/{quoted}")["count"])

    def rate(self, sender: str) -> list[list[int]]:
        """``[[epoch_second, accepted], …]`` for one sender code."""
        query = urllib.parse.urlencode({"from": sender})
        return list(self._call("GET", f"/_sim/stats/rate?{query}")["per_second"])

    def lookup(self, external_id: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"externalId": external_id})
        return list(self._call("GET", f"/_sim/messages?{query}")["data"])

    def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout_s: float = 30.0,
        poll_s: float = 0.1,
    ) -> dict[str, Any]:
        """Poll the stats until ``predicate(stats)`` holds; returns those stats."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulator stats never matched: {stats}")
            time.sleep(poll_s)

    async def until(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout_s: float = 30.0,
        poll_s: float = 0.1,
    ) -> dict[str, Any]:
        """``wait_for`` for async tests: the event loop keeps running between polls."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats = await asyncio.to_thread(self.stats)
            if predicate(stats):
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulator stats never matched: {stats}")
            await asyncio.sleep(poll_s)

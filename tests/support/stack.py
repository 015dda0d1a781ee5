"""The whole broadcaster stack for integration tests: the same ``DevStack`` users start with
``broadcaster dev``, on free ports, with the tests' private Redis and database.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from broadcaster.cli.devstack import DevStack
from broadcaster.config import Settings
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import messages
from tests.support.services import free_port


class Stack:
    """A running stack plus the in-process Settings/engine that see the same database."""

    def __init__(self, dev: DevStack, settings: Settings) -> None:
        self.dev, self.settings = dev, settings
        self.engine = engine_for(settings.database_url)

    def statuses(self, broadcast_id: int) -> dict[str, str]:
        """Recipient -> status of every message of one broadcast."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(messages.c.recipient, messages.c.status).where(
                    messages.c.broadcast_id == broadcast_id
                )
            )
            return {r: s for r, s in rows}

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.dev.simulator_port}"

    def sim(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.simulator_url + path,
            data=data,
            method="POST" if data else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def wait(
        self,
        predicate: Callable[[], bool],
        timeout_s: float,
        what: str,
        poll_s: float = 0.25,
    ) -> None:
        """Poll ``predicate``; a dead process fails the test (nothing here restarts one: Celery
        processes run under ``broadcaster worker``/``beat``, which restart Celery themselves)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            self.assert_alive()
            time.sleep(poll_s)
        raise AssertionError(
            f"timed out after {timeout_s}s waiting for {what}; logs in {self.dev.workdir}"
        )

    def wait_progress(
        self, value: Callable[[], int], target: int, stall_s: float, what: str
    ) -> None:
        """Wait until ``value()`` reaches ``target``, failing only when it stops moving for
        ``stall_s`` (a loaded machine is slow, not stuck: no total time is imposed)."""
        last, moved = value(), time.monotonic()
        while last < target:
            self.assert_alive()
            time.sleep(0.25)
            now_value = value()
            if now_value != last:
                last, moved = now_value, time.monotonic()
            elif time.monotonic() - moved > stall_s:
                raise AssertionError(
                    f"{what}: stuck at {last} of {target} for {stall_s}s; logs in "
                    f"{self.dev.workdir}"
                )

    def assert_alive(self) -> None:
        dead = [n for n, ok in self.dev.alive().items() if not ok]
        assert not dead, f"stack processes died: {dead}; logs in {self.dev.workdir}"

    def logs(self, name: str) -> str:
        return (self.dev.workdir / f"{name}.log").read_text(errors="replace")

    def crash_celery(self, name: str) -> int:
        """SIGKILL the Celery process that ``name``'s supervisor runs, and its pool, as the OOM
        killer or a segfault would; the supervisor (``broadcaster worker``/``beat``) is left
        alone, to start it again. Returns the killed Celery pid."""
        import psutil

        supervisor = psutil.Process(self.dev.procs[name].pid)
        [celery] = supervisor.children()
        victims = [celery, *celery.children(recursive=True)]
        for proc in victims:
            proc.kill()
        psutil.wait_procs(victims, timeout=10)
        return celery.pid

    def celery_restarts(self) -> dict[str, int]:
        """How often each supervised Celery process was started again (from its supervisor's log)."""
        return {
            name: self.logs(name).count("starting it again in")
            for name in self.dev.procs
            if name.startswith("worker-") or name == "beat"
        }


@pytest.fixture
def make_stack(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Stacks on the session's redis-server, flushed first (``redis_url``): each test's database
    starts its ids at 1, so a chunk, lease marker or bucket left by an earlier test's stack would
    otherwise act on this test's broadcasts of the same ids."""
    stacks: list[Stack] = []

    def make(
        *,
        database_url: str | None = None,
        simulator_args: tuple[str, ...] = ("--dlr-delay-s", "0.2"),
        send_workers: int = 2,
        env: dict[str, str] | None = None,
        with_simulator: bool = True,
    ) -> Stack:
        """``with_simulator=False``: no simulator process, nothing pointed at it; the stack sends
        to the gateways ``env`` configures (``BROADCASTER_ACCOUNTS``), as a deployment does."""
        url = database_url or f"sqlite:///{tmp_path / 'broadcaster.db'}"
        upgrade(url)
        extra = {
            "BROADCASTER_TICK_S": "1",
            # the API and workers refuse the default secrets on PostgreSQL
            "BROADCASTER_DLR_SECRET": "stack-test-dlr-secret",
            "BROADCASTER_CALLBACK_SECRET": "stack-test-callback-secret",
            **(env or {}),
        }
        dev = DevStack(
            database_url=url,
            redis_url=redis_url,
            simulator_port=free_port(),
            api_port=free_port(),
            send_workers=send_workers,
            simulator_args=list(simulator_args),
            extra_env=extra,
            workdir=tmp_path / "stack",
            with_simulator=with_simulator,
        )
        dev.workdir.mkdir(exist_ok=True)
        dev.start()
        settings = Settings(
            **{
                k[len("BROADCASTER_") :].lower(): v
                for k, v in dev.env().items()
                if k.startswith("BROADCASTER_")
                and v
                and k[len("BROADCASTER_") :].lower() in Settings.model_fields
            }
        )
        stack = Stack(dev, settings)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.dev.stop()

"""The long-running commands as a user starts them: ``broadcaster api``, ``simulator`` and ``dev``.

A busy port is one line naming it and exit 2 (never a traceback, never a silent other port);
once listening, each says where; ``dev`` sends through the gateway the user configured.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from broadcaster.config import Settings
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.db import engine_for, upgrade
from tests.support.recipients import write_recipients
from tests.support.services import free_port
from tests.support.simulator import SimulatorProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port someone else listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    return {
        **env,
        "BROADCASTER_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
        "COLUMNS": "250",  # rich wraps at the terminal's width: keep each message on one line
        **extra,
    }


def _broadcaster(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broadcaster", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], port: int) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(port) in lines[0] and "in use" in lines[0], lines


@pytest.mark.parametrize("command", ["api", "simulator"])
def test_a_busy_port_is_one_line_and_exit_2(command, busy_port, tmp_path):
    _one_line_error(_broadcaster(command, "--port", str(busy_port), env=_env(tmp_path)), busy_port)


@pytest.mark.parametrize("flag", ["--api-port", "--simulator-port"])
def test_dev_refuses_an_explicit_busy_port(flag, busy_port, tmp_path, redis_url):
    env = _env(tmp_path, BROADCASTER_REDIS_URL=redis_url)
    result = _broadcaster("dev", flag, str(busy_port), env=env)
    _one_line_error(result, busy_port)
    assert flag in result.stderr, result.stderr


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "broadcaster", *args],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_output(proc: subprocess.Popen[bytes], log: Path, text: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = log.read_text(errors="replace")
        if text in out:
            return out
        assert proc.poll() is None, out
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not printed in {timeout_s}s:\n{log.read_text()}")


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("api", "broadcaster API listening on http://127.0.0.1:{port}"),
        ("simulator", "carrier simulator listening on http://127.0.0.1:{port}/v1"),
    ],
)
def test_a_server_says_where_it_listens(command, says, tmp_path):
    port = free_port()
    proc = _start([command, "--port", str(port)], _env(tmp_path), tmp_path / "out.log")
    try:
        _wait_output(proc, tmp_path / "out.log", says.format(port=port), 60)
    finally:
        proc.terminate()
        proc.wait(20)


def test_dev_sends_through_the_gateway_you_configured(tmp_path, redis_url):
    """BROADCASTER_PROVIDER=messangi with its own URL and key: dev starts no simulator of its
    own and every message reaches the configured gateway with the configured key (no 401)."""
    with SimulatorProcess(api_key="the-users-key", dlr_delay_s=0) as gateway:
        env = _env(
            tmp_path,
            BROADCASTER_REDIS_URL=redis_url,
            BROADCASTER_PROVIDER="messangi",
            BROADCASTER_MESSANGI_BASE_URL=gateway.base_url,
            BROADCASTER_MESSANGI_API_KEY="the-users-key",
            BROADCASTER_TICK_S="1",
        )
        api_port = free_port()
        log = tmp_path / "dev.log"
        dev = _start(["dev", "--api-port", str(api_port), "--workers", "1"], env, log)
        try:
            out = _wait_output(dev, log, "broadcaster is running", 120)
            assert f"gateway: messangi at {gateway.base_url}" in out, out
            stack_dir = Path(out.split("logs in ", 1)[1].split()[0])
            assert not (stack_dir / "simulator.log").exists()  # no simulator of its own

            url = env["BROADCASTER_DATABASE_URL"]
            upgrade(url)
            settings = Settings(database_url=url, provider="messangi")
            engine = engine_for(url)
            write_recipients(tmp_path / "list.csv", 20, seed=13)
            add_code(engine, settings, "55507", "short", mps=100)
            bid = create_from_file(
                engine, settings, tmp_path / "list.csv", NewBroadcast(sender="55507", text="Hi")
            ).id
            deadline = time.monotonic() + 90
            while get_broadcast(engine, bid).status != "COMPLETED":
                assert time.monotonic() < deadline, (get_broadcast(engine, bid), log.read_text())
                assert dev.poll() is None, log.read_text()
                time.sleep(0.25)
            stats = gateway.stats()
            assert stats["accepted_total"] == 20, stats
            assert "401" not in stats["by_status_code"], stats
        finally:
            dev.send_signal(signal.SIGTERM)
            dev.wait(60)

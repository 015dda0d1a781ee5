"""Procfile, docker-compose.yml and Dockerfile agree with each other and with the code.

``docker compose config`` (or ``docker-compose config``) validates the compose file where a compose
CLI is installed; the structural checks below run everywhere: every Procfile process has a
service, every command parses as a real ``broadcaster`` or ``celery`` command, every queue has a
consumer, and every broadcaster process reaches PostgreSQL and Redis after the migrations ran.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
#: Procfile process → compose service (Heroku's ``release`` phase is compose's one-shot migrate).
SERVICE_OF = {"release": "migrate"}
INFRA = {"postgres", "redis"}


def procfile() -> dict[str, list[str]]:
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            processes[name.strip()] = shlex.split(command.replace("${PORT:-8080}", "8080"))
    return processes


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def app_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if n not in INFRA}


def parses(command: list[str]) -> None:
    """Parse ``command`` with the real CLI (``--help`` appended: nothing runs, options are checked)."""
    if command[0] == "broadcaster":
        from broadcaster.cli import main as cli
    else:
        assert command[0] == "celery", command
        from celery.bin.celery import celery as cli
    result = CliRunner().invoke(cli, [*command[1:], "--help"], catch_exceptions=False)
    assert result.exit_code == 0, (command, result.output)
    assert "usage:" in result.output.lower()  # click's "Usage:", the simulator's argparse "usage:"


def test_procfile_lists_the_processes():
    assert set(procfile()) == {"release", "web", "worker-send", "worker-control", "beat", "watch"}


@pytest.mark.parametrize("process", sorted(procfile()))
def test_every_procfile_process_is_a_real_command_and_a_compose_service(process):
    command = procfile()[process]
    parses(command)
    # The compose service runs the very same command (the Procfile's $PORT read as 8080)
    assert app_services()[SERVICE_OF.get(process, process)]["command"] == command


@pytest.mark.parametrize("service", sorted(app_services()))
def test_every_compose_command_parses(service):
    parses(app_services()[service]["command"])


def _queues(command: list[str]) -> set[str]:
    """The queues a worker command consumes: ``broadcaster worker ROLE`` or Celery's ``-Q``."""
    if command[:2] == ["broadcaster", "worker"]:
        from broadcaster.cli.workers import ROLE_QUEUES

        return set(ROLE_QUEUES[command[2]].split(","))
    return set(command[command.index("-Q") + 1].split(",")) if "-Q" in command else set()


def test_every_queue_has_a_consumer():
    from workers.celery_app import QUEUES, app

    routed = {r["queue"] for r in app.conf.task_routes.values()} | {app.conf.task_default_queue}
    for consumed in (
        {q for c in procfile().values() for q in _queues(c)},
        {q for s in app_services().values() for q in _queues(s["command"])},
    ):
        assert consumed == set(QUEUES)
        assert routed <= consumed


def test_app_services_use_postgres_and_redis_after_migrations():
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["migrate"]["command"] == ["broadcaster", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name, service in app_services().items():
        env = service["environment"]
        assert env["BROADCASTER_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert env["BROADCASTER_REDIS_URL"].startswith("redis://redis:"), name
        if name != "migrate":
            assert (
                service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
            ), name
    # Exactly one beat: two would tick the scheduler twice
    beats = [n for n, s in app_services().items() if "beat" in s["command"]]
    assert beats == ["beat"] and "deploy" not in services["beat"]


def test_dockerfile_installs_the_package_on_python_311_slim():
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "pip install /app" in text
    assert "USER broadcaster" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_validates():
    cli = _compose_cli()
    if cli is None:
        pytest.skip(
            "no compose CLI here (docker compose / docker-compose); structure checked above"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    env |= {"BROADCASTER_DLR_SECRET": "s1", "BROADCASTER_CALLBACK_SECRET": "s2"}  # required
    out = subprocess.run(
        [*cli, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("process", ["worker-send", "worker-control", "beat"])
def test_celery_processes_run_under_broadcasters_supervisor(process):
    """Celery's consumer can die on a Redis restart: every Celery process is started through
    ``broadcaster worker``/``beat``, which start it again, in the Procfile and in compose."""
    for command in (procfile()[process], app_services()[process]["command"]):
        assert command[:2] in (["broadcaster", "worker"], ["broadcaster", "beat"]), command
        assert "--no-supervise" not in command


def _subcommand(args: list[str]) -> list[str]:
    """The words of a ``broadcaster`` command before its first option or path (``worker send``)."""
    words = []
    for word in args:
        if word.startswith("-") or "/" in word:
            break
        words.append(word)
    return words


def test_the_test_stack_runs_the_procfiles_commands(monkeypatch, tmp_path):
    """The integration tests' stack (``DevStack``, tests/support/stack.py) starts each process
    with the Procfile's own ``broadcaster`` command, supervisor included: what the restart and
    strict-gateway tests prove is what a deployment runs."""
    from broadcaster.cli import devstack

    dev = devstack.DevStack(
        database_url="sqlite://", redis_url="redis://127.0.0.1:9/0", workdir=tmp_path
    )
    spawned: dict[str, list[str]] = {}
    monkeypatch.setattr(dev, "_spawn", lambda name, args, env=None: spawned.setdefault(name, args))
    monkeypatch.setattr(devstack, "wait_for_port", lambda *a, **k: None)
    dev.start_api()
    dev.start_workers()
    dev.start_beat()
    dev.start_watch(tmp_path)
    assert set(spawned) == {"api", "worker-send", "worker-control", "beat", "watch"}
    for name, args in spawned.items():
        assert args[:3] == [devstack.PYTHON, "-m", "broadcaster"], args
        process = procfile()["web" if name == "api" else name]
        assert _subcommand(["broadcaster", *args[3:]]) == _subcommand(process), (name, args)
        assert "--no-supervise" not in args

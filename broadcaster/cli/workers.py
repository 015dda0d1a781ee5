"""Celery processes under broadcaster's own supervisor: ``broadcaster worker send|control`` and
``broadcaster beat`` (the Procfile, docker-compose and ``broadcaster dev`` run these).

Each runs the Celery command as a child and starts it again when it dies (broadcaster/cli/supervise.py),
so a Redis or PostgreSQL restart that kills Celery's consumer costs seconds, not the broadcast. A
worker is also pinged through Redis under the node name given to Celery (``-n``, expanded here as
Celery expands it) and restarted when it stays alive but stops answering (``BROADCASTER_LIVENESS_*``).
"""

from __future__ import annotations

import logging
import sys

import click

from broadcaster.cli._output import EXIT_INPUT, err_console, settings

#: The queues each worker role consumes (workers/celery_app.py routes the tasks to them).
ROLE_QUEUES = {"send": "send", "control": "control,ingest,poll"}
#: Pool processes per role when --concurrency is not given.
DEFAULT_CONCURRENCY = {"send": 4, "control": 2}
LOG_FORMAT = "[%(asctime)s: %(levelname)s/supervisor] %(message)s"


def celery_argv(*args: str) -> list[str]:
    """The Celery command line, run with this interpreter (the same environment as ours)."""
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", *args]


def nodename(role: str, hostname: str | None) -> str:
    """The Celery node name of a worker, ``%h``/``%n``/``%d`` expanded as Celery's ``-n`` does
    (``send@web-1``; a bare ``web-1`` is ``celery@web-1``): the name its supervisor pings."""
    from celery.utils.nodenames import default_nodename, host_format

    return str(host_format(default_nodename(hostname or f"{role}@%h")))


def worker_argv(
    role: str, concurrency: int | None, hostname: str | None, loglevel: str
) -> list[str]:
    return celery_argv(
        "worker",
        "-Q",
        ROLE_QUEUES[role],
        "--concurrency",
        str(concurrency or DEFAULT_CONCURRENCY[role]),
        "-n",
        nodename(role, hostname),
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        loglevel,
    )


def refuse_default_secrets() -> None:
    """Exit 2 with one line when a shared database still runs on the default secrets."""
    from broadcaster.config import default_secret_problem

    problem = default_secret_problem(settings())
    if problem:
        err_console.print(f"[bold red]error:[/] {problem}", highlight=False)
        sys.exit(EXIT_INPUT)


def _run(
    argv: list[str],
    name: str,
    supervised: bool,
    *,
    needs_secrets: bool = True,
    node: str | None = None,
) -> None:
    """Exec ``argv``, or run it under the supervisor; ``node``: the Celery node to ping."""
    if needs_secrets:  # the beat only enqueues ticks: it signs and checks nothing
        refuse_default_secrets()
    if not supervised:
        import os

        os.execv(argv[0], argv)
    from broadcaster.cli.supervise import CeleryPing, LivenessPolicy, supervise
    from broadcaster.constants import DEFAULT_REDIS_URL

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    config = settings()
    probe = policy = None
    if node is not None and config.liveness_probe:
        broker = config.redis_url or DEFAULT_REDIS_URL
        probe = CeleryPing(broker, node, config.liveness_timeout_s)
        policy = LivenessPolicy(
            interval_s=config.liveness_interval_s,
            failures=config.liveness_failures,
            grace_s=config.liveness_grace_s,
            kill_grace_s=config.liveness_kill_grace_s,
        )
    sys.exit(supervise(argv, name, probe=probe, policy=policy))


_supervise_option = click.option(
    "--supervise/--no-supervise",
    default=True,
    show_default=True,
    help="Start Celery again when it dies (off: exec Celery itself, for an outside supervisor).",
)
_loglevel_option = click.option("--loglevel", default="INFO", show_default=True)


@click.command()
@click.argument("role", type=click.Choice(sorted(ROLE_QUEUES)))
@click.option("--concurrency", "-c", type=int, help="Pool processes [default: send 4, control 2].")
@click.option("--hostname", "-n", help="Celery node name [default: ROLE@%h].")
@_loglevel_option
@_supervise_option
def worker(
    role: str, concurrency: int | None, hostname: str | None, loglevel: str, supervise: bool
) -> None:
    """Run a Celery worker: ROLE send (the send queue) or control (control, ingest, poll).

    It is started again, with a backoff, whenever it dies (a broker restart can kill Celery's
    consumer) or stays alive without answering a ping through Redis (BROADCASTER_LIVENESS_*);
    SIGTERM stops it for good.
    """
    argv = worker_argv(role, concurrency, hostname, loglevel)
    _run(argv, f"worker {role}", supervise, node=nodename(role, hostname))


@click.command()
@click.option(
    "--schedule",
    "-s",
    default="/tmp/celerybeat-schedule",
    show_default=True,
    help="Celery beat's schedule file.",
)
@_loglevel_option
@_supervise_option
def beat(schedule: str, loglevel: str, supervise: bool) -> None:
    """Run the beat (scheduler and status poller ticks); exactly one per deployment.

    Started again, with a backoff, whenever it dies; SIGTERM stops it for good.
    """
    argv = celery_argv("beat", "--loglevel", loglevel, "--schedule", schedule)
    _run(argv, "beat", supervise, needs_secrets=False)


COMMANDS: tuple[click.Command, ...] = (worker, beat)

"""Celery processes under broadcaster's own supervisor: ``broadcaster worker send|control`` and
``broadcaster beat`` (the Procfile, docker-compose and ``broadcaster dev`` run these).

Each runs the Celery command as a child and starts it again when it dies (broadcaster/cli/supervise.py),
so a Redis or PostgreSQL restart that kills Celery's consumer costs seconds, not the broadcast.
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
        hostname or f"{role}@%h",
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


def _run(argv: list[str], name: str, supervised: bool, *, needs_secrets: bool = True) -> None:
    if needs_secrets:  # the beat only enqueues ticks: it signs and checks nothing
        refuse_default_secrets()
    if not supervised:
        import os

        os.execv(argv[0], argv)
    from broadcaster.cli.supervise import supervise

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    sys.exit(supervise(argv, name))


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
    consumer); SIGTERM stops it for good.
    """
    _run(worker_argv(role, concurrency, hostname, loglevel), f"worker {role}", supervise)


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

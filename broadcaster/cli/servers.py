"""Commands that serve one process in the foreground: the HTTP API and the carrier simulator."""

from __future__ import annotations

import sys

import click

from broadcaster.cli._output import handles_errors, settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@handles_errors
def api(host: str, port: int) -> None:
    """Serve the HTTP API (receipts, v1 API, dashboard). A busy port: one line, exit 2."""
    from broadcaster.api.app import run_api
    from broadcaster.cli.workers import refuse_default_secrets

    refuse_default_secrets()
    from broadcaster import wiring  # the command line composes: the API enqueues through Celery

    run_api(settings(), wiring.celery_queue(), host=host, port=port)


@click.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],  # --help is the simulator's own: every flag, documented
    }
)
@click.pass_context
def simulator(ctx: click.Context) -> None:
    """Run the carrier simulator (a Messangi-compatible gateway); --help lists its flags."""
    from broadcaster.simulator.cli import main as sim_main

    code = sim_main(ctx.args, prog="broadcaster simulator")
    if code:
        sys.exit(code)


COMMANDS: tuple[click.Command, ...] = (api, simulator)

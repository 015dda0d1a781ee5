"""The ``broadcaster`` command line: tables and progress for people, ``--json`` for scripts.

This module holds the group; each area's commands live in a module beside it (``broadcast``,
``codes``, ``recipients``, ``apikeys``, ``watch``, ``servers``, ``run``, ``workers``,
``compliance``, ``contacts``) and are
added here. Shared output, errors and the engine are in ``_output``.
"""

from __future__ import annotations

import click

from broadcaster.cli import (
    apikeys,
    broadcast,
    broadcast_views,
    codes,
    compliance,
    contacts,
    recipients,
    resend,
    run,
    servers,
    watch,
    workers,
)
from broadcaster.cli._output import emit, engine, handles_errors, json_option, kv_table


@click.group()
@click.version_option(package_name="broadcaster")
def main() -> None:
    """Bulk SMS broadcasts: recipient files in, rate-limited sends through SMS gateways out."""


@main.command()
@click.argument("text")
@json_option
def segments(text: str, as_json: bool) -> None:
    """How TEXT is encoded and how many SMS segments it costs."""
    from broadcaster.domain.segments import measure

    emit(measure(text).as_dict(), as_json, lambda d: kv_table(d))


@main.command()
@handles_errors
def migrate() -> None:
    """Bring the database schema up to date."""
    engine(migrate=True)
    click.echo("schema up to date")


for _area in (
    recipients,
    codes,
    broadcast,
    broadcast_views,
    resend,
    servers,
    run,
    apikeys,
    watch,
    workers,
    compliance,
    contacts,
):
    for _command in _area.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]

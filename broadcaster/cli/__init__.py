"""The ``broadcaster`` command line: tables and progress for people, ``--json`` for scripts.

This module holds the group; each area's commands live in a module beside it (``broadcast``,
``codes``, ``recipients``, ``apikeys``, ``watch``, ``servers``, ``run``, ``workers``,
``compliance``, ``contacts``, ``lists``) and are
added here. Shared output, errors and the engine are in ``_output``.
"""

from __future__ import annotations

from typing import Any

import click

from broadcaster.cli import (
    apikeys,
    broadcast,
    broadcast_views,
    codes,
    compliance,
    contacts,
    lists,
    recipients,
    resend,
    run,
    servers,
    watch,
    workers,
)
from broadcaster.cli._output import (
    emit,
    engine,
    err_console,
    handles_errors,
    json_option,
    kv_table,
    safe,
)
from broadcaster.cli.examples import add_examples


@click.group()
@click.version_option(package_name="broadcaster")
def main() -> None:
    """Bulk SMS broadcasts: recipient files in, rate-limited sends through SMS gateways out."""


@main.command()
@click.argument("text")
@json_option
def segments(text: str, as_json: bool) -> None:
    """How TEXT is encoded and how many SMS segments it costs. With placeholders ({0}, <0>,
    {name}) the count is of the text as written: each recipient's values change it."""
    from broadcaster.domain.segments import measure

    data: dict[str, Any] = dict(measure(text).as_dict())
    found = _placeholders(text)
    if found:
        data["placeholders"] = found
        data["warning"] = (
            f"uncertain: the text has placeholders ({', '.join(found)}); the count is for the "
            "text as written, each recipient's values change it (recipients check FILE --text … "
            "counts them row by row)"
        )
    emit(data, as_json, _render_segments)


def _placeholders(text: str) -> list[str]:
    """The placeholders of ``text`` as written, in order; none when it is no valid template."""
    from broadcaster.domain.templates import parse_template
    from broadcaster.errors import TemplateError

    try:
        return [slot.label for slot in parse_template(text).slots]
    except TemplateError:
        return []


def _render_segments(data: dict[str, Any]) -> None:
    kv_table({k: v for k, v in data.items() if k not in ("placeholders", "warning")})
    if "warning" in data:
        err_console.print(f"[yellow]warning:[/] {safe(data['warning'])}", highlight=False)


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
    lists,
):
    for _command in _area.COMMANDS:
        main.add_command(_command)
add_examples(main)

__all__ = ["main"]

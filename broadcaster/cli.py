"""The ``broadcaster`` command line: tables and progress for people, ``--json`` for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from broadcaster.config import Settings, get_settings
from broadcaster.errors import BroadcasterError, InvalidTransition, NotFound

console = Console()
err_console = Console(stderr=True)

EXIT_INPUT = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def emit(data: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """JSON on stdout for scripts, or a readable rendering for people."""
    if as_json or render is None:
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        render(data)


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Our errors become one clear line (or a JSON error) and a distinct exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BroadcasterError as exc:
            code = (
                EXIT_NOT_FOUND
                if isinstance(exc, NotFound)
                else (EXIT_CONFLICT if isinstance(exc, InvalidTransition) else EXIT_INPUT)
            )
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": str(exc), "type": type(exc).__name__}))
            else:
                err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            sys.exit(code)
        except Exception as exc:  # an unreachable database is the user's to fix, not a bug
            from broadcaster.outages import unavailable

            if unavailable(exc) != "database":
                raise
            from broadcaster.store.db import describe_unreachable

            message = describe_unreachable(get_settings().database_url, exc)
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": message, "type": "DatabaseUnavailable"}))
            else:
                err_console.print(f"[bold red]error:[/] {message}", highlight=False)
            sys.exit(EXIT_INPUT)

    return wrapper


def settings() -> Settings:
    return get_settings()


def engine():  # type: ignore[no-untyped-def]
    """The database engine with the schema brought up to date (Alembic, idempotent)."""
    from broadcaster.store.db import engine_for, upgrade

    s = settings()
    upgrade(s.database_url)
    return engine_for(s.database_url)


def render_broadcast(view: dict[str, Any]) -> None:
    """A broadcast and its messages by status, for people."""
    kv_table(view, title="broadcast")
    kv_table(view.get("counts", {}), title="messages by status")


def kv_table(data: dict[str, Any], title: str | None = None) -> None:
    table = Table(title=title, show_header=False, box=None)
    for k, v in data.items():
        if not isinstance(v, (dict, list)):
            table.add_row(f"[bold]{k}[/]", "" if v is None else str(v))
    console.print(table)


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
    engine()
    click.echo("schema up to date")


from broadcaster.cli_commands import register  # noqa: E402  (sub-groups live beside, by area)

register(main)

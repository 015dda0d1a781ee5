"""What every command shares: consoles, ``--json`` and tables, terminal-safe text, exit codes,
errors as one line, settings and the database engine."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from broadcaster.config import Settings, get_settings
from broadcaster.domain.wire import to_wire
from broadcaster.errors import BroadcasterError, Conflict, InvalidTransition, NotFound

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

console = Console()
err_console = Console(stderr=True)

EXIT_INPUT = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4

#: Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts colour,
#: cursor and title sequences; C1 0x9B is a one-byte CSI), DEL, line and paragraph separators,
#: and the bidirectional marks, embeddings, overrides and isolates that reorder what follows.
_TERMINAL_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
#: The same less C0, which ``json.dumps`` already escapes inside strings (and whose newlines
#: and spaces outside strings are the layout).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def json_text(data: Any, **kwargs: Any) -> str:
    """``json.dumps`` whose text a terminal cannot act on: the controls and bidi characters
    json leaves raw (DEL, C1, overrides) are ``\\u`` escapes, which decode to the same value."""
    text = json.dumps(data, default=str, ensure_ascii=False, **kwargs)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def safe(value: object) -> str:
    """``value`` as text a terminal shows literally: controls and bidi overrides written as
    ``\\x1b`` or ``\\u202e``, rich markup escaped. Names, texts and errors come from users and
    files; ``--json`` output is never passed through this (it stays exact JSON)."""
    return escape(_TERMINAL_UNSAFE.sub(_visible, str(value)))


class AsciiNumber(click.ParamType):
    """A whole or decimal number in ASCII digits: click's ``int``/``float`` also read ``١٢٣``."""

    def __init__(self, kind: type[int] | type[float]) -> None:
        self.kind, self.name = kind, "integer" if kind is int else "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.kind) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        pattern = _ASCII_INT if self.kind is int else _ASCII_FLOAT
        if not pattern.fullmatch(text):
            self.fail(f"{safe(value)} is not a valid {self.name} (ASCII digits only)", param, ctx)
        return self.kind(text)


_ASCII_INT = re.compile(r"[+-]?[0-9]{1,18}")
_ASCII_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
ASCII_INT: AsciiNumber = AsciiNumber(int)
ASCII_FLOAT: AsciiNumber = AsciiNumber(float)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def emit(data: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """JSON on stdout for scripts, or a readable rendering for people.

    The command line's one serializer: a service's answer (frozen views included) goes through
    :func:`~broadcaster.domain.wire.to_wire`, so ``--json`` has the HTTP API's names and times,
    and ``render`` gets that same JSON-ready data.
    """
    data = to_wire(data)
    if as_json or render is None:
        click.echo(json_text(data, indent=2))
    else:
        render(data)


def short_time(iso: str | None) -> str:
    """``2026-12-01T13:50:47+00:00`` as ``2026-12-01 13:50`` (a table cell; --json keeps all)."""
    return "" if not iso else iso[:16].replace("T", " ")


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
                else (
                    EXIT_CONFLICT if isinstance(exc, (InvalidTransition, Conflict)) else EXIT_INPUT
                )
            )
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": str(exc), "type": type(exc).__name__}))
            else:
                err_console.print(f"[bold red]error:[/] {safe(exc)}", highlight=False)
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


def engine(*, migrate: bool = False) -> Engine:
    """The database engine. ``migrate=True`` first brings the schema up to date (Alembic,
    idempotent): commands that write ask for it once, at their start (``migrate``, ``dev``,
    ``demo``, create, add, control...). Reads run no Alembic on a database that has a schema
    (one catalogue query instead); a database without one still gets it, so a first
    ``codes list`` answers ``[]`` rather than "no such table"."""
    import sqlalchemy as sa

    from broadcaster import wiring
    from broadcaster.store.db import upgrade

    current = settings()
    eng = wiring.engine(current)
    if migrate or not sa.inspect(eng).has_table(ALEMBIC_VERSION_TABLE):
        upgrade(current.database_url)
    return eng


#: The table where Alembic records the schema's revision: absent means no schema yet.
ALEMBIC_VERSION_TABLE = "alembic_version"


def render_broadcast(view: dict[str, Any]) -> None:
    """A broadcast and its messages by status, for people."""
    kv_table(view, title="broadcast")
    kv_table(view.get("counts", {}), title="messages by status")


def kv_table(data: dict[str, Any], title: str | None = None) -> None:
    table = Table(title=safe(title) if title else None, show_header=False, box=None)
    for k, v in data.items():
        if not isinstance(v, (dict, list)):
            table.add_row(f"[bold]{safe(k)}[/]", "" if v is None else safe(v))
    console.print(table)

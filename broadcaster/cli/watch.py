"""The drop-folder command: ``broadcaster watch DIR`` (docs/dropfolder.md)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from broadcaster.cli._output import (
    console,
    engine,
    err_console,
    handles_errors,
    json_option,
    json_text,
    safe,
    settings,
)


def _say(raw: dict[str, Any]) -> None:
    # File names and reasons come from the drop folder: shown escaped, never acted on.
    event = {k: safe(v) if isinstance(v, str) else v for k, v in raw.items()}
    kind, name = event["event"], event["file"]
    if kind == "imported":
        console.print(
            f"[green]imported[/] {name} → broadcast {event['broadcastId']} ({event['status']}, "
            f"{event['expectedMessages']:,} expected, {event['invalidRows']:,} invalid, "
            f"{event['duplicates']:,} duplicates); {event['report']}",
            highlight=False,
        )
    elif kind == "already_imported":
        console.print(
            f"[cyan]skipped[/] {name}: {event['note']}; {event['report']}", highlight=False
        )
    elif kind == "failed":
        parts = [event["source"]] if event["source"] != name else []
        parts += [f"line {event['line']}"] if event.get("line") else []
        where = ", ".join(parts) + ": " if parts else ""
        console.print(
            f"[red]failed[/] {name}: {where}{event['reason']}; {event['report']}", highlight=False
        )
    else:
        console.print(f"[yellow]{kind}[/] {name}: {event['reason']}", highlight=False)


def _poll(drop: Any, stop: threading.Event, once: bool) -> list[Any]:
    """One pass over the inbox; a folder or dependency that fails is reported and retried."""
    try:
        return list(drop.poll(stop=stop.is_set))
    except OSError as exc:  # folder gone, unreadable or full: say so, keep trying
        if once:
            raise click.ClickException(f"drop folder {drop.root}: {exc}") from None
        err_console.print(
            f"[red]drop folder {safe(drop.root)}:[/] {safe(exc)}; trying again", highlight=False
        )
    except Exception as exc:  # PostgreSQL or Redis restarting: wait for it, keep watching
        from broadcaster.outages import unavailable

        down = unavailable(exc)
        if down is None or once:
            raise
        err_console.print(
            f"[red]drop folder {safe(drop.root)}:[/] the {down} is unavailable "
            f"({type(exc).__name__}); trying again",
            highlight=False,
        )
    return []


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--once", is_flag=True, help="One pass over the inbox, then exit (for cron and tests)."
)
@click.option(
    "--stable-s",
    type=float,
    help="Seconds a file must go unchanged before it is read "
    "[default: BROADCASTER_WATCH_STABLE_S or 2].",
)
@click.option(
    "--interval-s",
    type=float,
    help="Seconds between passes [default: BROADCASTER_WATCH_INTERVAL_S or 1].",
)
@click.option(
    "--workspace",
    default="default",
    show_default=True,
    help="Workspace of the broadcasts (defaults.json or a sidecar may name another).",
)
@json_option
@handles_errors
def watch(
    folder: Path,
    once: bool,
    stable_s: float | None,
    interval_s: float | None,
    workspace: str,
    as_json: bool,
) -> None:
    """Turn files dropped in FOLDER/inbox/ into broadcasts.

    Each CSV, TXT, TSV, XLSX or JSON file becomes a broadcast with the fields of its sidecar
    NAME.broadcast.json, else FOLDER/defaults.json (text, from, at, tz, name, region, sheet). It
    then moves to FOLDER/done/ beside NAME.result.json, or to FOLDER/failed/ beside
    NAME.error.json. Files are read only once unchanged for --stable-s; temporary names (.tmp,
    .part, .crdownload, leading . or ~) are never read. With --json each event is one JSON line.
    """
    from broadcaster.services.dropfolder import DropFolder, EventKind

    s = settings()
    drop = DropFolder(
        folder,
        engine(migrate=True),
        s,
        stable_s=s.watch_stable_s if stable_s is None else stable_s,
        orphan_s=s.watch_orphan_s,
        workspace=workspace,
    )
    drop.ensure()
    interval = s.watch_interval_s if interval_s is None else interval_s
    stop = threading.Event()
    if not once:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        if not as_json:
            err_console.print(
                f"watching {safe(drop.inbox)} (every {interval:g} s, files settle after "
                f"{drop.stable_s:g} s); Ctrl-C stops",
                highlight=False,
            )
    told: set[tuple[str, str]] = set()  # (file, kind) of waiting/retry events already printed
    while True:
        events = _poll(drop, stop, once)
        for event in events:
            if event.kind in (EventKind.WAITING, EventKind.RETRY):
                if (event.file, event.kind.value) in told:
                    continue  # said already: a file waiting for seconds would flood the log
                told.add((event.file, event.kind.value))
            else:
                told -= {(event.file, k.value) for k in (EventKind.WAITING, EventKind.RETRY)}
            if as_json:
                click.echo(json_text(event.as_dict()))
            else:
                _say(event.as_dict())
        if once or stop.wait(interval):
            return


COMMANDS: tuple[click.Command, ...] = (watch,)

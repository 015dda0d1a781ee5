"""The simulator's command line: ``python -m broadcaster.simulator`` and ``broadcaster simulator``.

Every knob of :class:`SimulatorConfig` is a flag (``share_429`` is ``--share-429``), its help the
field's comment; ``--config-json`` sets several at once and the flags win over it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import typing
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from broadcaster import listen
from broadcaster.simulator.app import run_simulator
from broadcaster.simulator.config import SimulatorConfig

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025

#: ``--help`` for each config field: what it does, in the words of its comment in config.py.
FLAG_HELP: dict[str, str] = {
    "api_key": "Bearer token clients must send; anything else is 401",
    "latency_ms": "milliseconds added to every public API request",
    "share_429": "share of sends answered 429 with Retry-After (not stored), 0..1",
    "retry_after_s": "seconds in the Retry-After of a 429",
    "share_500": "share of sends answered 500 (not stored), 0..1",
    "share_slow": "share of sends stored, then answered only after --slow-s, 0..1",
    "slow_s": "seconds a slow send waits before answering (meant to exceed the client's timeout)",
    "share_drop_before": "share of sends whose connection closes, nothing stored, 0..1",
    "share_drop_after": "share of sends stored, then the connection closes unanswered, 0..1",
    "share_lookup_500": "share of look-ups (GET /messages?externalId=) answered 500, 0..1",
    "fault_script": "faults for the next sends, in order, before the shares apply: "
    "429,500,drop_before,drop_after,slow or ok (JSON list or a,b,c)",
    "lookup_script": "faults for the next look-ups, in order: 500, drop or ok",
    "seed": "seed of the dice; none draws a random one",
    "dlr_delay_s": "seconds from acceptance to the final receipt (ENROUTE at half of it)",
    "dlr_mix": "final receipt statuses and weights, e.g. DELIVRD=0.95,UNDELIV=0.05 or JSON",
    "dlr_enroute": "send an ENROUTE receipt before the final one",
    "default_callback_url": "where receipts go for requestDR messages that name no callbacks",
    "callback_workers": "receipt senders working at once (read at start only)",
    "callback_max_attempts": "tries per receipt before it counts as failed",
    "callback_retry_s": "seconds before a receipt's first retry (doubling each time)",
    "callback_timeout_s": "seconds each receipt POST may take",
    "max_text_chars": "texts longer than this are answered with status ERROR",
}


#: The control and measurement API, for ``--help`` (app.py's docstring has the bodies).
CONTROL_EPILOG = """control and measurement (no auth):
  GET/POST /_sim/config                 the knobs; POST {field: value, ...} changes them
  GET  /_sim/stats                      counters, duplicates (externalIds accepted twice),
                                        accepted_by_sender
  GET  /_sim/stats/external/ID          how many times externalId ID was accepted
  GET  /_sim/stats/rate?from=CODE       accepted per epoch second for one sender code
  GET  /_sim/stats/accepted?from=CODE   every acceptance time (epoch ms) of one sender code,
                                        with accepted, first_ms, last_ms
  GET  /_sim/messages?externalId=ID     the public look-up, without auth
  POST /_sim/reset                      forget messages, counters and pending receipts"""


def _parser(prog: str = "python -m broadcaster.simulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Messangi-compatible carrier simulator with faults on demand.",
        epilog=f"Example: {prog} --port 8025 --share-500 0.05 --dlr-mix DELIVRD=0.9,UNDELIV=0.1"
        f"\n\n{CONTROL_EPILOG}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on ({DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on ({DEFAULT_PORT})"
    )
    parser.add_argument("--config-json", help="settings as one JSON object (applied first)")
    hints = typing.get_type_hints(SimulatorConfig)
    defaults = SimulatorConfig()
    for f in fields(SimulatorConfig):
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        text = f"{FLAG_HELP[f.name]} (default: {_shown(getattr(defaults, f.name))})"
        if hint is bool:
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        elif hint in (int, float, str):
            parser.add_argument(flag, dest=f.name, type=hint, default=None, help=text)
        elif f.name == "seed":
            parser.add_argument(flag, dest=f.name, type=int, default=None, help=text)
        elif f.name == "default_callback_url":
            parser.add_argument(flag, dest=f.name, default=None, help=text)
        else:  # mappings and lists: JSON, or NAME=WEIGHT,… / a,b,c
            parser.add_argument(flag, dest=f.name, type=_loose_json, default=None, help=text)
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="logging level: DEBUG, INFO, WARNING (default), ERROR",
    )
    return parser


def _shown(value: Any) -> str:
    """A default as a user would type it: JSON for mappings and lists, none for None."""
    if value is None:
        return "none"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value) if value else "none"
    return str(value)


def _loose_json(text: str) -> Any:
    """``{"DELIVRD": 0.9}`` or ``DELIVRD=0.9,UNDELIV=0.1`` or ``slow,ok,500``."""
    try:
        return json.loads(text)
    except ValueError:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if all("=" in p for p in parts):
            return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        return parts


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    changes: dict[str, Any] = json.loads(args.config_json) if args.config_json else {}
    for f in fields(SimulatorConfig):
        value = getattr(args, f.name)
        if value is not None:
            changes[f.name] = value
    return SimulatorConfig().updated(changes)


def main(argv: Sequence[str] | None = None, prog: str = "python -m broadcaster.simulator") -> int:
    """Run the simulator until interrupted; 2 for bad settings or a busy port."""
    args = _parser(prog).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    try:
        config = config_from_args(args)
    except (ValueError, TypeError) as exc:
        print(f"bad simulator settings: {exc}")
        return 2
    try:
        run_simulator(args.host, args.port, config)
    except listen.PortBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

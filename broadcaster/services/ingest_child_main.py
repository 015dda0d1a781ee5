"""The producer side of :mod:`ingest_child`: the process that reads, validates and renders.

It reads the job's arguments (one JSON line on stdin) and writes the frames of
:mod:`ingest_child`'s protocol to stdout. Apart from ``ingest_child`` so that the parent's side,
which the broadcast and contact imports use, does not import them back.
"""

from __future__ import annotations

import json
import marshal
import sys
from collections.abc import Callable
from typing import Any

from broadcaster.domain.phones import PhoneNormalizer
from broadcaster.domain.templates import parse_template
from broadcaster.errors import FileRejected, InputError
from broadcaster.ingest import open_recipients
from broadcaster.services.importer import batches_of
from broadcaster.services.recipients import build_drafts, with_zones


def _produce_drafts(args: dict[str, Any], send: Callable[..., None]) -> None:
    """A broadcast's batches: its messages rendered, its row errors."""
    with open_recipients(**args["reopen"]) as table:
        template = parse_template(args["template"])
        drafts = build_drafts(table.rows, template, PhoneNormalizer(args["region"]), table.columns)
        zones: set[str] = set()
        if args["zone_fallback"] is not None:
            drafts = with_zones(drafts, args["zone_fallback"], zones)
        for batch in batches_of(drafts, args["batch_rows"]):
            send("batch", tuple(batch.messages), tuple(batch.errors))
        send("end", tuple(sorted(zones)))


def main() -> None:
    """The child: read the arguments line, stream the batches (of the job it is given: a
    broadcast's, or a contact import's), say how it ended."""
    args = json.loads(sys.stdin.readline())
    out = sys.stdout.buffer

    def send(*message: Any) -> None:
        data = marshal.dumps(message)
        out.write(len(data).to_bytes(4, "big"))
        out.write(data)

    try:
        if args["job"] == "contacts":
            # only a contact import's child pays for importing it (~110 ms of every start)
            from broadcaster.services.contact_import import produce

            produce(args, send)
        else:
            _produce_drafts(args, send)
    except FileRejected as exc:
        send("rejected", exc.reason, exc.line)
    except InputError as exc:
        send("refused", str(exc))
    out.flush()

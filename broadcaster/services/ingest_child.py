"""A big file's rows read, validated and rendered on the second core while this process stores.

An import is one pipeline: read a row, normalise its number, render and measure its text, then
store it. Storing (SQLite's B-trees, PostgreSQL's COPY) takes about a third of the time; the
rest is per-row Python. For a big CSV/TXT file a producer process runs everything up to the
store, exactly as :func:`create_from_table` would in process (the same reader, template, phone
rules and :func:`importer.batches_of`), and sends the ready batches to the parent, which stores
them with :func:`importer.import_batches`: the same batches, so the same messages, row errors,
duplicates (the unique index still decides, in the same order) and counters.

Memory stays flat: the pipe holds a few batches at most and the child blocks while the parent
stores. All or nothing holds: the parent's import discards what it staged on any failure, and a
child that fails or dies becomes a FileRejected naming the file (never a traceback). The child
reads untrusted input, so what it sends back is :mod:`marshal` data (tuples, strings, ints and
None; loading it runs no code, unlike pickle; about three times faster to load than JSON, and
tuples stay tuples), one frame a message, each a 4-byte big-endian length and the marshalled
tuple::

    ("batch", (message row, ...), (row error, ...))   any number, in file order
    ("end", (zone, ...))                              the last of a file read to the end
    ("rejected", reason, line_or_None)                instead: the reader refused the file
    ("refused", message)                              instead: any other InputError
"""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from broadcaster.errors import FileRejected, InputError
from broadcaster.ingest.rows import RecipientTable
from broadcaster.ingest.xlsx_child import reap
from broadcaster.services.importer import Batch

#: Bytes of the child's stderr kept to explain its death.
STDERR_TAIL_BYTES = 2000
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
# Not ``-m``: runpy would import the package's copy of this module a second time.
_CHILD_MAIN = "from broadcaster.services.ingest_child_main import main; main()"


class ProducerChild:
    """One producer process for one file; a context manager that kills it if it still runs.

    ``reopen``: the table's :attr:`RecipientTable.reopen` (how to open the same file again);
    ``template``: the message text; ``region``: the phone normaliser's default region;
    ``zone_fallback``: set for a broadcast with a send window (each draft gets its zone).
    """

    def __init__(
        self,
        reopen: dict[str, Any],
        *,
        template: str = "",
        region: str | None,
        zone_fallback: str | None = None,
        batch_rows: int,
        job: str = "broadcast",
        options: dict[str, Any] | None = None,
    ) -> None:
        self.source = str(reopen.get("source") or reopen["path"])
        #: The payload of the child's "end" message, once it came.
        self.end: tuple[Any, ...] = ()
        args = {
            "job": job,
            "reopen": reopen,
            "template": template,
            "region": region,
            "zone_fallback": zone_fallback,
            "batch_rows": batch_rows,
            **(options or {}),
        }
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p
            ),
        }
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen(  # noqa: S603 - our own module, no shell
            [sys.executable, "-c", _CHILD_MAIN],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(args).encode() + b"\n")
        self._proc.stdin.close()

    def __enter__(self) -> ProducerChild:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def batches(self, zones: set[str]) -> Iterator[Batch]:
        """The child's batches in file order; the zones it met go into ``zones`` before the
        last batch comes out (the publication reads them). Raises FileRejected / InputError."""
        for messages, errors in self.frames():
            yield Batch(list(messages), list(errors))
        zones.update(self.end[0])

    def frames(self) -> Iterator[tuple[Any, ...]]:
        """The payloads of the child's "batch" messages in file order; once they end, the
        "end" message's is :attr:`end`. Raises FileRejected / InputError."""
        stdout = self._proc.stdout
        assert stdout is not None
        while True:
            message = _read_frame(stdout)
            if message is None:
                break
            kind = message[0]
            if kind == "batch":
                yield message[1:]
            elif kind == "end":
                self.end = message[1:]
                self._finish()
                return
            elif kind == "rejected":
                raise FileRejected(self.source, message[1], message[2])
            else:
                raise InputError(message[1])
        self._finish()
        raise FileRejected(self.source, f"the process reading the file stopped: {self._why()}")

    def _finish(self) -> None:
        rc = self._proc.wait()
        if rc != 0:
            raise FileRejected(self.source, f"the process reading the file failed: {self._why()}")

    def _why(self) -> str:
        rc = self._proc.wait()
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - STDERR_TAIL_BYTES))
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        died = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
        return f"{died}: {lines[-1]}" if lines else died

    def stop(self) -> None:
        """Kill the child if it still runs and reap it; close what it left open."""
        reap(self._proc, self._stderr)


def worth_a_child(table: RecipientTable, min_bytes: int) -> bool:
    """Whether a producer process should read this file: a CSV/TXT file read from disk, at
    least ``min_bytes`` big (``ingest_child_min_bytes``; 0: never)."""
    if not min_bytes or table.reopen is None or table.format not in ("csv", "txt"):
        return False
    try:
        return Path(table.reopen["path"]).stat().st_size >= min_bytes
    except OSError:
        return False  # the in-process path reports it as it always did


def _read_frame(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """The next message, or None where the stream ends (a child that died mid-frame too)."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "big")
    body = stream.read(size)
    if len(body) < size:
        return None
    message = marshal.loads(body)
    if not isinstance(message, tuple) or not message:
        raise ValueError("the reading process sent something that is not a message")
    return message

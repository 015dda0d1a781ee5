"""Untrusted workbooks are read in a child process with a memory limit.

python-calamine is native code: when it cannot allocate, it aborts the process it runs in (no
Python exception). The guard (:mod:`xlsx_guard`) refuses every oversized sheet it can see, and
this module makes whatever it cannot see harmless: the guard and calamine run in a child
interpreter with ``RLIMIT_AS`` (address space), ``RLIMIT_CPU`` and no core dumps, and stream the
sheet's rows back over a pipe, one JSON line per batch. A child that dies (an abort, a signal,
an allocation failure) becomes a FileRejected naming the file and the reason, in the API, the
drop folder, the ingest task and the CLI alike, and the process that asked is untouched.

Memory stays flat on the reading side: the pipe holds a few batches at most and the child blocks
while nobody reads; the child (:mod:`xlsx_child_main`) holds a small sheet as calamine loads it, and reads a big one as a
stream (:mod:`xlsx_reader`). JSON, not pickle: the
child reads hostile input, so what it sends back is data, never code.

Protocol (child -> parent), one JSON array a line::

    ["table", sheet_name, [sheet names]]   first, once the sheet is loaded
    ["rows", [[line, [cell, ...]], ...]]   any number of batches
    ["end"]                                the last line of a sheet read to the end
    ["rejected", reason, line_or_null]     instead of any of the above: the file is refused
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from broadcaster.errors import FileRejected

#: Address space the reading child may use, bytes. calamine's grid for XLSX_MAX_CELLS cells is
#: ~640 MB, plus its strings and the interpreter (~60 MB): 2 GiB leaves room for real files.
XLSX_READER_MEMORY_BYTES = 2 * 1024**3
#: CPU seconds the child may use before the kernel stops it (a 1,000,000-row sheet takes ~15 s).
XLSX_READER_CPU_S = 600
#: Rows per message on the pipe: large enough that JSON and the pipe cost little per row.
BATCH_ROWS = 1000
#: Bytes of the child's stderr kept to explain its death (a native abort prints one line).
STDERR_TAIL_BYTES = 2000
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_ALLOCATION_FAILED = "memory allocation of "
# Not ``-m``: the package imports this module first, and runpy warns about running it twice.
_CHILD_MAIN = "from broadcaster.ingest.xlsx_child_main import main; main()"


def reap(proc: subprocess.Popen[bytes], stderr: IO[bytes]) -> None:
    """Kill a reading child if it still runs, wait for it, close its pipe and stderr file
    (idempotent; the reading processes of :mod:`broadcaster.services.ingest_child` too)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    stderr.close()


class XlsxChild:
    """One child reading one sheet; ``stop()`` kills it if it still runs (the caller's cleanup)."""

    def __init__(
        self,
        path: Path,
        *,
        source: str,
        sheet: str | None,
        max_rows: int,
        memory_bytes: int = XLSX_READER_MEMORY_BYTES,
        stream_min_cells: int | None = None,
    ) -> None:
        self.source, self.memory_bytes = source, memory_bytes
        args = {
            "path": str(path),
            "source": source,
            "sheet": sheet,
            "max_rows": max_rows,
            "memory_bytes": memory_bytes,
            "stream_min_cells": stream_min_cells,
        }
        env = {
            **os.environ,
            "RUST_BACKTRACE": "0",  # one line on a native abort, not a page
            "PYTHONPATH": os.pathsep.join(
                p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p
            ),
        }
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen(  # noqa: S603 - our own module, no shell
            [sys.executable, "-c", _CHILD_MAIN, json.dumps(args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )

    def table(self) -> tuple[str, list[str]]:
        """Wait for the sheet to load: (its name, every sheet's name), or FileRejected."""
        message = self._next()
        if message[0] != "table":
            raise self._broken(f"unexpected message {message[0]!r}")
        return str(message[1]), [str(n) for n in message[2]]

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """The sheet's non-empty rows as (sheet row number, cells), until the child's end."""
        while True:
            message = self._next()
            if message[0] == "end":
                self.stop()
                return
            yield from message[1]  # [line, cells] lists: records as tabulate reads them

    def stop(self) -> None:
        """Kill the child if it still runs, reap it, close the pipes (idempotent)."""
        reap(self._proc, self._stderr)

    def _next(self) -> list[Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise self._died()
        try:
            message = json.loads(line)
        except ValueError:
            raise self._broken("not a message") from None
        if not isinstance(message, list) or not message:
            raise self._broken("not a message")
        if message[0] == "rejected":
            self.stop()
            raise FileRejected(self.source, str(message[1]), message[2])
        return message

    def _broken(self, what: str) -> FileRejected:
        self.stop()
        return FileRejected(self.source, f"unreadable .xlsx: the reader process sent {what}")

    def _died(self) -> FileRejected:
        code = self._proc.wait()
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - STDERR_TAIL_BYTES))
        said = self._stderr.read().decode("utf-8", "replace").strip()
        self.stop()
        return FileRejected(self.source, death_reason(code, said, self.memory_bytes))


def death_reason(code: int, stderr: str, memory_bytes: int) -> str:
    """Why the reading child ended without an answer, for the person who sent the file."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = next((line for line in lines if _ALLOCATION_FAILED in line), lines[-1] if lines else "")
    limit = f"the reader's limit of {memory_bytes:,} bytes"
    if _ALLOCATION_FAILED in last or "MemoryError" in last:
        return f"unreadable .xlsx: reading it needs more memory than {limit} ({last[:200]})"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (
            f"unreadable .xlsx: the reader process was stopped by {name} "
            f"(out of memory under {limit}, out of CPU time, or a malformed file)"
        )
    return f"unreadable .xlsx: the reader process exited with status {code} ({last[:200]})"

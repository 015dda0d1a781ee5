"""The drop folder's file-system side: what a name means, when a file has settled, and how a
file leaves the inbox (report first, then a move that never overwrites).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

from broadcaster.logsafe import printable

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".json")
SIDECAR_SUFFIX = ".broadcast.json"
RESULT_SUFFIX = ".result.json"
ERROR_SUFFIX = ".error.json"
DEFAULTS_FILE = "defaults.json"
#: Names of files still being written by browsers, scp/WinSCP, editors, office suites.
TEMP_SUFFIXES = (
    ".tmp",
    ".temp",
    ".part",
    ".partial",
    ".crdownload",
    ".download",
    ".filepart",
    ".swp",
    "~",
)
TEMP_PREFIXES = (".", "~")


def is_temporary(name: str) -> bool:
    lower = name.lower()
    return lower.startswith(TEMP_PREFIXES) or lower.endswith(TEMP_SUFFIXES)


def kind_of(name: str) -> str:
    """``temporary``, ``sidecar``, ``report``, ``data`` or ``other`` (by name only)."""
    lower = name.lower()
    if is_temporary(name):
        return "temporary"
    if lower.endswith(SIDECAR_SUFFIX):
        return "sidecar"
    if lower.endswith((RESULT_SUFFIX, ERROR_SUFFIX)):
        return "report"
    return "data" if lower.endswith(DATA_SUFFIXES) else "other"


@dataclass(frozen=True)
class Seen:
    """What one look at a file showed."""

    size: int
    mtime_ns: int
    ctime_ns: int
    regular: bool

    @classmethod
    def of(cls, path: Path) -> Seen | None:
        try:
            st = path.lstat()
        except FileNotFoundError:
            return None
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, stat.S_ISREG(st.st_mode))

    @property
    def last_change_s(self) -> float:
        """Seconds since the epoch of the last write, rename or attribute change."""
        return max(self.mtime_ns, self.ctime_ns) / 1e9


def settled(seen: Seen, now_s: float, window_s: float) -> bool:
    """True when nothing changed the file for ``window_s`` seconds before ``now_s``."""
    return now_s - seen.last_change_s >= window_s


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path
    seen: Seen


def unique_names(name: str) -> Iterator[str]:
    """``list.csv``, then ``list-2.csv``, ``list-3.csv``…"""
    path = Path(name)
    suffix = "".join(path.suffixes[-1:])
    stem = name[: len(name) - len(suffix)] if suffix else name
    yield name
    for n in count(2):
        yield f"{stem}-{n}{suffix}"


def move_no_clobber(src: Path, dst: Path) -> bool:
    """Move ``src`` to ``dst`` unless ``dst`` exists; False when it does. Never overwrites.

    FileNotFoundError: ``src`` left meanwhile (nothing is left at ``dst`` then)."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (
            errno.EXDEV,
            errno.EPERM,
            errno.ENOTSUP,
            errno.EOPNOTSUPP,
            errno.EMLINK,
        ):
            raise
        # No hard links on this file system (or another device): check, then move.
        if os.path.lexists(dst):
            return False
        shutil.move(str(src), str(dst))
        return True
    try:
        os.unlink(src)
    except FileNotFoundError:
        # Another watcher linked the same file under its own name and unlinked it first: it
        # owns the move, so this second name must not stay behind as a duplicate.
        os.unlink(dst)
        raise
    return True


def _move_sidecar(src: Path, dst: Path) -> bool:
    try:
        return move_no_clobber(src, dst)
    except FileNotFoundError:  # an operator took it meanwhile
        return False


def file_away(
    dest: Path, entry: Entry, sidecar: Entry | None, report_suffix: str, report: dict[str, Any]
) -> dict[str, str] | None:
    """Write the report, then move the file (and sidecar) beside it, under a free name.

    The report is created first with O_EXCL: it claims the name. A crash before the move
    leaves the file in the inbox, where the next pass finds its key in the ledger. None: the
    file left the inbox meanwhile (nothing is written then).
    """
    for name in unique_names(entry.name):
        report_path = dest / (name + report_suffix)
        side_path = dest / (name + SIDECAR_SUFFIX)
        if os.path.lexists(dest / name) or (sidecar and os.path.lexists(side_path)):
            continue
        moved = {
            "movedTo": str(Path(dest.name) / name),
            "report": str(Path(dest.name) / report_path.name),
        }
        if sidecar:
            moved["sidecarMovedTo"] = str(Path(dest.name) / side_path.name)
        try:
            with open(report_path, "x", encoding="utf-8") as f:
                json.dump({**report, **moved}, f, indent=2, ensure_ascii=False, default=str)
                f.write("\n")
        except FileExistsError:
            continue
        try:
            if not move_no_clobber(entry.path, dest / name):
                report_path.unlink()
                continue
        except FileNotFoundError:  # taken meanwhile (by an operator, or a second watcher)
            report_path.unlink()
            return None
        if sidecar and not _move_sidecar(sidecar.path, side_path):
            log.warning(
                "drop folder: %s could not be moved beside %s",
                printable(sidecar.name),
                printable(name),
            )
        return moved
    raise AssertionError("unreachable: names are endless")

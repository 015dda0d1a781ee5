"""Moves out of the drop folder's inbox when several watchers race for one file."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from broadcaster.services.dropfolder_files import move_no_clobber

ROUNDS = 300
WATCHERS = 4


def _race(src: Path, dest: Path) -> None:
    start = threading.Barrier(WATCHERS)

    def watcher(n: int) -> None:
        start.wait()
        # FileNotFoundError: another watcher took it, what the caller sees as "gone"
        with contextlib.suppress(FileNotFoundError):
            move_no_clobber(src, dest / f"list-{n}.csv")

    threads = [threading.Thread(target=watcher, args=(n,)) for n in range(WATCHERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_a_file_raced_by_several_watchers_lands_once(tmp_path: Path):
    # Each watcher links the file under its own free name, then unlinks the inbox entry; the
    # losers used to leave their link behind, so one file landed in done/ twice.
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    for round_ in range(ROUNDS):
        dest = done / str(round_)
        dest.mkdir(parents=True)
        src = inbox / "list.csv"
        src.write_text(f"round {round_}\n")
        _race(src, dest)
        assert not src.exists()
        landed = list(dest.iterdir())
        assert len(landed) == 1, (round_, landed)
        assert landed[0].read_text() == f"round {round_}\n"


def test_an_existing_name_is_never_overwritten(tmp_path: Path):
    src, dst = tmp_path / "a.csv", tmp_path / "b.csv"
    src.write_text("new")
    dst.write_text("old")
    assert move_no_clobber(src, dst) is False
    assert dst.read_text() == "old" and src.read_text() == "new"

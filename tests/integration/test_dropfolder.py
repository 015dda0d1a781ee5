"""The drop folder: stability, temporary names, sidecars, defaults, bad files, restarts, dedupe.

Time is driven, not slept: every pass gets ``now`` explicitly, and a file's "last change" is what
the file system says (the later of mtime and ctime), so a test writes, then asks about a ``now``
just before or just after the stability window.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.domain.wire import iso8601
from broadcaster.errors import FileRejected
from broadcaster.ingest import open_recipients
from broadcaster.services import dropfolder
from broadcaster.services.broadcasts import get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.services.control import delete
from broadcaster.services.dropfolder import DropFolder, EventKind, Seen, kind_of, settled
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import broadcasts, imported_files, messages
from tests.support.hostile_files import ExpectedProblem, build_hostile_files

WINDOW_S = 2.0
CODE = "55501"
LATER = 3600.0  # seconds: "long after anything was written"


# ---------------------------------------------------------------------------- pure rules


def _seen(mtime_s: float, ctime_s: float | None = None) -> Seen:
    return Seen(
        10, int(mtime_s * 1e9), int((ctime_s if ctime_s is not None else mtime_s) * 1e9), True
    )


@pytest.mark.parametrize(
    ("mtime_s", "ctime_s", "now_s", "window_s", "expected"),
    [
        (100.0, None, 101.9, 2.0, False),  # written 1.9 s ago
        (100.0, None, 102.0, 2.0, True),  # exactly the window
        (100.0, 101.5, 102.0, 2.0, False),  # renamed/chmod-ed 0.5 s ago: ctime counts
        (100.0, 101.5, 103.5, 2.0, True),
        (50.0, None, 100.0, 2.0, True),  # moved in with an old mtime and an old ctime
        (200.0, None, 100.0, 2.0, False),  # mtime in the future (clock skew): wait
        (100.0, None, 100.0, 0.0, True),  # window 0: read at once
    ],
)
def test_settled(mtime_s, ctime_s, now_s, window_s, expected):
    assert settled(_seen(mtime_s, ctime_s), now_s, window_s) is expected


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("list.csv", "data"),
        ("LIST.CSV", "data"),
        ("a.b.txt", "data"),
        ("x.tsv", "data"),
        ("book.xlsx", "data"),
        ("batch.json", "data"),
        ("list.broadcast.json", "sidecar"),
        ("list.csv.broadcast.json", "sidecar"),
        ("list.csv.result.json", "report"),
        ("list.csv.error.json", "report"),
        ("list.csv.tmp", "temporary"),
        ("list.csv.part", "temporary"),
        ("list.csv.crdownload", "temporary"),
        ("list.csv.partial", "temporary"),
        ("list.csv.filepart", "temporary"),
        ("list.csv.download", "temporary"),
        (".list.csv", "temporary"),
        ("~$book.xlsx", "temporary"),
        ("list.csv~", "temporary"),
        (".list.csv.swp", "temporary"),
        ("notes.docx", "other"),
        ("list", "other"),
    ],
)
def test_kind_of(name, kind):
    assert kind_of(name) == kind


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def folder(tmp_path: Path, sqlite_url: str) -> DropFolder:
    return make_folder(tmp_path / "drop", sqlite_url)


def make_folder(root: Path, url: str, **settings: Any) -> DropFolder:
    upgrade(url)
    engine = engine_for(url)
    s = Settings(database_url=url, **settings)
    add_code(engine, s, CODE, "short")
    drop = DropFolder(root, engine, s, stable_s=WINDOW_S, orphan_s=600.0)
    drop.ensure()
    return drop


def write_csv(path: Path, n: int, first: int = 0) -> Path:
    with path.open("w") as f:
        f.write("phone,name\n")
        for i in range(first, first + n):
            f.write(f"+5255{10_000_000 + i},Client {i}\n")
    return path


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def last_change(path: Path) -> float:
    seen = Seen.of(path)
    assert seen is not None
    return seen.last_change_s


def only(events: list[dropfolder.Event], kind: EventKind) -> dropfolder.Event:
    matching = [e for e in events if e.kind == kind]
    assert len(matching) == 1, events
    return matching[0]


def report(drop: DropFolder, rel: str) -> dict[str, Any]:
    return json.loads((drop.root / rel).read_text())


def count(drop: DropFolder, table: sa.Table) -> int:
    with drop.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def defaults(drop: DropFolder, **fields: Any) -> None:
    write_json(drop.root / "defaults.json", {"from": CODE, "text": "Hello {name}", **fields})


# ---------------------------------------------------------------------------- stability


def test_partial_writes_are_never_read(folder: DropFolder):
    # Given a writer that appends 5 blocks of 200 rows, one pass after each block
    defaults(folder)
    path = folder.inbox / "big.csv"
    path.write_text("phone,name\n")
    for step in range(5):
        with path.open("a") as f:
            for i in range(step * 200, (step + 1) * 200):
                f.write(f"+5255{10_000_000 + i},Client {i}\n")
        # When a pass runs while the writer is still within the window
        events = folder.poll(now=last_change(path) + WINDOW_S * 0.9)
        # Then nothing is read: no broadcast, no ledger row, the file stays in the inbox
        assert only(events, EventKind.WAITING).file == "big.csv"
        assert count(folder, broadcasts) == 0 and count(folder, imported_files) == 0
        assert path.exists()
    # When the window has passed with no change, the whole file is imported once
    event = only(folder.poll(now=last_change(path) + WINDOW_S), EventKind.IMPORTED)
    assert event.detail["expectedMessages"] == 1000
    assert not path.exists() and (folder.done / "big.csv").exists()


def test_file_changed_while_being_read_is_rolled_back(folder: DropFolder, monkeypatch):
    # Given a settled file whose writer appends once more while the watcher hashes it
    defaults(folder)
    path = write_csv(folder.inbox / "list.csv", 10)
    real_hash = dropfolder.sha256_file

    def hash_then_append(p: Path) -> str:
        digest = real_hash(p)
        with p.open("a") as f:
            f.write("+525599999999,Late row\n")
        return digest

    monkeypatch.setattr(dropfolder, "sha256_file", hash_then_append)
    event = only(folder.poll(now=time.time() + LATER), EventKind.RETRY)
    # Then the import is rolled back whole and the file waits
    assert "changed while being read" in event.detail["reason"]
    assert (
        count(folder, broadcasts) == 0
        and count(folder, messages) == 0
        and count(folder, imported_files) == 0
    )
    assert path.exists()
    # When it settles again, it is imported with every row, the late one included
    monkeypatch.setattr(dropfolder, "sha256_file", real_hash)
    event = only(folder.poll(now=time.time() + LATER), EventKind.IMPORTED)
    assert event.detail["expectedMessages"] == 11


def test_temporary_names_are_never_read(folder: DropFolder):
    defaults(folder)
    names = [
        ".list.csv",
        "list.csv.part",
        "list.csv.tmp",
        "list.csv.crdownload",
        "~$book.xlsx",
        "list.csv~",
    ]
    for name in names:
        write_csv(folder.inbox / name, 3)
    # However long they sit, temporary names are neither read nor moved
    assert folder.poll(now=time.time() + LATER) == []
    assert sorted(p.name for p in folder.inbox.iterdir()) == sorted(names)
    assert count(folder, broadcasts) == 0
    # Renamed to its real name, a file is taken (after the window: a rename is a change)
    os.rename(folder.inbox / "list.csv.part", folder.inbox / "list.csv")
    assert only(folder.poll(now=time.time()), EventKind.WAITING).file == "list.csv"
    assert (
        only(folder.poll(now=time.time() + WINDOW_S), EventKind.IMPORTED).detail["expectedMessages"]
        == 3
    )


# ---------------------------------------------------------------------------- sidecars and defaults


def test_sidecar_fields_override_defaults(folder: DropFolder):
    defaults(folder, name="from defaults", tz="America/Mexico_City")
    write_csv(folder.inbox / "list.csv", 4)
    write_json(
        folder.inbox / "list.broadcast.json", {"text": "Promo for {name}", "at": "01-12-2030 09:30"}
    )
    event = only(folder.poll(now=time.time() + LATER), EventKind.IMPORTED)
    view = get_broadcast(folder.engine, event.detail["broadcastId"])
    assert view.text == "Promo for {name}"  # sidecar
    assert view.shortcode == CODE  # defaults
    assert view.name == "from defaults"  # defaults
    assert (
        iso8601(view.start_date) == "2030-12-01T09:30:00-06:00"
    )  # Messangi date, wall time in the tz
    assert view.status == "SCHEDULED"
    # The sidecar moved beside the data file and the result names both
    result = report(folder, "done/list.csv.result.json")
    assert result["sidecar"] == "list.broadcast.json"
    assert result["sidecarMovedTo"] == "done/list.csv.broadcast.json"
    assert (folder.done / "list.csv.broadcast.json").exists()
    assert list(folder.inbox.iterdir()) == []


def test_full_name_sidecar_wins_and_an_unsettled_sidecar_is_waited_for(folder: DropFolder):
    # Given the data file, then its sidecar a little later (it arrived after the data file)
    data = write_csv(folder.inbox / "list.csv", 2)
    write_json(folder.inbox / "list.broadcast.json", {"from": CODE, "text": "stem sidecar"})
    time.sleep(0.05)  # not a race guard: only so the two files' timestamps differ
    side = write_json(
        folder.inbox / "list.csv.broadcast.json", {"from": CODE, "text": "full-name sidecar"}
    )
    assert last_change(side) > last_change(data)
    # When the data file has settled but the sidecar has not, the file waits
    event = only(folder.poll(now=last_change(data) + WINDOW_S), EventKind.WAITING)
    assert "list.csv.broadcast.json" in event.detail["reason"]
    assert count(folder, broadcasts) == 0
    # When both have settled, the full-name sidecar applies; the stem one stays for its own file
    event = only(folder.poll(now=last_change(side) + WINDOW_S), EventKind.IMPORTED)
    assert get_broadcast(folder.engine, event.detail["broadcastId"]).text == "full-name sidecar"
    assert [p.name for p in folder.inbox.iterdir()] == ["list.broadcast.json"]


def test_json_file_own_fields_sit_between_defaults_and_sidecar(folder: DropFolder):
    # Given a Messangi batch with its own text, time and zone, and defaults with another text
    defaults(folder, text="defaults text")
    write_json(
        folder.inbox / "batch.json",
        {
            "from": CODE,
            "text": "Hola {0}",
            "startDate": "2031-01-15T08:00",
            "timezone": "America/Bogota",
            "type": "SMS",
            "to": [
                {"to": "+573001234567", "params": ["Ana"]},
                {"to": "+573001234568", "params": ["Luis"]},
                {"to": "not a number", "params": ["X"]},
            ],
        },
    )
    write_json(folder.inbox / "second.json", {"text": "file text", "to": ["+573001234569"]})
    write_json(folder.inbox / "second.broadcast.json", {"text": "sidecar text"})
    events = folder.poll(now=time.time() + LATER)
    by_file = {e.file: e for e in events}
    first = get_broadcast(folder.engine, by_file["batch.json"].detail["broadcastId"])
    assert (first.text, first.timezone, iso8601(first.start_date)) == (
        "Hola {0}",
        "America/Bogota",
        "2031-01-15T08:00:00-05:00",
    )
    assert (first.expected_messages, first.invalid_rows) == (2, 1)
    errors = report(folder, "done/batch.json.result.json")["rowErrors"]
    assert [(e["line"], e["value"]) for e in errors] == [(3, "not a number")]
    second = get_broadcast(folder.engine, by_file["second.json"].detail["broadcastId"])
    assert second.text == "sidecar text"


def test_xlsx_with_sheet_from_sidecar(folder: DropFolder):
    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "Notes"
    notes.append(["nothing here"])
    sheet = wb.create_sheet("Recipients")
    sheet.append(["msisdn", "first_name"])
    for i in range(5):
        sheet.append([f"+5255{20_000_000 + i}", f"Name{i}"])
    wb.save(folder.inbox / "book.xlsx")
    write_json(
        folder.inbox / "book.broadcast.json",
        {"from": CODE, "text": "Hi {first_name}", "sheet": "Recipients"},
    )
    event = only(folder.poll(now=time.time() + LATER), EventKind.IMPORTED)
    assert event.detail["expectedMessages"] == 5
    with folder.engine.connect() as conn:
        texts = sorted(r[0] for r in conn.execute(sa.select(messages.c.text)))
    assert texts == [f"Hi Name{i}" for i in range(5)]


def test_broken_defaults_hold_every_file_back(folder: DropFolder):
    (folder.root / "defaults.json").write_text('{"from": "55501",\n "text": "Hi",\n}')
    write_csv(folder.inbox / "list.csv", 2)
    event = only(folder.poll(now=time.time() + LATER), EventKind.RETRY)
    assert (event.file, event.detail["line"]) == (
        "defaults.json",
        3,
    ) and "invalid JSON" in event.detail["reason"]
    assert (folder.inbox / "list.csv").exists() and count(folder, broadcasts) == 0
    defaults(folder)
    assert only(folder.poll(now=time.time() + LATER), EventKind.IMPORTED)


# ---------------------------------------------------------------------------- bad files


def test_bad_sidecar_and_request_fail_with_file_line_and_reason(folder: DropFolder):
    defaults(folder)
    write_csv(folder.inbox / "a.csv", 2)
    (folder.inbox / "a.broadcast.json").write_text('{\n  "text": "Hi",\n  "from" "55501"\n}')
    write_csv(folder.inbox / "b.csv", 2)
    write_json(folder.inbox / "b.broadcast.json", {"txet": "typo"})
    write_csv(folder.inbox / "c.csv", 2)
    write_json(folder.inbox / "c.broadcast.json", {"from": "99999"})
    write_csv(folder.inbox / "d.csv", 2)
    write_json(folder.inbox / "d.broadcast.json", {"text": "Hi {surname}"})
    events = folder.poll(now=time.time() + LATER)
    assert {e.file for e in events if e.kind == EventKind.FAILED} == {
        "a.csv",
        "b.csv",
        "c.csv",
        "d.csv",
    }
    a = report(folder, "failed/a.csv.error.json")
    assert (a["source"], a["line"]) == ("a.broadcast.json", 3) and "invalid JSON" in a["reason"]
    assert "unknown field 'txet'" in report(folder, "failed/b.csv.error.json")["reason"]
    assert "CODE_NOT_ALLOWED" in report(folder, "failed/c.csv.error.json")["reason"]
    d = report(folder, "failed/d.csv.error.json")
    assert d["source"] == "d.csv" and "{surname}" in d["reason"] and "columns: name" in d["reason"]
    # Each sidecar went with its file; nothing was stored
    assert sorted(p.name for p in folder.failed.glob("*.broadcast.json")) == [
        f"{x}.csv.broadcast.json" for x in "abcd"
    ]
    assert list(folder.inbox.iterdir()) == []
    assert count(folder, broadcasts) == 0 and count(folder, imported_files) == 0


def test_hostile_files_go_to_failed_or_done_with_lines_and_reasons(tmp_path: Path, sqlite_url: str):
    cases = build_hostile_files(tmp_path / "hostile")
    # Settings that some cases need (a small row or size limit) get a folder of their own
    groups: dict[tuple[int, int], list[Any]] = {}
    for case in cases:
        kw = case.open_kwargs
        groups.setdefault(
            (kw.get("max_rows", 2_000_000), kw.get("max_file_bytes", 500 * 1024 * 1024)), []
        ).append(case)
    for n, ((max_rows, max_bytes), group) in enumerate(sorted(groups.items())):
        drop = make_folder(
            tmp_path / f"drop{n}", sqlite_url, max_rows=max_rows, max_file_bytes=max_bytes
        )
        write_json(drop.root / "defaults.json", {"from": CODE, "text": "Hello"})
        add_code(
            drop.engine, drop.settings, "12345", "short"
        )  # the code JSON cases name themselves
        for case in group:
            shutil.copy(case.path, drop.inbox / case.path.name)
            if "sheet" in case.open_kwargs:
                write_json(
                    drop.inbox / f"{case.path.name}.broadcast.json",
                    {"sheet": case.open_kwargs["sheet"]},
                )
        before = count(drop, broadcasts)
        events = {e.file: e for e in drop.poll(now=time.time() + LATER)}
        for case in group:
            name = case.path.name
            if case.expectation[0] == "rejected":
                assert events[name].kind == EventKind.FAILED, (name, events[name])
                err = report(drop, f"failed/{name}.error.json")
                assert case.expectation[1] in err["reason"], (name, err)
                assert (err["file"], err["source"], err["line"]) == (
                    name,
                    name,
                    _reader_line(case),
                ), name
            else:
                assert events[name].kind == EventKind.IMPORTED, (name, events[name])
                result = report(drop, f"done/{name}.result.json")
                problems = [p for p in case.expectation[1] if isinstance(p, ExpectedProblem)]
                shown = {e["line"]: e["reason"] for e in result["rowErrors"]}
                for p in problems[:20]:
                    assert p.line in shown and p.reason in shown[p.line], (name, p, shown)
        imported = sum(1 for c in group if c.expectation[0] == "rows")
        assert count(drop, broadcasts) - before == imported
        assert list(drop.inbox.iterdir()) == []


def _reader_line(case: Any) -> int | None:
    try:
        with open_recipients(case.path, **case.open_kwargs) as table:
            for _ in table.rows:
                pass
    except FileRejected as exc:
        return exc.line
    raise AssertionError(f"{case.name} was not rejected")


def test_unsupported_files_links_and_orphan_sidecars_fail(folder: DropFolder, tmp_path: Path):
    (folder.inbox / "notes.docx").write_bytes(b"PK\x03\x04")
    outside = write_csv(tmp_path / "outside.csv", 2)
    (folder.inbox / "link.csv").symlink_to(outside)
    write_json(folder.inbox / "lonely.broadcast.json", {"text": "Hi"})
    now = time.time() + WINDOW_S
    events = {e.file: e for e in folder.poll(now=now)}
    assert "not a recipient file" in events["notes.docx"].detail["reason"]
    assert "not a regular file" in events["link.csv"].detail["reason"]
    assert (folder.failed / "link.csv").is_symlink() and outside.exists()
    # The sidecar waits for its data file up to orphan_s, then fails
    assert "lonely.broadcast.json" not in events
    events = {e.file: e for e in folder.poll(now=now + folder.orphan_s)}
    assert "no data file" in events["lonely.broadcast.json"].detail["reason"]
    assert list(folder.inbox.iterdir()) == []


def test_ambiguous_stem_sidecar_fails_both_files(folder: DropFolder):
    write_csv(folder.inbox / "list.csv", 2)
    write_json(folder.inbox / "list.json", ["+525511112222"])
    write_json(folder.inbox / "list.broadcast.json", {"from": CODE, "text": "Hi"})
    events = folder.poll(now=time.time() + LATER)
    assert {e.file for e in events if e.kind == EventKind.FAILED} == {"list.csv", "list.json"}
    assert "ambiguous" in report(folder, "failed/list.csv.error.json")["reason"]


# ---------------------------------------------------------------------------- exactly once


def test_crash_between_commit_and_move_never_imports_twice(
    tmp_path: Path, database_url: str, monkeypatch
):
    # Given a watcher that dies after its transaction committed, before it moved the file
    drop = make_folder(tmp_path / "drop", database_url)
    defaults(drop)
    write_csv(drop.inbox / "list.csv", 50)

    class Crash(BaseException):
        pass

    def crash(*_: Any, **__: Any) -> None:
        raise Crash

    monkeypatch.setattr(DropFolder, "_file_away", crash)
    with pytest.raises(Crash):
        drop.poll(now=time.time() + LATER)
    assert count(drop, broadcasts) == 1 and (drop.inbox / "list.csv").exists()
    # When a new watcher process starts on the same folder
    monkeypatch.undo()
    restarted = DropFolder(drop.root, engine_for(database_url), drop.settings, stable_s=WINDOW_S)
    event = only(restarted.poll(now=time.time() + LATER), EventKind.ALREADY_IMPORTED)
    # Then the file goes to done/ with a note naming the broadcast, and nothing is imported again
    with restarted.engine.connect() as conn:
        bid = conn.execute(sa.select(broadcasts.c.id)).scalar_one()
    assert event.detail["broadcastId"] == bid
    note = report(restarted, "done/list.csv.result.json")["note"]
    assert f"already imported as broadcast {bid}" in note
    assert count(drop, broadcasts) == 1 and count(drop, messages) == 50


def test_same_content_under_two_names_is_imported_once_unless_its_text_differs(folder: DropFolder):
    defaults(folder)
    write_csv(folder.inbox / "monday.csv", 5)
    shutil.copy(folder.inbox / "monday.csv", folder.inbox / "tuesday.csv")
    events = folder.poll(now=time.time() + LATER)
    first = only(events, EventKind.IMPORTED)
    second = only(events, EventKind.ALREADY_IMPORTED)
    assert (first.file, second.file) == ("monday.csv", "tuesday.csv")
    assert second.detail["broadcastId"] == first.detail["broadcastId"]
    assert "from monday.csv" in report(folder, "done/tuesday.csv.result.json")["note"]
    # The same recipients with another text are another broadcast
    write_csv(folder.inbox / "wednesday.csv", 5)
    write_json(folder.inbox / "wednesday.broadcast.json", {"text": "New offer, {name}"})
    event = only(folder.poll(now=time.time() + LATER), EventKind.IMPORTED)
    assert event.detail["broadcastId"] != first.detail["broadcastId"]
    assert count(folder, broadcasts) == 2


def test_deleting_the_broadcast_frees_its_file_even_when_its_id_is_reused(folder: DropFolder):
    # Given a.csv imported, its broadcast deleted, and b.csv imported after (SQLite may give b
    # the id a had)
    defaults(folder)
    write_csv(folder.inbox / "a.csv", 3)
    a_id = only(folder.poll(now=time.time() + LATER), EventKind.IMPORTED).detail["broadcastId"]
    delete(folder.engine, a_id)
    write_csv(folder.inbox / "b.csv", 4, first=50)
    only(folder.poll(now=time.time() + LATER), EventKind.IMPORTED)
    # When a.csv is dropped again, it is a new broadcast, not "already imported" as b's
    shutil.copy(folder.done / "a.csv", folder.inbox / "a.csv")
    event = only(folder.poll(now=time.time() + LATER), EventKind.IMPORTED)
    assert event.detail["expectedMessages"] == 3
    assert count(folder, broadcasts) == 2 and count(folder, messages) == 7


def test_name_clashes_get_a_suffix_never_overwrite(folder: DropFolder):
    defaults(folder)
    for round_ in range(3):
        write_csv(folder.inbox / "list.csv", 2, first=round_ * 10)  # new content each time
        write_json(folder.inbox / "list.broadcast.json", {"name": f"round {round_}"})
        only(folder.poll(now=time.time() + LATER), EventKind.IMPORTED)
    assert sorted(p.name for p in folder.done.iterdir()) == sorted(
        f"{n}{suffix}"
        for n in ("list.csv", "list-2.csv", "list-3.csv")
        for suffix in ("", ".result.json", ".broadcast.json")
    )
    names = [
        report(folder, f"done/{n}.result.json")["broadcast"]["name"]
        for n in ("list.csv", "list-2.csv", "list-3.csv")
    ]
    assert names == ["round 0", "round 1", "round 2"]


def test_two_watchers_on_one_folder_import_each_file_once(tmp_path: Path, database_url: str):
    # Given two watchers (threads here, hosts in production) polling the same folder
    drop = make_folder(tmp_path / "drop", database_url)
    defaults(drop)
    for i in range(6):
        write_csv(drop.inbox / f"list{i}.csv", 20, first=i * 100)
    other = DropFolder(drop.root, drop.engine, drop.settings, stable_s=WINDOW_S)
    errors: list[BaseException] = []

    def run(watcher: DropFolder) -> None:
        try:
            for _ in range(10):
                watcher.poll(now=time.time() + LATER)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in (drop, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # Then every file made exactly one broadcast and landed in done/ once, beside one report
    assert not errors
    assert count(drop, broadcasts) == 6 and count(drop, messages) == 120
    moved = sorted(drop.done.glob("list*.csv"))
    assert len(moved) == 6 and len({p.read_bytes() for p in moved}) == 6
    assert sorted(p.name for p in drop.done.glob("*.result.json")) == sorted(
        f"{p.name}.result.json" for p in moved
    )
    assert list(drop.inbox.iterdir()) == []


# ---------------------------------------------------------------------------- the command


def _cli_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(BROADCASTER_DATABASE_URL=url, BROADCASTER_WATCH_INTERVAL_S="0.1")
    return env


def test_watch_once_json(folder: DropFolder, sqlite_url: str):
    defaults(folder)
    write_csv(folder.inbox / "list.csv", 3)
    (folder.inbox / "bad.csv").write_text("name\nAna\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "broadcaster",
            "watch",
            str(folder.root),
            "--once",
            "--json",
            "--stable-s",
            "0",
        ],
        env=_cli_env(sqlite_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    events = {e["file"]: e for e in map(json.loads, out.stdout.splitlines())}
    assert events["list.csv"]["event"] == "imported" and events["list.csv"]["expectedMessages"] == 3
    assert (
        events["bad.csv"]["event"] == "failed" and "no phone column" in events["bad.csv"]["reason"]
    )
    assert events["bad.csv"]["line"] == 1


def test_watch_loop_imports_a_renamed_file_and_stops_on_sigterm(
    folder: DropFolder, sqlite_url: str
):
    # Given the watcher running as its own process, as the Procfile's `watch` runs it
    defaults(folder)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "broadcaster",
            "watch",
            str(folder.root),
            "--json",
            "--stable-s",
            "0.3",
        ],
        env=_cli_env(sqlite_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # When a file is written under a temporary name and renamed
        write_csv(folder.inbox / "list.csv.part", 7)
        os.rename(folder.inbox / "list.csv.part", folder.inbox / "list.csv")
        deadline = time.monotonic() + 30
        while not (folder.done / "list.csv.result.json").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "not imported within 30 s"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    # Then it was imported once, and SIGTERM ended the watcher cleanly
    assert proc.returncode == 0, err
    imported = [json.loads(line) for line in out.splitlines() if '"imported"' in line]
    assert len(imported) == 1 and imported[0]["expectedMessages"] == 7

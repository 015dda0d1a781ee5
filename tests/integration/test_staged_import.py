"""A big import in short transactions (issue 11, item 7), on a real SQLite file and PostgreSQL.

One transaction per file held SQLite's write lock for the whole import and stalled every other
writer of every tenant. These tests pause an import half-way (its rows are read through a gate)
and check, by ordering rather than by the clock, that other writers get in meanwhile, that
nothing of it is visible until it is published, that a failure or a SIGKILL leaves nothing
visible, that the leftovers of a killed import are swept, and that counts stay exact.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.constants import INSERT_BATCH_ROWS
from broadcaster.errors import FileRejected, ImportAbandoned, InputError, NotFound
from broadcaster.ingest import open_recipients
from broadcaster.services import control, poller, queries
from broadcaster.services.broadcasts import (
    NewBroadcast,
    check_recipients,
    create_from_file,
    create_from_table,
    get_broadcast,
)
from broadcaster.services.codes import add_code
from broadcaster.services.dropfolder import DropFolder, EventKind
from broadcaster.services.importer import sweep_abandoned
from broadcaster.services.ledger import create_once
from broadcaster.services.messages import get_message
from broadcaster.store import broadcasts_repo, codes_repo, messages_repo
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import (
    broadcasts,
    imported_files,
    messages,
    row_errors,
    sender_codes,
)

REPO = Path(__file__).parents[2]
#: Rows of the big file: three full batches and a part, so an import spans four transactions.
BIG_ROWS = 3 * INSERT_BATCH_ROWS + 123
#: Where the gate holds an import: its first batch is stored, the rest is not read yet.
PAUSE_AT = 2 * INSERT_BATCH_ROWS + 10
#: How long a test waits for an event that must come (a safety net against hanging, not a bound).
EVENT_WAIT_S = 120.0
#: A competing writer gives up after this long instead of the engine's 60 s busy timeout.
WRITER_WAIT_S = 10.0
#: A line whose quote never closes: the file fails at its end, after three stored batches.
UNREADABLE_AT = BIG_ROWS - 100
TEXT = "Hola {name}"


@pytest.fixture
def env(database_url):
    upgrade(database_url)
    settings = Settings(database_url=database_url, default_region=None)
    engine = engine_for(database_url)
    add_code(engine, settings, "55501", "short")
    return settings, engine


def phone(i: int) -> str:
    return f"+52553{i:07d}"


def write_big(path: Path, n: int = BIG_ROWS) -> Path:
    path.write_text("phone,name\n" + "".join(f"{phone(i)},Cliente {i}\n" for i in range(n)))
    return path


def raw_counts(engine) -> tuple[int, int, int]:
    """Rows in the tables, visible or not: what a failed import must not leave behind."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (broadcasts, messages, row_errors)
        )


def staged_ids(engine) -> list[int]:
    with engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                sa.select(broadcasts.c.id).where(broadcasts.c.status.in_(["IMPORTING"]))
            )
        ]


def messages_of(engine, broadcast_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(messages.c.broadcast_id == broadcast_id)
        ).scalar_one()


class Gate:
    """Holds an iteration at item ``at`` until released: an import paused between batches."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.paused = threading.Event()
        self.release = threading.Event()

    def wrap(self, rows: Iterable[Any]) -> Iterator[Any]:
        for i, row in enumerate(rows):
            if i == self.at:
                self.paused.set()
                assert self.release.wait(EVENT_WAIT_S), "the test never released the import"
            yield row


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate(PAUSE_AT)
    yield g
    g.release.set()  # never leave an import thread waiting after a failed assertion


class ImportThread(threading.Thread):
    """``run_import()`` in a thread; its outcome in ``view`` or ``error``."""

    def __init__(self, run_import: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.run_import = run_import
        self.view: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.view = self.run_import()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


def gated_import(engine, settings, path: Path, gate: Gate, **kw: Any) -> ImportThread:
    def run() -> Any:
        with open_recipients(path) as table:
            table.rows = gate.wrap(table.rows)
            return create_from_table(
                engine, settings, table, NewBroadcast(sender="55501", text=TEXT), **kw
            )

    t = ImportThread(run)
    t.start()
    assert gate.paused.wait(EVENT_WAIT_S), f"the import never reached row {gate.at}"
    return t


def impatient_engine(url: str) -> sa.Engine:
    """Another process's connection, as the send path has one, that waits WRITER_WAIT_S at most."""
    if url.startswith("sqlite"):
        return sa.create_engine(url, connect_args={"timeout": WRITER_WAIT_S})
    return sa.create_engine(
        url, connect_args={"options": f"-c lock_timeout={int(WRITER_WAIT_S * 1000)}"}
    )


def assert_invisible(engine, broadcast_id: int) -> None:
    """No reader, control or scheduler query of the product sees the staged broadcast."""
    ws = codes_repo.DEFAULT_WORKSPACE
    with engine.begin() as conn:
        ws_id = codes_repo.ensure_workspace(conn, ws)
        assert broadcasts_repo.get_broadcast(conn, broadcast_id) is None
        assert broadcast_id not in broadcasts_repo.due_broadcasts(
            conn, utcnow() + timedelta(days=1)
        )
        listed = broadcasts_repo.list_broadcasts(conn, ws_id)
        assert broadcast_id not in [b["id"] for b in listed]
        some_message = conn.execute(
            sa.select(sa.func.min(messages.c.id)).where(messages.c.broadcast_id == broadcast_id)
        ).scalar()
    with pytest.raises(NotFound):
        get_broadcast(engine, broadcast_id)
    with pytest.raises(NotFound):
        get_broadcast(engine, broadcast_id, ws)
    with pytest.raises(NotFound):
        queries.require_broadcast(engine, broadcast_id, ws_id)
    with pytest.raises(NotFound):
        control.suspend(engine, broadcast_id)
    with pytest.raises(NotFound):
        control.delete(engine, broadcast_id)
    page = queries.list_broadcasts(engine, ws_id, limit=1000)
    assert broadcast_id not in [b.id for b in page.items]
    assert queries.list_broadcasts(engine, ws_id, status="IMPORTING").items == []
    if some_message is not None:
        with pytest.raises(NotFound):
            get_message(engine, some_message)


def idle_in_transaction(engine) -> int:
    """PostgreSQL sessions of this database holding a transaction open while doing nothing."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
            )
        ).scalar_one()


class NoQueue:
    def send_chunk(self, broadcast_id: int, ids: list[int], countdown_s: float = 0.0) -> None:
        raise AssertionError(f"nothing may be dispatched (broadcast {broadcast_id})")


def no_provider(key: str) -> Any:
    raise AssertionError(f"no gateway is needed here ({key})")


# ---------------------------------------------------------------------------- other writers


def test_other_writers_get_in_while_a_big_import_runs(env, database_url, tmp_path, gate):
    settings, engine = env
    # Given another tenant with a broadcast being sent, and its own writer connection
    add_code(engine, settings, "55502", "short", workspace="other")
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("phone\n+525550000001\n+525550000002\n+525550000003\n")
    other = create_from_file(
        engine, settings, theirs, NewBroadcast(sender="55502", text="x", workspace="other")
    ).id
    writer = impatient_engine(database_url)

    # When a big import is half-way: its first batch stored, the rest not read yet
    importing = gated_import(engine, settings, write_big(tmp_path / "big.csv"), gate)

    # Then the other tenant's writes go through now, while the import is still running
    now = utcnow()
    with writer.begin() as conn:  # what dispatch does on the send path
        stamped = messages_repo.mark_dispatched(
            conn, other, limit=10, now=now, stale_before=now - timedelta(seconds=60)
        )
    with writer.begin() as conn:  # a code insert, as `broadcaster codes add` does it
        ws_other = codes_repo.ensure_workspace(conn, "other")
        codes_repo.insert_code(conn, ws_other, code="55503", kind="short")
    assert len(stamped) == 3
    assert not importing.done.is_set()  # ordering: both writes committed before it finished
    if database_url.startswith("postgresql"):
        assert idle_in_transaction(engine) == 0  # no transaction held open between batches
    # ...and the half-imported broadcast, with rows stored already, is seen by nobody
    (staged,) = staged_ids(engine)
    assert messages_of(engine, staged) >= INSERT_BATCH_ROWS
    assert_invisible(engine, staged)
    assert queries.queue_depth(engine) == {"55502": 3}

    # When the import goes on, it completes with every row
    gate.release.set()
    assert importing.done.wait(EVENT_WAIT_S)
    assert importing.error is None, importing.error
    view = importing.view
    assert view.id == staged and view.status == "SCHEDULED"
    assert view.expected_messages == BIG_ROWS
    assert get_broadcast(engine, staged).counts == {"QUEUE": BIG_ROWS}
    writer.dispose()


# ---------------------------------------------------------------------------- failures


def _unclosed_quote_at(path: Path, line: int) -> Path:
    """A file that becomes unreadable at ``line``: a quote there never closes."""
    rows = [f"{phone(i)},Cliente {i}\n" for i in range(BIG_ROWS)]
    rows[line - 2] = f'{phone(line)},"Cliente {line}\n'
    path.write_text("phone,name\n" + "".join(rows))
    return path


class InjectedFailure(Exception):
    """Raised by a test where a real import could fail (a disk error, a bug)."""


def _fail_on_publish(conn, broadcast_id: int) -> None:
    raise InjectedFailure(f"publishing broadcast {broadcast_id}")


@pytest.mark.parametrize("how", ["unreadable at row N", "over max_rows", "error when publishing"])
def test_an_import_that_fails_midway_leaves_nothing(env, tmp_path, how):
    settings, engine = env
    req = NewBroadcast(sender="55501", text=TEXT)
    if how == "unreadable at row N":
        path = _unclosed_quote_at(tmp_path / "broken.csv", UNREADABLE_AT)
        with pytest.raises(FileRejected, match=rf"broken.csv:{UNREADABLE_AT}: unclosed quote"):
            create_from_file(engine, settings, path, req)
    elif how == "over max_rows":
        small = settings.model_copy(update={"max_rows": PAUSE_AT})
        with pytest.raises(FileRejected, match=f"more than {PAUSE_AT:,} rows"):
            create_from_file(engine, small, write_big(tmp_path / "long.csv"), req)
    else:
        with pytest.raises(InjectedFailure):
            create_from_file(
                engine, settings, write_big(tmp_path / "ok.csv"), req, on_publish=_fail_on_publish
            )
    # Nothing visible, and nothing left behind either: the staged rows were removed at once
    assert raw_counts(engine) == (0, 0, 0)
    with engine.connect() as conn:
        ws_id = codes_repo.ensure_workspace(conn, codes_repo.DEFAULT_WORKSPACE)
    assert queries.list_broadcasts(engine, ws_id).items == []


def test_a_stalled_import_that_was_swept_fails_and_keeps_nothing(env, tmp_path, gate):
    settings, engine = env
    importing = gated_import(engine, settings, write_big(tmp_path / "big.csv"), gate)
    (staged,) = staged_ids(engine)

    # A sweep now leaves a live import alone (its heartbeat is recent)
    assert sweep_abandoned(engine, settings.import_stale_s, utcnow()) == []
    # A sweep after the stale time takes it while it is paused (as if it had hung)
    later = utcnow() + timedelta(seconds=settings.import_stale_s + 1)
    assert sweep_abandoned(engine, settings.import_stale_s, later) == [staged]

    gate.release.set()
    assert importing.done.wait(EVENT_WAIT_S)
    assert isinstance(importing.error, ImportAbandoned)
    assert raw_counts(engine) == (0, 0, 0)


def test_a_code_removed_while_importing_is_refused_when_publishing(env, tmp_path, gate):
    settings, engine = env
    importing = gated_import(engine, settings, write_big(tmp_path / "big.csv"), gate)
    with engine.begin() as conn:  # the code goes while the rows are being stored
        conn.execute(sa.delete(sender_codes).where(sender_codes.c.code == "55501"))
    gate.release.set()
    assert importing.done.wait(EVENT_WAIT_S)
    assert isinstance(importing.error, InputError)
    assert "CODE_NOT_ALLOWED" in str(importing.error)
    assert raw_counts(engine) == (0, 0, 0)


# ---------------------------------------------------------------------------- kill -9

KILLED_IMPORT = """
import sys, time
from broadcaster.config import Settings
from broadcaster.ingest import open_recipients
from broadcaster.services.broadcasts import NewBroadcast, create_from_table
from broadcaster.store.db import engine_for

url, path, where = sys.argv[1], sys.argv[2], sys.argv[3]

def pause():
    print("paused", flush=True)
    time.sleep(3600)

def rows(it):
    for i, row in enumerate(it):
        if where == "between batches" and i == int(sys.argv[4]):
            pause()
        yield row

def publishing(conn, broadcast_id):
    pause()  # inside the publishing transaction: it never commits

with open_recipients(path) as table:
    table.rows = rows(table.rows)
    create_from_table(
        engine_for(url), Settings(database_url=url), table,
        NewBroadcast(sender="55501", text="Hola {name}"),
        on_publish=publishing if where == "while publishing" else None,
    )
print("finished", flush=True)
"""


def _run_until_paused(script: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the child pauses, or exits (EOF): never hangs here
    assert line == "paused\n", f"child said {line!r}, exit code {proc.poll()}"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(EVENT_WAIT_S) == -signal.SIGKILL


@pytest.mark.parametrize("where", ["between batches", "while publishing"])
async def test_a_killed_import_leaves_nothing_visible_and_is_swept(
    env, database_url, tmp_path, where
):
    settings, engine = env
    big = write_big(tmp_path / "big.csv")
    proc = _run_until_paused(KILLED_IMPORT, database_url, str(big), where, str(PAUSE_AT))
    _kill(proc)

    # Its leftovers are there, but nobody sees them
    (staged,) = staged_ids(engine)
    stored = messages_of(engine, staged)
    assert 0 < stored < BIG_ROWS  # some batches committed, the broadcast never published
    assert_invisible(engine, staged)
    assert queries.queue_depth(engine) == {}

    # The database still serves writers (a killed SQLite writer leaves no lock behind)
    add_code(engine, settings, "55509", "long")

    # A tick now starts nothing and sweeps nothing: the import might still be alive
    report = await poller.tick(engine, settings, NoQueue(), no_provider, now=utcnow())
    assert report.started == [] and report.swept_imports == []
    # Once its heartbeat is import_stale_s old, a tick sweeps it
    later = utcnow() + timedelta(seconds=settings.import_stale_s + 1)
    report = await poller.tick(engine, settings, NoQueue(), no_provider, now=later)
    assert report.started == [] and report.swept_imports == [staged]
    assert raw_counts(engine) == (0, 0, 0)

    # The same file imports afterwards, whole
    view = create_from_file(engine, settings, big, NewBroadcast(sender="55501", text=TEXT))
    assert view.expected_messages == BIG_ROWS and view.id != staged


KILLED_WATCHER = """
import sys, time
from contextlib import contextmanager
from pathlib import Path
import broadcaster.services.dropfolder as dropfolder
from broadcaster.config import Settings
from broadcaster.store.db import engine_for

url, root, pause_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
real_open = dropfolder.open_recipients

def rows(it):
    for i, row in enumerate(it):
        if i == pause_at:
            print("paused", flush=True)
            time.sleep(3600)
        yield row

@contextmanager
def paused_open(*args, **kwargs):
    with real_open(*args, **kwargs) as table:
        table.rows = rows(table.rows)
        yield table

dropfolder.open_recipients = paused_open
folder = dropfolder.DropFolder(Path(root), engine_for(url), Settings(database_url=url), stable_s=0)
folder.poll(now=time.time() + 60)
"""


def test_a_drop_folder_file_killed_mid_import_becomes_one_broadcast(env, database_url, tmp_path):
    settings, engine = env
    root = tmp_path / "drop"
    (root / "inbox").mkdir(parents=True)
    (root / "defaults.json").write_text('{"from": "55501", "text": "Hola {name}"}')
    big = write_big(tmp_path / "big.csv")
    shutil.copy(big, root / "inbox" / "big.csv")

    # Given a watcher killed with SIGKILL between two batches of the file
    _kill(_run_until_paused(KILLED_WATCHER, database_url, str(root), str(PAUSE_AT)))
    (staged,) = staged_ids(engine)
    assert_invisible(engine, staged)
    assert (root / "inbox" / "big.csv").exists()  # not filed away: it was not imported
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(imported_files)).scalar() == 0

    # When the watcher runs again, the file becomes exactly one broadcast
    folder = DropFolder(root, engine, settings, stable_s=0)
    (event,) = folder.poll(now=time.time() + 60)
    assert event.kind is EventKind.IMPORTED, event
    assert event.detail["expectedMessages"] == BIG_ROWS
    bid = event.detail["broadcastId"]
    assert bid != staged

    # ...the killed run's leftovers are swept, and the same file again is "already imported"
    later = utcnow() + timedelta(seconds=settings.import_stale_s + 1)
    assert sweep_abandoned(engine, settings.import_stale_s, later) == [staged]
    shutil.copy(big, root / "inbox" / "again.csv")
    (again,) = folder.poll(now=time.time() + 60)
    assert again.kind is EventKind.ALREADY_IMPORTED and again.detail["broadcastId"] == bid
    assert raw_counts(engine) == (1, BIG_ROWS, 0)


def test_two_imports_of_one_key_publish_one_broadcast(env, tmp_path, gate):
    settings, engine = env
    big = write_big(tmp_path / "big.csv")
    key = "a" * 64

    # Given an import of a key paused half-way (it records its key only when it publishes)
    def first(claim):
        with open_recipients(big) as table:
            table.rows = gate.wrap(table.rows)
            req = NewBroadcast(sender="55501", text=TEXT)
            return create_from_table(engine, settings, table, req, on_publish=claim)

    slow = ImportThread(lambda: create_once(engine, key, "big.csv", first))
    slow.start()
    assert gate.paused.wait(EVENT_WAIT_S)

    # When another import of the same key runs to the end meanwhile
    view, known = create_once(
        engine,
        key,
        "big.csv",
        lambda claim: create_from_file(
            engine, settings, big, NewBroadcast(sender="55501", text=TEXT), on_publish=claim
        ),
    )
    assert known is None and view is not None

    # Then the paused one, going on, finds the key taken and keeps nothing of its own
    gate.release.set()
    assert slow.done.wait(EVENT_WAIT_S)
    assert slow.error is None, slow.error
    slow_view, slow_known = slow.view
    assert slow_view is None and slow_known.broadcast_id == view.id
    assert raw_counts(engine) == (1, BIG_ROWS, 0)


def _lock_waiters(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        ).scalar_one()


def test_publishers_racing_on_one_key_make_one_broadcast(env, database_url, tmp_path):
    settings, engine = env
    small = tmp_path / "small.csv"
    small.write_text("phone,name\n" + "".join(f"{phone(i)},C{i}\n" for i in range(50)))
    req = NewBroadcast(sender="55501", text=TEXT)
    key = "b" * 64
    holding, go_on = threading.Event(), threading.Event()

    # Given a publisher that recorded the key and has not committed yet
    def first(claim):
        def hold(conn, broadcast_id: int) -> None:
            claim(conn, broadcast_id)
            holding.set()
            assert go_on.wait(EVENT_WAIT_S)

        return create_from_file(engine, settings, small, req, on_publish=hold)

    a = ImportThread(lambda: create_once(engine, key, "small.csv", first))
    a.start()
    assert holding.wait(EVENT_WAIT_S)
    try:
        # When a second publisher of the same key gets there meanwhile
        b = ImportThread(
            lambda: create_once(
                engine,
                key,
                "small.csv",
                lambda claim: create_from_file(engine, settings, small, req, on_publish=claim),
            )
        )
        b.start()
        if database_url.startswith("postgresql"):  # it waits on the first one's key row
            deadline = time.monotonic() + EVENT_WAIT_S
            while _lock_waiters(engine) == 0:
                assert not b.done.is_set(), "the second publisher did not wait for the first"
                assert time.monotonic() < deadline, "the second publisher never reached the key"
                time.sleep(0.01)
    finally:
        go_on.set()
    assert a.done.wait(EVENT_WAIT_S) and b.done.wait(EVENT_WAIT_S)

    # Then the first one's broadcast is the only one, and the second one says so
    assert a.error is None and b.error is None, (a.error, b.error)
    a_view, _ = a.view
    b_view, b_known = b.view
    assert b_view is None and b_known.broadcast_id == a_view.id
    assert raw_counts(engine) == (1, 50, 0)


# ---------------------------------------------------------------------------- exact counts


def test_counts_of_a_multi_batch_import_are_exact(env, tmp_path):
    """Duplicates across batches and row errors: the same numbers as one pass over the file."""
    settings, engine = env
    n = BIG_ROWS
    lines = []
    want = {"valid": 0, "invalid": 0, "duplicates": 0}
    seen: set[str] = set()
    for i in range(n):
        number = phone(i % (n - 2 * INSERT_BATCH_ROWS + 7))  # repeats land in later batches
        if i % 997 == 0:
            lines.append(f"12{i},Cliente {i}\n")  # not a phone number
            want["invalid"] += 1
        elif i % 991 == 0:
            lines.append(f"{number},\n")  # no value for {name}
            want["invalid"] += 1
        elif number in seen:
            lines.append(f"{number},Cliente {i}\n")
            want["duplicates"] += 1
        else:
            seen.add(number)
            lines.append(f"{number},Cliente {i}\n")
            want["valid"] += 1
    f = tmp_path / "mixed.csv"
    f.write_text("phone,name\n" + "".join(lines))
    assert want["duplicates"] > INSERT_BATCH_ROWS  # the test means something only then

    view = create_from_file(engine, settings, f, NewBroadcast(sender="55501", text=TEXT))

    assert view.expected_messages == want["valid"]
    assert view.invalid_rows == want["invalid"]
    assert view.duplicates == want["duplicates"]
    assert get_broadcast(engine, view.id).counts == {"QUEUE": want["valid"]}
    assert raw_counts(engine) == (1, want["valid"], want["invalid"] + want["duplicates"])
    dry = check_recipients(f, settings, text=TEXT)  # the rules of one row, in one pass
    assert (dry.valid, dry.invalid, dry.duplicates) == (
        want["valid"],
        want["invalid"],
        want["duplicates"],
    )
    with engine.connect() as conn:
        stored = broadcasts_repo.get_broadcast(conn, view.id)
    assert stored is not None
    assert (stored["expected"], stored["invalid"], stored["duplicates"]) == (
        want["valid"],
        want["invalid"],
        want["duplicates"],
    )

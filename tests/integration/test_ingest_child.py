"""A big file read on the second core (``services/ingest_child.py``) stores exactly what the
in-process path stores, on SQLite and PostgreSQL: the producer path is forced on with a 1-byte
threshold and compared with the in-process path (threshold 0) on the same file, and a child
that fails is a clean refusal naming the file with nothing stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.constants import INSERT_BATCH_ROWS
from broadcaster.errors import FileRejected
from broadcaster.services import ingest_child
from broadcaster.services.broadcasts import NewBroadcast, create_from_file
from broadcaster.services.codes import add_code
from broadcaster.services.optouts import add_optout
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import broadcasts, messages, row_errors

#: Rows of the file: two full batches and a part, so both paths span three transactions.
ROWS = 2 * INSERT_BATCH_ROWS + 321
TEXT = "Hola {name}, tu saldo es {balance} ñ"
COUNTERS = (
    "expected_messages",
    "invalid_rows",
    "duplicates",
    "failed_messages",
    "status",
    "status_reason",
)


@pytest.fixture
def env(database_url: str) -> tuple[str, Any]:
    upgrade(database_url)
    engine = engine_for(database_url)
    add_code(engine, Settings(database_url=database_url), "55501", "short")
    return database_url, engine


def settings(url: str, threshold: int, **kw: Any) -> Settings:
    return Settings(database_url=url, default_region="MX", ingest_child_min_bytes=threshold, **kw)


def write_file(path: Path) -> Path:
    """Valid rows with every kind of trouble mixed in, duplicates across batches included."""
    lines = ["phone,name,balance"]
    for i in range(ROWS):
        if i % 997 == 5:
            lines.append(f"not-a-number-{i},Ana,1")
        elif i % 1009 == 7:
            lines.append(f"+5255{i:08d},,2")  # an empty placeholder cell
        elif i % 499 == 3:
            lines.append(f"+5255{i - 1:08d},Dup {i},3")  # the line before's number again
        elif i % 2003 == 11:
            lines.append(f'+5255{i:08d},"Bad" quote,4')  # bad quoting: a reader problem
        elif i % 1501 == 1:
            lines.append(f"55 {i:08d},Long {'x' * 200},5")  # national form, several segments
        else:
            lines.append(f"+5255{i:08d},Cliente {i},{i / 100:.2f}")
    lines.append(f"+5255{0:08d},First again,9")  # a duplicate of the first row, in the last batch
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


#: What a stored message and a row error are compared by.
MESSAGE_FIELDS = ("line", "recipient", "text", "encoding", "segments", "status", "tz", "error")
ERROR_FIELDS = ("line", "value", "reason")


def stored(engine: Any, bid: int) -> tuple[list[Any], list[Any]]:
    found = []
    with engine.connect() as conn:
        for table, fields in ((messages, MESSAGE_FIELDS), (row_errors, ERROR_FIELDS)):
            query = sa.select(*(table.c[f] for f in fields)).where(table.c.broadcast_id == bid)
            found.append([tuple(r) for r in conn.execute(query.order_by(table.c.line))])
    return found[0], found[1]


def counts(engine: Any) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (broadcasts, messages, row_errors)
        )


@pytest.mark.parametrize("window", [None, "08:00-21:00"])
def test_the_producer_process_stores_what_the_in_process_path_stores(
    env: tuple[str, Any], tmp_path: Path, window: str | None
) -> None:
    url, engine = env
    add_optout(engine, "default", f"+5255{20:08d}", region=None)
    path = write_file(tmp_path / "big.csv")
    req = NewBroadcast(sender="55501", text=TEXT, window=window, tz="America/Mexico_City")
    progress: list[list[int]] = [[], []]
    views = [
        create_from_file(engine, settings(url, threshold), path, req, on_progress=seen.append)
        for threshold, seen in zip((0, 1), progress, strict=True)
    ]
    assert progress[1] == progress[0] and len(progress[0]) == 3  # told after each batch alike
    inline, child = (stored(engine, v.id) for v in views)
    assert child == inline
    assert [getattr(views[1], k) for k in COUNTERS] == [getattr(views[0], k) for k in COUNTERS]
    assert views[0].duplicates >= 20 and views[0].invalid_rows >= 20  # the file's trouble
    assert [m[5] for m in inline[0]].count("BLACKLISTED") == 1
    reasons = {e[2] for e in inline[1]}
    assert "duplicate" in reasons and any(r.startswith("bad quoting") for r in reasons)
    assert any(m[4] > 1 for m in inline[0])  # long texts measured alike
    if window is not None:
        assert {m[6] for m in inline[0]} == {m[6] for m in child[0]} != {None}


def test_a_file_over_max_rows_is_refused_by_the_producer_with_nothing_stored(
    env: tuple[str, Any], tmp_path: Path
) -> None:
    url, engine = env
    path = write_file(tmp_path / "big.csv")
    before = counts(engine)
    req = NewBroadcast(sender="55501", text=TEXT)
    refusals = []
    for threshold in (0, 1):
        with pytest.raises(FileRejected) as info:
            create_from_file(engine, settings(url, threshold, max_rows=ROWS - 10), path, req)
        refusals.append(str(info.value))
    assert refusals[0] == refusals[1]
    assert f"more than {ROWS - 10:,} rows" in refusals[1] and str(path) in refusals[1]
    assert counts(engine) == before


#: The real child, SIGKILLed when it is about to send its second batch: the first one is
#: stored by then (staged), so the parent must discard it.
DIES_HALF_WAY = (
    "import os, marshal, signal\n"
    "from broadcaster.services import ingest_child_main\n"
    "sent = []\n"
    "real = marshal.dumps\n"
    "def dumps(m):\n"
    "    sent.append(m)\n"
    "    if len(sent) == 2:\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "    return real(m)\n"
    "marshal.dumps = dumps\n"
    "ingest_child_main.main()\n"
)


@pytest.mark.parametrize(
    ("program", "why"),
    [
        (DIES_HALF_WAY, "killed by signal 9"),
        ("raise MemoryError('no room')", "exit status 1: MemoryError: no room"),
    ],
)
def test_a_child_that_fails_is_a_refusal_naming_the_file_and_nothing_stored(
    env: tuple[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    program: str,
    why: str,
) -> None:
    url, engine = env
    path = write_file(tmp_path / "big.csv")
    monkeypatch.setattr(ingest_child, "_CHILD_MAIN", program)
    before = counts(engine)
    with pytest.raises(FileRejected) as info:
        create_from_file(engine, settings(url, 1), path, NewBroadcast(sender="55501", text=TEXT))
    assert info.value.path == str(path)
    assert "the process reading the file" in info.value.reason and why in info.value.reason
    assert counts(engine) == before

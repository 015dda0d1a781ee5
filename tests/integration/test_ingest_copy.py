"""The fast store path of an import (issue 17): COPY on PostgreSQL, raw executemany on SQLite.

Both must store exactly what the SQLAlchemy path stored: the same messages and row errors with
the same line numbers, the first line of a number kept and every later one a duplicate, whether
the repeat is in the same batch or an earlier one, and nothing at all when the file fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.constants import INSERT_BATCH_ROWS
from broadcaster.ingest import open_recipients
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, create_from_table
from broadcaster.services.codes import add_code
from broadcaster.services.views import BroadcastView
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import broadcasts, messages, row_errors

TEXT = "Hola {name}, saldo {1} {{ok}}"
#: Rows of the file: two full batches and a part, so duplicates cross batch boundaries.
ROWS = 2 * INSERT_BATCH_ROWS + 321


def _number(i: int) -> str:
    return f"+5255{10_000_000 + i:08d}"


def _write(path: Path) -> dict[str, Any]:
    """A file with every kind of row; returns what must be stored, worked out independently."""
    seen: dict[str, int] = {}
    expect: dict[str, Any] = {"duplicates": [], "invalid": [], "kept": []}
    with path.open("w") as f:
        f.write("phone,name,balance\n")
        for i in range(ROWS):
            line = i + 2
            if i % 997 == 5:
                f.write(f"not-a-number-{i},Ana,1\n")
                expect["invalid"].append(line)
                continue
            if i % 1009 == 7:
                f.write(f"{_number(i)},,1\n")  # {name} blank: a row error
                expect["invalid"].append(line)
                continue
            # every 13th row repeats a number 4,999 rows back: in the previous batch or this one
            number = _number(i - INSERT_BATCH_ROWS + 1 if i % 13 == 0 and i >= 5000 else i)
            if i % 17 == 3:
                number = _number(i - 1)  # repeats the row just before it: the same batch
            name = "Ñandú" if i % 11 == 0 else f"Cliente {i}"
            f.write(f"{number},{name},{i / 100:.2f}\n")
            if number in seen:
                expect["duplicates"].append(line)
            else:
                seen[number] = line
                expect["kept"].append(line)
    return expect


def _stored(url: str) -> dict[str, Any]:
    engine = engine_for(url)
    with engine.connect() as conn:
        msgs = conn.execute(
            sa.select(
                messages.c.line,
                messages.c.recipient,
                messages.c.text,
                messages.c.encoding,
                messages.c.segments,
                messages.c.status,
                messages.c.created_at,
            ).order_by(messages.c.id)
        ).all()
        errors = conn.execute(
            sa.select(row_errors.c.line, row_errors.c.value, row_errors.c.reason).order_by(
                row_errors.c.line
            )
        ).all()
        counters = conn.execute(
            sa.select(
                broadcasts.c.expected,
                broadcasts.c.failed,
                broadcasts.c.invalid,
                broadcasts.c.duplicates,
            )
        ).all()
    return {"messages": msgs, "errors": errors, "counters": counters}


def _create(url: str, path: Path) -> BroadcastView:
    upgrade(url)
    settings = Settings(database_url=url)
    engine = engine_for(url)
    add_code(engine, settings, "55501", "short")
    return create_from_file(engine, settings, path, NewBroadcast(sender="55501", text=TEXT))


def test_copy_path_stores_what_sqlite_stores(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "recipients.csv"
    expect = _write(path)
    view = _create(database_url, path)
    ref_url = f"sqlite:///{tmp_path / 'reference.db'}"
    _create(ref_url, path)

    got, ref = _stored(database_url), _stored(ref_url)
    lines = [m.line for m in got["messages"]]
    assert lines == expect["kept"]  # first line of each number kept, stored in line order
    dup_lines = [e.line for e in got["errors"] if e.reason == "duplicate"]
    assert dup_lines == expect["duplicates"]
    assert sorted(e.line for e in got["errors"] if e.reason != "duplicate") == expect["invalid"]
    assert len({m.created_at for m in got["messages"]}) == 1  # one stamp per import
    strip = [tuple(m)[:6] for m in got["messages"]]
    assert strip == [tuple(m)[:6] for m in ref["messages"]]
    assert [tuple(e) for e in got["errors"]] == [tuple(e) for e in ref["errors"]]
    assert got["counters"] == ref["counters"]
    assert view.duplicates == len(expect["duplicates"])
    assert view.invalid_rows == len(expect["invalid"])
    assert view.expected_messages == len(expect["kept"])
    by_line = {m.line: m for m in got["messages"]}
    assert by_line[13].text == "Hola Ñandú, saldo 0.11 {ok}" and by_line[13].encoding == "UCS-2"
    assert by_line[3].text == "Hola Cliente 1, saldo 0.01 {ok}"
    assert by_line[3].encoding == "GSM-7" and by_line[3].segments == 1


def test_a_failure_after_copied_batches_leaves_nothing(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "recipients.csv"
    _write(path)
    upgrade(database_url)
    settings = Settings(database_url=database_url)
    engine = engine_for(database_url)
    add_code(engine, settings, "55501", "short")

    class Broken(RuntimeError):
        pass

    with open_recipients(path) as table:
        rows = table.rows

        def failing() -> Iterator[Any]:
            for n, row in enumerate(rows):
                if n == INSERT_BATCH_ROWS + 50:  # one batch stored, the next half read
                    raise Broken("disk gone")
                yield row

        table.rows = failing()
        with pytest.raises(Broken):
            create_from_table(engine, settings, table, NewBroadcast(sender="55501", text=TEXT))
    stored = _stored(database_url)
    assert stored == {"messages": [], "errors": [], "counters": []}

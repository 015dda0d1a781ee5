"""Creating broadcasts from files on SQLite and PostgreSQL: all or nothing, every row accounted for."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.domain.wire import iso8601
from broadcaster.errors import InputError
from broadcaster.services.broadcasts import (
    NewBroadcast,
    check_recipients,
    create_from_file,
    get_broadcast,
)
from broadcaster.services.codes import add_code
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import broadcasts, messages, row_errors
from tests.support.hostile_files import build_hostile_files

SAMPLE = Path(__file__).parents[2] / "broadcaster" / "samples" / "recipients.csv"


@pytest.fixture
def env(database_url):
    upgrade(database_url)
    settings = Settings(database_url=database_url, default_region=None)
    engine = engine_for(database_url)
    add_code(engine, settings, "55501", "short")
    return settings, engine


def table_counts(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (broadcasts, messages, row_errors)
        )


def test_sample_file(env):
    settings, engine = env
    view = create_from_file(
        engine,
        settings,
        SAMPLE,
        NewBroadcast(
            sender="55501",
            text="Hi {first_name}, your balance is {balance}",
            at="2030-01-01T09:00",
            tz="America/Mexico_City",
        ),
    )
    assert view.status == "SCHEDULED"
    assert iso8601(view.start_date) == "2030-01-01T09:00:00-06:00"
    assert view.expected_messages == 200
    assert view.duplicates == 1
    assert view.invalid_rows == 3  # two short numbers, one row without a balance
    got = get_broadcast(engine, view.id)
    assert got.counts == {"QUEUE": 200}
    with engine.connect() as conn:
        errors = conn.execute(
            sa.select(row_errors.c.line, row_errors.c.reason).order_by(row_errors.c.line)
        ).all()
    assert [r.reason for r in errors].count("duplicate") == 1
    assert any("missing value for {balance}" in r.reason for r in errors)


def test_dry_run_stores_nothing(env):
    settings, engine = env
    report = check_recipients(SAMPLE, settings, text="Hi {first_name}, your balance is {balance}")
    assert (report.valid, report.invalid, report.duplicates) == (200, 3, 1)
    assert report.total_segments == 200
    assert table_counts(engine) == (0, 0, 0)


def test_all_invalid_rows_complete_at_once(env, tmp_path):
    settings, engine = env
    f = tmp_path / "bad.csv"
    f.write_text("phone\n123\nabc\n+1\n")
    view = create_from_file(engine, settings, f, NewBroadcast(sender="55501", text="x"))
    assert view.status == "COMPLETED"
    assert view.expected_messages == 0 and view.invalid_rows == 3
    with engine.connect() as conn:  # through the COMPLETE transition: started and ended at once
        row = conn.execute(sa.select(broadcasts).where(broadcasts.c.id == view.id)).one()
    assert row.status_reason == "no sendable recipients"
    assert row.started_at is not None and row.ended_at == row.started_at


def test_unregistered_code_is_refused_whole(env):
    settings, engine = env
    with pytest.raises(InputError, match="CODE_NOT_ALLOWED"):
        create_from_file(engine, settings, SAMPLE, NewBroadcast(sender="99999", text="x"))
    assert table_counts(engine) == (0, 0, 0)


def test_named_placeholder_without_column_is_refused_whole(env):
    settings, engine = env
    with pytest.raises(InputError, match=r"\{surname\}"):
        create_from_file(
            engine, settings, SAMPLE, NewBroadcast(sender="55501", text="Hi {surname}")
        )
    assert table_counts(engine) == (0, 0, 0)


def test_segments_exceeded_is_a_refused_message(env, tmp_path):
    settings, engine = env
    f = tmp_path / "long.csv"
    f.write_text("+525512345678,short\n+525512345679," + "x" * 1600 + "\n")
    view = create_from_file(engine, settings, f, NewBroadcast(sender="55501", text="{0}"))
    assert get_broadcast(engine, view.id).counts == {"QUEUE": 1, "SEGMENTS_EXCEEDED": 1}


def _hostile_cases():
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="bc-hostile-"))
    return build_hostile_files(d)


@pytest.mark.parametrize("case", _hostile_cases(), ids=lambda c: c.name)
def test_hostile_files_store_all_or_nothing(env, case):
    settings, engine = env
    kw = dict(case.open_kwargs)
    if "max_rows" in kw:
        settings = settings.model_copy(update={"max_rows": kw.pop("max_rows")})
    if "max_file_bytes" in kw:
        settings = settings.model_copy(update={"max_file_bytes": kw.pop("max_file_bytes")})
    kind, detail = case.expectation
    req = NewBroadcast(sender="55501", text="Hello")
    if kind == "rejected":
        with pytest.raises(InputError) as info:
            create_from_file(engine, settings, case.path, req, **kw)
        assert detail in str(info.value)
        assert str(case.path.name) in str(info.value)  # the error names the file
        assert table_counts(engine) == (0, 0, 0)  # nothing half-stored
        return
    view = create_from_file(engine, settings, case.path, req, **kw)
    _, n_messages, n_errors = table_counts(engine)
    # every row of the file ends as exactly one message or one row error
    assert n_messages + n_errors == len(detail)
    assert view.expected_messages == n_messages
    with engine.connect() as conn:
        lines = sorted(
            [r[0] for r in conn.execute(sa.select(messages.c.line))]
            + [r[0] for r in conn.execute(sa.select(row_errors.c.line))]
        )
    assert lines == sorted(item.line for item in detail)

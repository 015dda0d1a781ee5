"""Contact imports: 100,000 rows with row errors upserted into a list, matching by MOBILE or
EXTERNAL, repeats and shared values across batches, all or nothing, and other writers getting
in while a big import is staged (issue 15). Both backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.errors import FileRejected, NotFound
from broadcaster.ingest import open_recipients
from broadcaster.services.broadcasts import NewBroadcast, create_from_file
from broadcaster.services.codes import add_code
from broadcaster.services.contact_import import import_file, import_table
from broadcaster.services.contacts import find_contact, list_contacts
from broadcaster.services.views import Identifier
from broadcaster.store import codes_repo, contacts_repo, messages_repo
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import contact_identifiers, contacts, list_members

ROWS = 100_000


def _setup(database_url: str) -> tuple[Settings, sa.Engine]:
    upgrade(database_url)
    return Settings(database_url=database_url, redis_url=None), engine_for(database_url)


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _people(path: Path, rows: int, bad_every: int) -> int:
    """A CSV of ``rows`` contacts, every ``bad_every``-th with a bad number; bad rows made."""
    bad = 0
    with path.open("w") as f:
        f.write("phone,first_name,tier\n")
        for n in range(rows):
            if n % bad_every == 7:
                f.write(f"12{n},Bad{n},x\n")
                bad += 1
            else:
                f.write(f"+5255{n:08d},Name{n},{n % 3}\n")
    return bad


@pytest.mark.slow
def test_100k_contacts_with_row_errors(database_url: str, tmp_path: Path) -> None:
    settings, engine = _setup(database_url)
    path = tmp_path / "people.csv"
    bad = _people(path, ROWS, 1000)
    report = import_file(engine, settings, path, "acme", "everyone")
    assert report["read"] == ROWS and report["invalidRows"] == bad == 100
    assert report["created"] == ROWS - bad and report["members"] == ROWS - bad
    assert [e["line"] for e in report["errors"][:2]] == [9, 1009]  # header is line 1
    assert "MOBILE" in report["errors"][0]["reason"]
    assert _count(engine, contacts) == ROWS - bad == _count(engine, list_members)
    got = find_contact(engine, "acme", "MOBILE", "+525500054321")
    assert got.attributes == {"first_name": "Name54321", "tier": "0"}
    # Again: every contact updated, none created, the list unchanged.
    again = import_file(engine, settings, path, "acme", "everyone")
    assert (again["created"], again["updated"], again["members"]) == (0, ROWS - bad, ROWS - bad)
    assert _count(engine, contacts) == ROWS - bad


def test_import_upserts_by_external_and_keeps_identifiers_to_their_owner(
    database_url: str, tmp_path: Path
) -> None:
    settings, engine = _setup(database_url)
    first = tmp_path / "a.csv"
    first.write_text("phone,external,name\n+525500000001,crm-1,Ana\n+525500000002,crm-2,Bob\n")
    import_file(engine, settings, first, "acme", "crm", by="EXTERNAL")
    second = tmp_path / "b.csv"
    # crm-1 moves to a new number; crm-3 asks for Bob's number, which stays Bob's.
    second.write_text(
        "phone,external,name\n+525500000009,crm-1,Ana B\n+525500000002,crm-3,Cy\n,crm-4,Di\n"
    )
    report = import_file(engine, settings, second, "acme", "crm", by="EXTERNAL")
    assert (report["created"], report["updated"]) == (2, 1)
    assert [e["line"] for e in report["errors"]] == [3]
    assert "belongs to contact" in report["errors"][0]["reason"]
    ana = find_contact(engine, "acme", "EXTERNAL", "crm-1")
    assert ana.attributes["name"] == "Ana B"
    assert Identifier("MOBILE", "+525500000009") in ana.identifiers
    assert find_contact(engine, "acme", "MOBILE", "+525500000002").attributes["name"] == "Bob"
    assert len(list_contacts(engine, "acme", in_list="crm").items) == 4
    assert list_contacts(engine, "other").items == []


def test_a_file_that_fails_late_leaves_nothing(database_url: str, tmp_path: Path) -> None:
    _, engine = _setup(database_url)
    settings = Settings(database_url=database_url, redis_url=None, max_rows=50)
    path = tmp_path / "long.csv"
    _people(path, 120, 1000)
    with pytest.raises(FileRejected):
        import_file(engine, settings, path, "acme", "everyone")
    assert _count(engine, contacts) == 0 and _count(engine, contact_identifiers) == 0


def test_repeats_across_batches_merge_and_a_value_has_one_holder(
    database_url: str, tmp_path: Path
) -> None:
    _, engine = _setup(database_url)
    path = tmp_path / "p.csv"
    path.write_text(
        "phone,email,name,tier\n"
        "+525500000001,a@x.org,Ana,1\n"
        "+525500000002,shared@x.org,Bob,\n"
        "+525500000003,shared@x.org,Cy,3\n"
        "+525500000001,,Ana B,\n"
    )
    with open_recipients(path) as table:  # one row per batch: every repeat is another batch's
        report = import_table(engine, table, "acme", "all", batch_rows=1)
    assert (report["read"], report["created"], report["updated"], report["members"]) == (
        4,
        3,
        0,
        3,
    )
    bob = find_contact(engine, "acme", "EMAIL", "shared@x.org")
    assert bob.attributes == {"name": "Bob"}
    assert [(e["line"], e["value"]) for e in report["errors"]] == [(4, "shared@x.org")]
    assert (
        report["errors"][0]["reason"] == f"EMAIL shared@x.org belongs to contact {bob.contact_id}"
    )
    ana = find_contact(engine, "acme", "MOBILE", "+525500000001")
    assert ana.attributes == {"name": "Ana B", "tier": "1"}
    assert Identifier("EMAIL", "a@x.org") in ana.identifiers
    cy = find_contact(engine, "acme", "MOBILE", "+525500000003")
    assert [i.type for i in cy.identifiers] == ["MOBILE"]
    # A contact that holds the value in the database keeps it against any row of a file.
    second = tmp_path / "q.csv"
    second.write_text("phone,email\n+525500000009,shared@x.org\n+525500000002,b@x.org\n")
    again = import_file(engine, Settings(database_url=database_url), second, "acme", "all")
    assert (again["created"], again["updated"], again["invalidRows"]) == (1, 1, 1)
    assert find_contact(engine, "acme", "EMAIL", "b@x.org").contact_id == bob.contact_id
    with pytest.raises(NotFound):
        find_contact(engine, "acme", "EMAIL", "shared@x.org")


#: Rows of the file the next test pauses half-way through, in batches of BATCH.
BIG, BATCH = 20_000, 5_000
#: A competing writer gives up after this long instead of the engine's 60 s busy timeout.
WRITER_WAIT_S = 10.0


def _impatient(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        return sa.create_engine(url, connect_args={"timeout": WRITER_WAIT_S})
    return sa.create_engine(
        url, connect_args={"options": f"-c lock_timeout={int(WRITER_WAIT_S * 1000)}"}
    )


def test_other_writers_get_in_while_a_big_contact_import_runs(
    database_url: str, tmp_path: Path
) -> None:
    settings, engine = _setup(database_url)
    add_code(engine, settings, "55502", "short", workspace="other")
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("phone\n+525550000001\n+525550000002\n")
    other = create_from_file(
        engine, settings, theirs, NewBroadcast(sender="55502", text="x", workspace="other")
    ).id
    path = tmp_path / "people.csv"
    bad = _people(path, BIG, 10**9)  # one bad row
    paused, release, done = threading.Event(), threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def gated(rows: Iterator[Any]) -> Iterator[Any]:
        for i, row in enumerate(rows):
            if i == 2 * BATCH + 10:  # two batches staged, the rest not read yet
                paused.set()
                assert release.wait(120), "the test never released the import"
            yield row

    def run() -> None:
        try:
            with open_recipients(path) as table:
                table.rows = gated(table.rows)
                outcome["report"] = import_table(engine, table, "acme", "all", batch_rows=BATCH)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        assert paused.wait(120), "the import never got half-way"
        writer = _impatient(database_url)
        now = utcnow()
        with writer.begin() as conn:  # a send claim of another tenant, as dispatch does it
            stamped = messages_repo.mark_dispatched(
                conn, other, limit=10, now=now, stale_before=now - timedelta(seconds=60)
            )
        with writer.begin() as conn:  # and a contact of its own
            ws = codes_repo.ensure_workspace(conn, "other")
            contacts_repo.insert_contacts(conn, ws, [{"name": "Zed"}], now)
        writer.dispose()
        assert len(stamped) == 2
        assert not done.is_set()  # ordering: both writes committed while the import ran
        # Nothing of the half-staged import is visible.
        assert _count(engine, contacts) == 1 and _count(engine, contact_identifiers) == 0
        assert list_contacts(engine, "acme").items == []
        if database_url.startswith("postgresql"):  # no transaction held open between batches
            with engine.connect() as conn:
                idle = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            assert idle == 0
    finally:
        release.set()
    assert done.wait(300) and "error" not in outcome, outcome.get("error")
    assert outcome["report"]["created"] == BIG - bad == outcome["report"]["members"]
    assert _count(engine, contacts) == BIG - bad + 1


def test_a_producer_process_imports_the_same_as_in_process(
    database_url: str, tmp_path: Path
) -> None:
    _, engine = _setup(database_url)
    path = tmp_path / "people.csv"
    bad = _people(path, 12_000, 150)  # 80 bad rows: more than the report shows
    with path.open("a") as f:
        f.write("+525500000001,Again,9\n")  # a repeat of line 3's number, in a later batch

    def run(workspace: str, child: bool) -> dict[str, Any]:
        with open_recipients(path) as table:
            return import_table(
                engine, table, workspace, "all", batch_rows=1000, child_min_bytes=int(child)
            )

    inside, outside = run("acme", False), run("globex", True)
    assert inside == outside
    assert inside["invalidRows"] == bad == 80 and len(inside["errors"]) == 50
    assert inside["read"] == 12_001 and inside["created"] == 12_000 - bad
    for ws in ("acme", "globex"):
        got = find_contact(engine, ws, "MOBILE", "+525500000001")
        assert got.attributes == {"first_name": "Again", "tier": "9"}
    headerless = tmp_path / "plain.txt"
    headerless.write_text("+525500000001|Ana\n")
    with open_recipients(headerless) as table, pytest.raises(FileRejected, match="columns"):
        import_table(engine, table, "acme", "all", child_min_bytes=1)

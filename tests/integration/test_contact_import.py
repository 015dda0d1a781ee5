"""Contact imports: 100,000 rows with row errors upserted into a list, matching by MOBILE or
EXTERNAL, and all or nothing (issue 15). Both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.errors import FileRejected
from broadcaster.services.contact_import import import_file
from broadcaster.services.contacts import find_contact, list_contacts
from broadcaster.store.db import engine_for, upgrade
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
    assert got["attributes"] == {"first_name": "Name54321", "tier": "0"}
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
    assert ana["attributes"]["name"] == "Ana B"
    assert {"type": "MOBILE", "value": "+525500000009"} in ana["identifiers"]
    assert find_contact(engine, "acme", "MOBILE", "+525500000002")["attributes"]["name"] == "Bob"
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

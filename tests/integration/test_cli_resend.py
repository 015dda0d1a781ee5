"""``broadcaster broadcast retry-failed | reschedule`` and ``codes remove``: the same rules as the
HTTP routes, with exit codes (3 not found, 4 invalid transition) and one line, never a traceback."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from broadcaster.cli._output import EXIT_CONFLICT, EXIT_INPUT, EXIT_NOT_FOUND
from broadcaster.store.db import engine_for, utcnow
from broadcaster.store.models import broadcasts, messages
from tests.support.cli import cli_on

ROWS = "phone,name\n" + "".join(f"+5255{n:08d},N{n}\n" for n in range(1, 6))


@pytest.fixture
def cli(database_url, monkeypatch):
    yield from cli_on(database_url, monkeypatch)


@pytest.fixture
def created(cli, tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text(ROWS)
    cli("codes", "add", "55501", "--kind", "short", "--workspace", "acme")
    return cli(
        "broadcast", "create", str(path), "--from", "55501", "--text", "Hi {name}",
        "--at", "2030-01-01T09:00", "--tz", "America/Mexico_City", "--workspace", "acme",
        "--json",
    )["id"]  # fmt: skip


def _finish(database_url: str, bid: int, failed: dict[int, str]) -> None:
    """Every message DELIVRD but line -> status of ``failed``; the broadcast COMPLETED."""
    engine = engine_for(database_url)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.update(messages).where(messages.c.broadcast_id == bid).values(status="DELIVRD")
        )
        for line, status in failed.items():
            conn.execute(
                sa.update(messages)
                .where(messages.c.broadcast_id == bid, messages.c.line == line)
                .values(status=status)
            )
        conn.execute(
            sa.update(broadcasts)
            .where(broadcasts.c.id == bid)
            .values(status="COMPLETED", started_at=now, ended_at=now)
        )


def test_retry_failed_is_refused_until_finished_then_made_once(cli, created, database_url):
    err = cli("broadcast", "retry-failed", str(created), "--json", code=EXIT_CONFLICT)
    assert err["type"] == "InvalidTransition" and "SCHEDULED" in err["error"]
    _finish(database_url, created, {2: "ERROR", 4: "UNDELIV", 5: "EXPIRED"})
    first = cli("broadcast", "retry-failed", str(created), "--json")
    assert first["retryOf"] == created and first["expectedMessages"] == 2
    again = cli("broadcast", "retry-failed", str(created))
    assert f"made earlier: broadcast {first['id']}" in again and '"retryOf"' not in again
    assert cli("broadcast", "retry-failed", str(created), "--json")["id"] == first["id"]
    queued = cli("broadcast", "messages", str(first["id"]), "--json")["items"]
    assert [m["to"] for m in queued] == ["+525500000001", "+525500000003"]
    # another workspace: not found; a retry with nothing to retry: refused
    cli("broadcast", "retry-failed", str(created), "--workspace", "globex", code=EXIT_NOT_FOUND)
    _finish(database_url, first["id"], {})
    nothing = cli("broadcast", "retry-failed", str(first["id"]), code=EXIT_CONFLICT)
    assert "no ERROR or UNDELIV message" in " ".join(nothing.split())


def test_reschedule_moves_a_scheduled_broadcast_only(cli, created, database_url):
    moved = cli("broadcast", "reschedule", str(created), "--at", "2031-05-01T08:00", "--json")
    assert moved["startDate"] == "2031-05-01T08:00:00-06:00"  # the broadcast's own zone
    utc = cli(
        "broadcast", "reschedule", str(created), "--at", "2031-05-01T08:00", "--tz", "UTC",
        "--json",
    )  # fmt: skip
    assert (utc["startDate"], utc["timezone"]) == ("2031-05-01T08:00:00+00:00", "UTC")
    past = cli("broadcast", "reschedule", str(created), "--at", "2020-01-01T00:00", code=EXIT_INPUT)
    assert "in the past" in past and "--at now" in past
    cli("broadcast", "reschedule", str(created), "--at", "2031-01-01", "--tz", "Mars", code=2)
    cli(
        "broadcast", "reschedule", str(created), "--at", "2031-05-01T08:00", "--workspace",
        "globex", code=EXIT_NOT_FOUND,
    )  # fmt: skip
    cli("broadcast", "stop", str(created))  # stop cancels a scheduled broadcast
    err = cli("broadcast", "reschedule", str(created), "--at", "2031-05-01", code=EXIT_CONFLICT)
    assert "cannot reschedule" in err and "STOPPED" in err


def test_codes_remove(cli, created):
    cli("codes", "remove", "55501", "--workspace", "globex", code=EXIT_NOT_FOUND)
    busy = cli("codes", "remove", "55501", "--workspace", "acme", "--json", code=EXIT_CONFLICT)
    assert f"used by broadcast {created} (SCHEDULED), which is not finished" in busy["error"]
    cli("codes", "share", "55501", "--workspace", "globex")
    cli("broadcast", "stop", str(created))
    removed = cli("codes", "remove", "55501", "--workspace", "acme", "--json")
    assert removed == {"code": "55501", "removed": True, "sharesRemoved": 1}
    assert cli("codes", "list", "--workspace", "acme", "--json") == []
    assert cli("codes", "list", "--workspace", "globex", "--json") == []
    # a workspace it is shared with removes only its own use of it
    cli("codes", "add", "55501", "--kind", "short", "--workspace", "initech")
    cli("codes", "share", "55501", "--workspace", "globex")
    assert cli("codes", "remove", "55501", "--workspace", "globex", "--json")["sharesRemoved"] == 0
    assert [c["code"] for c in cli("codes", "list", "--workspace", "initech", "--json")] == [
        "55501"
    ]
    # the default workspace, as add writes it
    cli("codes", "add", "55777", "--kind", "short")
    cli("codes", "remove", "55777")
    assert cli("codes", "list", "--json") == []


def test_the_owner_cannot_remove_a_code_a_shared_workspace_still_sends_from(cli, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("phone\n+525500000009\n")
    cli("codes", "add", "55501", "--kind", "short", "--workspace", "acme")
    cli("codes", "share", "55501", "--workspace", "globex")
    cli(
        "broadcast", "create", str(path), "--from", "55501", "--text", "Hi",
        "--at", "2030-01-01T09:00", "--workspace", "globex",
    )  # fmt: skip
    err = cli("codes", "remove", "55501", "--workspace", "acme", "--json", code=EXIT_CONFLICT)
    assert "not finished" in err["error"] and "globex" not in err["error"]
    assert "shared with" in err["error"] and "broadcast 1 " not in err["error"]
    assert [c["code"] for c in cli("codes", "list", "--workspace", "globex", "--json")] == ["55501"]

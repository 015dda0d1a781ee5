"""``POST /v1/broadcasts/{id}/retry-failed`` and ``/reschedule``, ``DELETE /v1/codes/{code}``:
what each allows in which state, exactly one retry broadcast per source, and walls between
workspaces (404 for another's), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from broadcaster.services.optouts import add_optout
from broadcaster.store.db import utcnow
from broadcaster.store.models import broadcasts, messages
from tests.support.api import PHONES, problem


@pytest.fixture
async def api(make_api, database_url):
    return await make_api(database_url)


async def _finished(api, failed: dict[str, str], status: str = "COMPLETED") -> int:
    """A broadcast of acme over PHONES[:6] whose messages ended DELIVRD but for ``failed``
    (number -> status), marked ``status``."""
    b = await api.broadcast([{"to": p, "params": [f"n{i}"]} for i, p in enumerate(PHONES[:6])])
    now = utcnow()
    with api.engine.begin() as conn:
        conn.execute(
            sa.update(messages)
            .where(messages.c.broadcast_id == b["id"])
            .values(status="DELIVRD", attempts=1, sent_at=now, gateway_id="gw")
        )
        for number, s in failed.items():
            conn.execute(
                sa.update(messages)
                .where(messages.c.broadcast_id == b["id"], messages.c.recipient == number)
                .values(status=s, error="refused")
            )
        conn.execute(
            sa.update(broadcasts)
            .where(broadcasts.c.id == b["id"])
            .values(status=status, started_at=now, ended_at=now)
        )
    return b["id"]


def _messages_of(api, bid: int) -> list[tuple[str, str, int, str]]:
    with api.engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.recipient, messages.c.status, messages.c.attempts, messages.c.text)
            .where(messages.c.broadcast_id == bid)
            .order_by(messages.c.recipient)
        )
        return [tuple(r) for r in rows]


async def test_retry_failed_makes_one_broadcast_of_the_failed_recipients(api):
    failed = {PHONES[1]: "ERROR", PHONES[4]: "UNDELIV", PHONES[5]: "REJECTD"}
    src = await _finished(api, failed)
    resp = await api.call("POST", f"/v1/broadcasts/{src}/retry-failed")
    first = await resp.json()
    assert resp.status == 201, first
    assert resp.headers["Location"] == f"/v1/broadcasts/{first['id']}"
    assert first["retryOf"] == src and first["id"] != src
    assert (first["status"], first["expectedMessages"], first["shortcode"]) == (
        "SCHEDULED",
        2,
        "55501",
    )
    # ERROR and UNDELIV only, as QUEUE with no attempts, their rendered texts kept
    assert _messages_of(api, first["id"]) == [
        (PHONES[1], "QUEUE", 0, "Hi n1"),
        (PHONES[4], "QUEUE", 0, "Hi n4"),
    ]
    # again, and twice at once: the same broadcast, 200, nothing new
    again = await api.json("POST", f"/v1/broadcasts/{src}/retry-failed", 200)
    both = await asyncio.gather(
        *(api.call("POST", f"/v1/broadcasts/{src}/retry-failed") for _ in range(2))
    )
    assert [r.status for r in both] == [200, 200]
    assert {again["id"], *[(await r.json())["id"] for r in both]} == {first["id"]}
    page = await api.json("GET", "/v1/broadcasts", 200)
    assert sorted(b["id"] for b in page["items"]) == [src, first["id"]]
    assert [b["retryOf"] for b in page["items"]] == [src, None]


async def test_retry_failed_of_a_stopped_broadcast_and_of_an_opted_out_number(api):
    src = await _finished(api, {PHONES[0]: "ERROR", PHONES[2]: "ERROR"}, status="STOPPED")
    add_optout(api.engine, "acme", PHONES[2], region=None)
    made = await api.json("POST", f"/v1/broadcasts/{src}/retry-failed", 201)
    assert made["counts"] == {"QUEUE": 1, "BLACKLISTED": 1}
    assert made["expectedMessages"] == 2


@pytest.mark.parametrize("status", ["SCHEDULED", "RUNNING", "SUSPENDED"])
async def test_retry_failed_of_an_unfinished_broadcast_is_409(api, status):
    src = await _finished(api, {PHONES[1]: "ERROR"}, status=status)
    body = await problem(await api.call("POST", f"/v1/broadcasts/{src}/retry-failed"), 409)
    assert body["current"] == status and "retry" in body["action"]


async def test_retry_failed_with_nothing_to_retry_is_409(api):
    src = await _finished(api, {PHONES[1]: "EXPIRED"})
    body = await problem(await api.call("POST", f"/v1/broadcasts/{src}/retry-failed"), 409)
    assert "no ERROR or UNDELIV message" in body["detail"]


async def test_retry_failed_of_another_workspace_is_404_and_makes_nothing(api):
    src = await _finished(api, {PHONES[1]: "ERROR"})
    await problem(await api.call("POST", f"/v1/broadcasts/{src}/retry-failed", "globex"), 404)
    assert (await api.json("GET", "/v1/broadcasts", 200, "globex"))["items"] == []
    assert len((await api.json("GET", "/v1/broadcasts", 200))["items"]) == 1


def _later(hours: float) -> str:
    return (utcnow() + timedelta(hours=hours)).replace(microsecond=0).isoformat()


async def test_reschedule_moves_the_start_of_a_scheduled_broadcast(api):
    b = await api.broadcast(startDate=_later(5))
    moved = await api.json(
        "POST",
        f"/v1/broadcasts/{b['id']}/reschedule",
        200,
        json={"at": "2031-03-01T09:30", "timezone": "America/Mexico_City"},
    )
    assert moved["startDate"] == "2031-03-01T09:30:00-06:00" and moved["status"] == "SCHEDULED"
    assert moved["timezone"] == "America/Mexico_City"
    # without a zone: the broadcast's own
    again = await api.json(
        "POST", f"/v1/broadcasts/{b['id']}/reschedule", 200, json={"at": "2031-03-02T10:00"}
    )
    assert again["startDate"] == "2031-03-02T10:00:00-06:00"


async def test_reschedule_refuses_the_past_and_bad_input_with_422(api):
    b = await api.broadcast(startDate=_later(5))
    url = f"/v1/broadcasts/{b['id']}/reschedule"
    past = await problem(await api.call("POST", url, json={"at": "2020-01-01T09:00"}), 422)
    assert past["field"] == "at" and "in the past" in past["detail"]
    assert (await problem(await api.call("POST", url, json={}), 422))["field"] == "at"
    bad = await problem(await api.call("POST", url, json={"at": "tomorrow"}), 422)
    assert bad["field"] == "at"
    zone = await problem(
        await api.call("POST", url, json={"at": _later(1), "timezone": "Mars"}), 422
    )
    assert zone["field"] == "timezone"
    assert (await api.json("GET", f"/v1/broadcasts/{b['id']}", 200))["startDate"] == b["startDate"]


async def test_reschedule_of_a_broadcast_not_scheduled_is_409(api):
    b = await api.broadcast(startDate=_later(5))
    await api.json("POST", f"/v1/broadcasts/{b['id']}/suspend", 200)
    body = await problem(
        await api.call("POST", f"/v1/broadcasts/{b['id']}/reschedule", json={"at": _later(1)}),
        409,
    )
    assert (body["current"], body["action"]) == ("SUSPENDED", "reschedule")


async def test_reschedule_of_another_workspace_is_404(api):
    b = await api.broadcast(startDate=_later(5))
    url = f"/v1/broadcasts/{b['id']}/reschedule"
    await problem(await api.call("POST", url, "globex", json={"at": _later(1)}), 404)
    assert (await api.json("GET", f"/v1/broadcasts/{b['id']}", 200))["startDate"] == b["startDate"]


async def test_delete_code_removes_only_the_workspace_s_own_code(api):
    await problem(await api.call("DELETE", "/v1/codes/55501", "globex"), 404)
    await problem(await api.call("DELETE", "/v1/codes/55599"), 404)
    assert [c["code"] for c in (await api.json("GET", "/v1/codes", 200))["items"]] == ["55501"]
    removed = await api.json("DELETE", "/v1/codes/55501", 200)
    assert removed == {"code": "55501", "removed": True, "sharesRemoved": 0}
    assert (await api.json("GET", "/v1/codes", 200))["items"] == []
    # freed: any workspace may register it now
    await api.json("POST", "/v1/codes", 201, "globex", json={"code": "55501", "kind": "short"})


async def test_delete_code_is_refused_while_a_broadcast_not_finished_uses_it(api):
    b = await api.broadcast(startDate=_later(5))
    body = await problem(await api.call("DELETE", "/v1/codes/55501"), 409)
    assert "not finished" in body["detail"]
    await api.json("POST", f"/v1/broadcasts/{b['id']}/stop", 200)
    await api.json("DELETE", "/v1/codes/55501", 200)


async def test_two_first_retry_failed_calls_at_once_make_one_broadcast(api):
    src = await _finished(api, {PHONES[1]: "ERROR", PHONES[2]: "UNDELIV"})
    both = await asyncio.gather(
        *(api.call("POST", f"/v1/broadcasts/{src}/retry-failed") for _ in range(2))
    )
    assert sorted(r.status for r in both) == [200, 201]
    made = {(await r.json())["id"] for r in both}
    assert len(made) == 1
    assert len(_messages_of(api, made.pop())) == 2


async def test_retry_failed_after_the_code_was_removed_is_422(api):
    src = await _finished(api, {PHONES[1]: "ERROR"})
    await api.json("DELETE", "/v1/codes/55501", 200)
    body = await problem(await api.call("POST", f"/v1/broadcasts/{src}/retry-failed"), 422)
    assert "CODE_NOT_ALLOWED" in body["detail"]
    assert len((await api.json("GET", "/v1/broadcasts", 200))["items"]) == 1

"""``window`` and ``validity`` on ``POST /v1/broadcasts`` (JSON and upload) and in ``GET``."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from broadcaster.store.models import broadcasts, messages
from tests.support.api import form

WIDE = ["+12125550100", "+14155550100", "+525512345678", "+61412345678"]


async def test_json_broadcast_keeps_its_window_validity_and_each_recipients_zone(api):
    body = await api.broadcast(
        [{"to": n, "params": ["x"]} for n in WIDE],
        window="8:00-21:00",
        validity="2h",
        timezone="Australia/Perth",
    )
    assert body["window"] == "08:00-21:00" and body["validity"] == 7200.0
    got = await api.json("GET", f"/v1/broadcasts/{body['id']}", 200)
    assert got["window"] == "08:00-21:00" and got["expiresAt"] is None  # not started yet
    assert got["waitingForWindow"] >= 0 and "nextWindowAt" in got
    with api.engine.connect() as conn:
        zones = dict(
            conn.execute(
                sa.select(messages.c.recipient, messages.c.tz).where(
                    messages.c.broadcast_id == body["id"]
                )
            ).all()
        )
        stored = conn.execute(
            sa.select(broadcasts.c.zones).where(broadcasts.c.id == body["id"])
        ).scalar_one()
    assert zones == {
        "+12125550100": "America/New_York",
        "+14155550100": "America/Los_Angeles",
        "+525512345678": "America/Mexico_City",
        "+61412345678": "Australia/Perth",  # a mobile of several zones takes the broadcast's
    }
    assert stored == sorted(set(zones.values()))


async def test_validity_in_seconds_and_no_window(api):
    body = await api.broadcast(validity=90)
    assert body["validity"] == 90.0 and body["window"] is None
    got = await api.json("GET", f"/v1/broadcasts/{body['id']}", 200)
    assert got["waitingForWindow"] == 0 and got["nextWindowAt"] is None


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"window": "8-21"}, "window", "HH:MM-HH:MM"),
        ({"window": "09:00-09:00"}, "window", "same time"),
        ({"window": 800}, "window", "string"),
        ({"validity": "2 hours"}, "validity", "duration"),
        ({"validity": 0}, "validity", "above 0"),
        ({"validity": 10**9}, "validity", "at most"),
    ],
)
async def test_bad_window_or_validity_is_refused_naming_the_field(api, fields, field, says):
    body = {"from": "55501", "text": "Hi", "recipients": ["+525500000001"], **fields}
    problem = await api.json("POST", "/v1/broadcasts", 422, json=body)
    assert problem["field"] == field and says in problem["detail"], problem


async def test_upload_takes_window_and_validity_as_form_fields(api):
    data = b"+12125550100\n+14155550100\n"
    body = await api.json(
        "POST",
        "/v1/broadcasts",
        201,
        data=form(
            data,
            "list.txt",
            **{"from": "55501", "text": "Hi", "window": "21:00-08:00", "validity": "30m"},
        ),
    )
    assert body["window"] == "21:00-08:00" and body["validity"] == 1800.0

"""Guards a user would expect from the API: a start date in the past and a callback URL that
points inside our network are refused when the request is made, naming why."""

from __future__ import annotations

import pytest

from tests.support.api import PHONES


async def test_a_start_date_in_the_past_is_refused(api):
    body = {
        "from": "55501",
        "text": "Hi",
        "recipients": [PHONES[0]],
        "startDate": "2020-12-01T09:30",
    }
    problem = await api.json("POST", "/v1/broadcasts", 422, json=body)
    assert problem["field"] == "startDate" and "in the past" in problem["detail"], problem
    assert (await api.json("GET", "/v1/broadcasts", 200))["items"] == []  # nothing stored


async def test_now_and_the_last_minute_still_start_at_once(api):
    for start in ("now", None):
        created = await api.broadcast(startDate=start)
        assert created["status"] == "SCHEDULED"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
    ],
)
@pytest.mark.parametrize("route", ["/v1/messages", "/v1/broadcasts"])
async def test_a_refused_callback_url_is_422_when_the_send_is_made(api, route, url, why):
    body = {"from": "55501", "text": "Hi", "callbacks": [url]}
    body |= {"to": PHONES[0]} if route == "/v1/messages" else {"recipients": [PHONES[0]]}
    problem = await api.json("POST", route, 422, json=body)
    assert problem["field"] == "callbacks", problem
    assert "refused" in problem["detail"] and why in problem["detail"], problem

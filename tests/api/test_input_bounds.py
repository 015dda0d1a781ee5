"""Rates and digits at the API's edge (issue 11 item 8).

``mps`` of ``1e-300`` was accepted and made every re-dispatch overflow; Unicode digits
(``١٢٣٤٥``) passed as ids (``\\d`` in the routes, then ``int()``) and as sender codes.
"""

from __future__ import annotations

import pytest

from broadcaster.errors import InputError
from broadcaster.services.codes import validate_code

ARABIC_12345 = "\u0661\u0662\u0663\u0664\u0665"
ARABIC_DIGITS = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))


@pytest.mark.parametrize("mps", [1e-300, 0.001, 0.0099])
async def test_a_tiny_rate_is_refused_naming_mps(api, mps):
    body = await api.json(
        "POST", "/v1/codes", 422, json={"code": "12345", "kind": "short", "mps": mps}
    )
    assert body["field"] == "mps" and "at least 0.01" in body["detail"], body
    codes = (await api.json("GET", "/v1/codes", 200))["items"]
    assert "12345" not in {c["code"] for c in codes}


async def test_the_slowest_rate_is_accepted(api):
    created = await api.json(
        "POST", "/v1/codes", 201, json={"code": "12345", "kind": "short", "mps": 0.01}
    )
    assert created["mps"] == 0.01


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (ARABIC_12345, "short"),
        ("+" + ARABIC_12345, "long"),
        ("55\u0665\u0660\u0661", "short"),  # mixed
        ("\uff15\uff15\uff15\uff10\uff11", "short"),  # full-width
        ("55501\n", "short"),  # "$" matched before a final newline
        ("ACME\n", "alphanumeric"),
    ],
)
async def test_non_ascii_digit_codes_are_refused(api, code, kind):
    with pytest.raises(InputError):
        validate_code(code, kind, None)
    body = await api.json("POST", "/v1/codes", 422, json={"code": code, "kind": kind})
    assert body["field"] == "code", body


@pytest.mark.parametrize(
    "path",
    [
        "/v1/broadcasts/{}",
        "/v1/broadcasts/{}/messages",
        "/v1/broadcasts/{}/errors",
        "/v1/messages/{}",
    ],
)
async def test_ids_in_unicode_digits_name_nothing(api, path):
    # Given a broadcast and its first message, both readable by their ids
    view = await api.broadcast()
    listed = await api.json("GET", f"/v1/broadcasts/{view['id']}/messages", 200)
    rid = listed["items"][0]["id"] if path.startswith("/v1/messages") else view["id"]
    assert (await api.call("GET", path.format(rid))).status == 200
    # When the id is written in Arabic-Indic digits, it names nothing
    arabic = str(rid).translate(ARABIC_DIGITS)
    resp = await api.call("GET", path.format(arabic))
    assert resp.status == 404, await resp.text()
    resp = await api.call("POST", f"/v1/broadcasts/{str(view['id']).translate(ARABIC_DIGITS)}/stop")
    assert resp.status in (404, 405), await resp.text()
    assert (await api.json("GET", f"/v1/broadcasts/{view['id']}", 200))["status"] == view["status"]

"""Each gateway's MO format read into one Inbound (providers/inbound.py), Kannel's octets
decoded by the charset its get-url passes (issue 13)."""

from __future__ import annotations

import pytest

from broadcaster.providers.inbound import kannel_text, parse_kannel, parse_messangi, parse_vonage

ARRET_UCS2 = "ARRÊT".encode("utf-16-be")


@pytest.mark.parametrize(
    ("text", "coding", "charset", "expected"),
    [
        # a UCS-2 MO: %a is UTF-16BE; as query bytes where it is not UTF-8...
        (ARRET_UCS2, "2", "UTF-16BE", "ARRÊT"),
        # ...and as text where it happens to be (ASCII in UTF-16BE is UTF-8 with NULs)
        ("STOP".encode("utf-16-be").decode("utf-8"), "2", "UTF-16BE", "STOP"),
        # no %C in an older get-url: coding 2 alone says UCS-2
        (ARRET_UCS2, "2", None, "ARRÊT"),
        # a 7-bit MO: Kannel keeps GSM text as UTF-8
        ("¡Baja!", "0", "UTF-8", "¡Baja!"),
        ("Stop", None, None, "Stop"),
        # a charset Kannel recoded to
        ("ARRÊT".encode("cp1252"), "0", "WINDOWS-1252", "ARRÊT"),
        # binary, or a charset nobody knows: read as UTF-8 with replacements, never refused
        (b"\xffSTOP", "1", "8-BIT", "\ufffdSTOP"),
        (b"STOP", "0", "NO-SUCH-CHARSET", "STOP"),
        # an odd number of UTF-16 octets: the last one replaced
        (ARRET_UCS2 + b"\x00", "2", "UTF-16BE", "ARRÊT\ufffd"),
    ],
)
def test_kannel_text_is_decoded_by_its_charset(text, coding, charset, expected) -> None:
    assert kannel_text(text, coding, charset) == expected


def test_kannel_get_url_fields() -> None:
    got = parse_kannel(
        {
            "from": "+525530000001",
            "to": "15550100",
            "text": ARRET_UCS2,
            "id": "k-1",
            "at": "2026-12-01 19:28:21",
            "coding": "2",
            "charset": "UTF-16BE",
        }
    )
    assert (got.id, got.sender, got.to, got.text) == ("k-1", "+525530000001", "15550100", "ARRÊT")
    assert got.received_at == "2026-12-01 19:28:21"


def test_kannel_without_an_id_is_keyed_by_what_it_holds() -> None:
    body = {"from": "525530000001", "to": "15550100", "text": "STOP", "at": "t"}
    first, again = parse_kannel(body), parse_kannel(dict(body))
    assert first.id == again.id and first.id.startswith("sha1:")
    assert parse_kannel({**body, "text": "HELP"}).id != first.id


def test_messangi_and_vonage_fields() -> None:
    m = parse_messangi(
        {"id": "m1", "from": "+525530000001", "to": "55501", "text": "BAJA", "date": "d"}
    )
    assert (m.id, m.sender, m.to, m.text, m.received_at) == (
        "m1",
        "+525530000001",
        "55501",
        "BAJA",
        "d",
    )
    v = parse_vonage(
        {
            "msisdn": 525530000002,  # a JSON body may carry it as a number
            "to": "+3197010260001",
            "messageId": "0A01",
            "text": "Stop",
            "type": "text",
            "keyword": "STOP",
            "message-timestamp": "2026-12-01 10:00:00",
        }
    )
    assert (v.id, v.sender, v.to, v.text) == ("0A01", "+525530000002", "3197010260001", "Stop")
    # a query value that was not UTF-8 (bytes) is text with replacements, not "b'...'"
    odd = parse_vonage({"msisdn": "525530000003", "to": "1", "messageId": "x", "text": b"\xffok"})
    assert odd.text == "\ufffdok"

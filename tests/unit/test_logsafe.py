"""``printable``: one log call, one honest line, whatever a value holds."""

from __future__ import annotations

import pytest

from broadcaster.logsafe import MAX_LOGGED_CHARS, printable


@pytest.mark.parametrize(
    "value,logged",
    [
        ("12345", "12345"),
        ("Olá 😀 ١٢٣", "Olá 😀 ١٢٣"),  # printable text of any script stays as it is
        ("a\nb", "a\\x0ab"),
        ("a\r\nFAKE", "a\\x0d\\x0aFAKE"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override
        ("line\u2028sep", "line\\u2028sep"),
        ("back\\x0a", "back\\\\x0a"),  # a written-out escape cannot pass for a real one
        (None, "None"),
        (42, "42"),
        (ValueError("bad\nthing"), "bad\\x0athing"),
    ],
)
def test_printable(value, logged):
    assert printable(value) == logged


def test_long_values_are_cut_and_counted():
    out = printable("x" * (MAX_LOGGED_CHARS + 50))
    assert out == "x" * MAX_LOGGED_CHARS + "…(+50 chars)"

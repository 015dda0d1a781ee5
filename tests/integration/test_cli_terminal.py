"""The command line shows hostile names and texts literally (issue 11 item 8).

Terminal escape sequences (``\\x1b[2J`` clears the screen) and bidi overrides (``\\u202e``
reverses what follows) in file cells, names and errors were printed raw, and rich markup in
them was interpreted. People see them escaped; ``--json`` keeps the exact text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from broadcaster.cli import main
from broadcaster.cli._output import safe
from broadcaster.config import get_settings

HOSTILE = "\x1b[2J\x1b]0;pwned\x07\u202eevil\x9b31m[red]x[/]"

# (value, shown)
SAFE = [
    ("plain", "plain"),
    ("\x1b[2J", "\\x1b[2J"),
    ("a\u202eb", "a\\u202eb"),
    ("\u2066x\u2069", "\\u2066x\\u2069"),
    ("\x9b31m", "\\x9b31m"),
    ("line\nforged", "line\\x0aforged"),
    ("\x7f\x00", "\\x7f\\x00"),
    ("[bold]x[/]", "\\[bold]x\\[/]"),
    ("ñandú 😀 مرحبا", "ñandú 😀 مرحبا"),
]


@pytest.mark.parametrize(("value", "shown"), SAFE)
def test_safe(value: str, shown: str) -> None:
    assert safe(value) == shown


@pytest.fixture
def run(sqlite_url, monkeypatch):
    monkeypatch.setenv("BROADCASTER_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    yield invoke
    get_settings.cache_clear()


def _assert_inert(out: str) -> None:
    assert "\x1b" not in out and "\u202e" not in out and "\x9b" not in out and "\x07" not in out


def test_row_errors_are_shown_escaped_and_json_is_exact(run, tmp_path: Path) -> None:
    # Given a file whose phone cell is an escape sequence
    path = tmp_path / "r.csv"
    path.write_text(f"phone,name\n+525500000001,Ana\n{HOSTILE},Bob\n", encoding="utf-8")
    # When it is checked for people, the terminal gets nothing it would act on
    out = run("recipients", "check", str(path))
    _assert_inert(out)
    assert "\\x1b[2J" in out and "\\u202eevil" in out and "[red]x[/]" in out
    # and scripts get the exact value, in JSON whose text is inert too
    raw = run("recipients", "check", str(path), "--json")
    _assert_inert(raw)
    report = json.loads(raw)
    assert [e["value"] for e in report["errors"]] == [HOSTILE]


def test_names_and_errors_are_shown_escaped(run, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("phone,name\n+525500000001,Ana\n", encoding="utf-8")
    run("codes", "add", "55501", "--kind", "short")
    # A broadcast name from a user
    out = run(
        "broadcast",
        "create",
        str(path),
        "--from",
        "55501",
        "--text",
        "Hi {name}",
        "--name",
        HOSTILE,
    )
    _assert_inert(out)
    assert "\\u202eevil" in out
    # An error that quotes user input (an unknown sender code)
    err = run("broadcast", "create", str(path), "--from", "\x1b[2J", "--text", "Hi", code=2)
    _assert_inert(err)
    assert "\\x1b[2J" in err


ARABIC_1 = "\u0661"


def test_ids_and_rates_take_ascii_digits_only(run, tmp_path: Path) -> None:
    # Given broadcast 1
    path = tmp_path / "r.csv"
    path.write_text("phone,name\n+525500000001,Ana\n", encoding="utf-8")
    run("codes", "add", "55501", "--kind", "short")
    run("broadcast", "create", str(path), "--from", "55501", "--text", "Hi {name}")
    assert json.loads(run("broadcast", "get", "1", "--json"))["id"] == 1
    # When its id is written in Arabic-Indic digits, it is a usage error, not broadcast 1
    for args in (("get", ARABIC_1), ("stop", ARABIC_1), ("get", "\uff11")):
        out = run("broadcast", *args, "--json", code=2)
        assert "ASCII digits only" in out
    assert json.loads(run("broadcast", "get", "1", "--json"))["status"] != "STOPPED"
    # and so is a rate or a code in them
    out = run("codes", "add", "55502", "--kind", "short", "--mps", "\u0661\u0660", code=2)
    assert "ASCII digits only" in out
    out = run("codes", "add", "\u0665\u0665\u0665\u0660\u0662", "--kind", "short", code=2)
    assert "must be 3-15 digits" in out
    assert run("codes", "add", "55503", "--kind", "short", "--mps", "1e-300", code=2)
    codes = {c["code"] for c in json.loads(run("codes", "list", "--json"))}
    assert codes == {"55501"}

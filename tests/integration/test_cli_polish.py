"""The command line for people: ``send`` without a running stack says so at once and stores
nothing, ``segments`` warns when placeholders make its count uncertain, ``recipients check
--preview`` shows the messages, a long import shows its progress; never raw JSON lines."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from broadcaster.cli import progress, run
from broadcaster.cli._output import EXIT_INPUT
from broadcaster.store.db import engine_for
from broadcaster.store.models import messages
from tests.support.cli import cli_on
from tests.support.services import free_port


@pytest.fixture
def cli(sqlite_url, monkeypatch):
    monkeypatch.delenv("BROADCASTER_REDIS_URL", raising=False)
    yield from cli_on(sqlite_url, monkeypatch)


def _stored(url: str) -> int:
    with engine_for(url).connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one())


SEND = ("send", "--from", "55501", "--to", "+525500000001", "--text", "hi")


def test_send_without_a_broker_says_so_and_stores_nothing(cli, sqlite_url, monkeypatch):
    cli("codes", "add", "55501", "--kind", "short")
    said = cli(*SEND, code=EXIT_INPUT)
    assert "no running stack" in said and "broadcaster dev" in said
    monkeypatch.setenv("BROADCASTER_REDIS_URL", f"redis://:secret@127.0.0.1:{free_port()}/0")
    from broadcaster.config import get_settings

    get_settings.cache_clear()
    err = cli(*SEND, "--json", code=EXIT_INPUT)
    assert err["type"] == "StackUnavailable" and "does not answer" in err["error"]
    assert "secret" not in err["error"]
    assert _stored(sqlite_url) == 0


def test_send_with_a_broker_but_no_worker_says_so(cli, sqlite_url, redis_url, monkeypatch):
    monkeypatch.setenv("BROADCASTER_REDIS_URL", redis_url)
    monkeypatch.setattr(run, "IDLE_LIMIT_S", 0.5)
    from broadcaster.config import get_settings

    get_settings.cache_clear()
    cli("codes", "add", "55501", "--kind", "short")
    said = cli(*SEND, code=EXIT_INPUT)
    assert "no worker took it" in " ".join(said.split())
    assert '{"progress"' not in said  # human output: no JSON lines
    assert _stored(sqlite_url) == 1  # stored: the workers send it once they run


def test_segments_warns_about_placeholders(cli):
    plain = cli("segments", "Hola, tu saldo es 5", "--json")
    assert "warning" not in plain
    uncertain = cli("segments", "Hola {0}, tu saldo es <1> {name}", "--json")
    assert uncertain["placeholders"] == ["{0}", "{1}", "{name}"]
    assert uncertain["warning"].startswith("uncertain")
    human = cli("segments", "Hola {0}")
    assert "warning:" in human and "{0}" in human


def test_recipients_check_previews_the_first_messages(cli, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("phone,name\nxx,bad\n+525500000001,Ana\n+525500000002,Bo\n+525500000003,Cy\n")
    report = cli(
        "recipients", "check", str(path), "--text", "Hi {name}", "--preview", "2", "--json"
    )
    assert report["preview"] == [
        {"line": 3, "to": "+525500000001", "text": "Hi Ana", "encoding": "GSM-7", "segments": 1,
         "status": "QUEUE"},
        {"line": 4, "to": "+525500000002", "text": "Hi Bo", "encoding": "GSM-7", "segments": 1,
         "status": "QUEUE"},
    ]  # fmt: skip
    assert "preview" not in cli("recipients", "check", str(path), "--text", "Hi {name}", "--json")
    human = cli("recipients", "check", str(path), "--text", "Hi {name}", "--preview", "1")
    assert "first messages" in human and "Hi Ana" in human and "Hi Bo" not in human


def test_a_long_import_shows_its_progress_on_stderr(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "IMPORT_BAR_AFTER_S", 0.0)
    path = tmp_path / "list.csv"
    path.write_text("phone\n" + "".join(f"+5255{n:08d}\n" for n in range(1, 12)))
    cli("codes", "add", "55501", "--kind", "short")
    args = ("broadcast", "create", str(path), "--from", "55501", "--text", "Hi", "--now")
    human = cli(*args)
    assert "importing list.csv" in human and "11 rows" in human
    as_json = cli(*args, "--json")  # stdout is exactly one JSON document, no bar anywhere
    assert as_json["expectedMessages"] == 11
    json.dumps(as_json)


def test_a_long_contacts_import_shows_its_progress_too(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "IMPORT_BAR_AFTER_S", 0.0)
    path = tmp_path / "people.csv"
    path.write_text("phone,first_name\n" + "".join(f"+5255{n:08d},P{n}\n" for n in range(1, 12)))
    human = cli("contacts", "import", str(path), "--list", "vip")
    assert "importing people.csv" in human and "11 rows" in human
    as_json = cli("contacts", "import", str(path), "--list", "vip", "--json")
    assert as_json["updated"] == 11  # stdout is the one JSON document, no bar in it

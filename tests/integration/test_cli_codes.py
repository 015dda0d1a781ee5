"""``broadcaster codes``: a code another workspace owns is refused with one clear line, an
operator shares it, and a code names only a provider and an account that exist."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from broadcaster.cli import main
from broadcaster.cli._output import EXIT_CONFLICT, EXIT_INPUT
from broadcaster.config import get_settings

ACCOUNTS = json.dumps(
    {
        "kannel-main": {
            "provider": "kannel",
            "base_url": "http://kannel.invalid:13013",
            "username": "u",
            "password": "p",
        }
    }
)


@pytest.fixture
def cli(sqlite_url, monkeypatch):
    monkeypatch.setenv("BROADCASTER_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("BROADCASTER_ACCOUNTS", ACCOUNTS)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, (result.output, result.stderr)
        return result

    yield invoke
    get_settings.cache_clear()


def test_a_code_of_another_workspace_is_refused_until_an_operator_shares_it(cli):
    cli("codes", "add", "55501", "--kind", "short", "--workspace", "acme")
    # Another workspace asking for it: exit 4 and one line naming who owns it and how to share
    refused = cli(
        "codes", "add", "55501", "--kind", "short", "--workspace", "globex", code=EXIT_CONFLICT
    )
    line = " ".join(refused.stderr.split())  # one message; rich may wrap it at the terminal width
    assert line.startswith("error:") and "Traceback" not in refused.output
    assert "belongs to workspace 'acme'" in line
    assert "broadcaster codes share 55501 --workspace globex" in line
    as_json = cli(
        "codes",
        "add",
        "+55501",
        "--kind",
        "short",
        "--workspace",
        "globex",
        "--json",
        code=EXIT_CONFLICT,
    )
    assert json.loads(as_json.stdout)["type"] == "Conflict"
    assert json.loads(cli("codes", "list", "--workspace", "globex", "--json").stdout) == []
    # The operator shares it: globex now lists it, with acme's kind and rate
    shared = json.loads(cli("codes", "share", "55501", "--workspace", "globex", "--json").stdout)
    assert (shared["owner"], shared["workspace"], shared["code"]) == ("acme", "globex", "55501")
    listed = json.loads(cli("codes", "list", "--workspace", "globex", "--json").stdout)
    assert [c["code"] for c in listed] == ["55501"]
    # Sharing a code nobody registered: not found (exit 3)
    cli("codes", "share", "55599", "--workspace", "globex", code=3)


@pytest.mark.parametrize(
    "args,says",
    [
        (("--provider", "kanel"), "unknown provider 'kanel'"),
        (("--account", "kannel-2"), "unknown account 'kannel-2'"),
        (("--provider", "kannel"), "add --account kannel-main"),
    ],
)
def test_codes_add_refuses_an_unknown_provider_or_account(cli, args, says):
    refused = cli("codes", "add", "12346", "--kind", "short", *args, code=EXIT_INPUT)
    line = " ".join(refused.stderr.split())  # rich may wrap a long line
    assert says in line
    assert "configured providers: messangi, simulator" in line and "kannel-main (kannel)" in line
    assert "Traceback" not in refused.output
    assert json.loads(cli("codes", "list", "--json").stdout) == []
    cli("codes", "add", "12346", "--kind", "short", "--account", "kannel-main")

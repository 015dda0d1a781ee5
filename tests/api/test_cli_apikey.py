"""``broadcaster apikey create|list|revoke``: the key is shown once and works against the API."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from broadcaster.cli import main
from broadcaster.config import get_settings
from broadcaster.services.apikeys import authenticate
from broadcaster.store.db import engine_for


@pytest.fixture
def cli(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BROADCASTER_DATABASE_URL", url)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    yield run, url
    get_settings.cache_clear()


def test_create_list_revoke(cli):
    run, url = cli
    created = json.loads(run("apikey", "create", "--workspace", "acme", "--json"))
    assert (
        created["key"].startswith(f"bk_{created['prefix']}_") and created["signingSecret"] is None
    )
    principal = authenticate(engine_for(url), created["key"])
    assert principal is not None and principal.workspace == "acme"
    listed = json.loads(run("apikey", "list", "--json"))
    assert [k["prefix"] for k in listed] == [created["prefix"]]
    assert created["key"] not in run("apikey", "list")  # secrets never shown again
    revoked = json.loads(run("apikey", "revoke", created["prefix"], "--json"))
    assert revoked["prefix"] == created["prefix"] and revoked["revokedAt"]
    assert authenticate(engine_for(url), created["key"]) is None
    assert json.loads(run("apikey", "list", "--json"))[0]["revokedAt"] is not None


def test_signing_key_and_readable_output(cli):
    run, _ = cli
    out = run("apikey", "create", "--workspace", "ops", "--signing")
    assert (
        "signingSecret" in out
        and "cannot be shown again" in out
        and "Authorization: Bearer bk_" in out
    )
    assert json.loads(run("apikey", "list", "--workspace", "ops", "--json"))[0]["signing"] is True
    assert json.loads(run("apikey", "list", "--workspace", "nobody", "--json")) == []


def test_errors_exit_non_zero(cli):
    run, _ = cli
    assert "no API key" in run("apikey", "revoke", "0123456789ab", code=3)
    assert "workspace name" in run("apikey", "create", "--workspace", " padded ", code=2)


def test_revoke_with_workspace_finds_only_that_workspace_s_key(cli):
    run, url = cli
    acme = json.loads(run("apikey", "create", "--workspace", "acme", "--json"))
    out = run("apikey", "revoke", acme["prefix"], "--workspace", "globex", code=3)
    assert "no API key" in out
    assert authenticate(engine_for(url), acme["key"]) is not None  # still live
    run("apikey", "revoke", acme["prefix"], "--workspace", "acme")
    assert authenticate(engine_for(url), acme["key"]) is None

"""``broadcaster optouts`` and ``broadcaster inbound``: the suppression list and the replies
received, per workspace, with ``--json`` outputs and one-line refusals (issue 13)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from broadcaster.cli import main
from broadcaster.cli._output import EXIT_INPUT, EXIT_NOT_FOUND
from broadcaster.config import get_settings
from broadcaster.providers.inbound import Inbound
from broadcaster.services.codes import add_code
from broadcaster.services.inbound import receive
from broadcaster.store.db import engine_for, upgrade

A, B, C = "+525500000001", "+525500000002", "+525500000003"


@pytest.fixture
def cli(sqlite_url, monkeypatch):
    monkeypatch.setenv("BROADCASTER_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, (result.output, result.stderr)
        return result

    yield invoke
    get_settings.cache_clear()


def test_optouts_add_list_remove_import_export(cli, tmp_path) -> None:
    cli("optouts", "add", A, "--detail", "called in")
    cli("optouts", "add", B, "--workspace", "other")
    rows = json.loads(cli("optouts", "list", "--json").output)
    assert [(r["number"], r["source"], r["detail"]) for r in rows] == [(A, "operator", "called in")]
    other = json.loads(cli("optouts", "list", "--workspace", "other", "--json").output)
    assert [r["number"] for r in other] == [B]
    f = tmp_path / "list.csv"
    f.write_text(f"number\n{B}\n{C},from the old system\n")
    assert json.loads(cli("optouts", "import", str(f), "--json").output) == {"read": 2, "added": 2}
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{A}\n12\n")
    out = cli("optouts", "import", str(bad), code=EXIT_INPUT)
    assert "line 2" in out.output + out.stderr and "Traceback" not in out.output + out.stderr
    exported = tmp_path / "out.csv"
    cli("optouts", "export", "-o", str(exported))
    lines = exported.read_text().splitlines()
    assert lines[0] == "number,source,detail,created_at"
    assert [line.split(",")[:2] for line in lines[1:]] == [
        [A, "operator"],
        [B, "import"],
        [C, "import"],
    ]
    cli("optouts", "remove", A)
    cli("optouts", "remove", A, code=EXIT_NOT_FOUND)
    cli("optouts", "add", "12", code=EXIT_INPUT)


def test_the_dry_run_counts_the_default_workspaces_optouts(cli, tmp_path) -> None:
    # Given A suppressed in the default workspace (as every command's --workspace defaults to)
    cli("optouts", "add", A)
    f = tmp_path / "list.csv"
    f.write_text(f"phone\n{A}\n{B}\n")
    # Then the dry run without --workspace counts it, as the import would make it BLACKLISTED
    report = json.loads(cli("recipients", "check", str(f), "--json").output)
    assert (report["valid"], report["blacklisted"]) == (2, 1), report
    other = json.loads(cli("recipients", "check", str(f), "--workspace", "o", "--json").output)
    assert other["blacklisted"] == 0


def test_inbound_list_per_workspace(cli, sqlite_url) -> None:
    upgrade(sqlite_url)
    engine = engine_for(sqlite_url)
    settings = get_settings()
    add_code(engine, settings, "55501", "short", workspace="acme")
    receive(engine, settings, "simulator", Inbound("g1", A, "55501", "STOP"))
    rows = json.loads(cli("inbound", "list", "--workspace", "acme", "--json").output)
    assert [(r["from"], r["keyword"]) for r in rows] == [(A, "OPT_OUT")]
    assert json.loads(cli("inbound", "list", "--json").output) == []
    table = cli("inbound", "list", "--workspace", "acme").output
    assert "OPT_OUT" in table
    listed = json.loads(cli("optouts", "list", "--workspace", "acme", "--json").output)
    assert [(r["number"], r["source"]) for r in listed] == [(A, "inbound")]
    got = cli(
        "inbound",
        "settings",
        "--workspace",
        "acme",
        "--set",
        'replies={"help_reply": "Call us"}',
        "--json",
    ).output
    assert json.loads(got) == {"replies": {"help_reply": "Call us"}}


def test_human_output_is_tables_never_json(cli) -> None:
    """Without --json: the settings as rows (or a line saying none are set), an opt-out without
    a detail shows an empty cell, never ``None``."""
    empty = cli("inbound", "settings", "--workspace", "acme").output
    assert empty.startswith("no settings of its own") and "{" not in empty
    cli("inbound", "settings", "--workspace", "acme", "--set", 'replies={"help_reply": "Call us"}')
    cli("inbound", "settings", "--workspace", "acme", "--set", 'keywords={"opt_out": ["BAJA"]}')
    shown = cli("inbound", "settings", "--workspace", "acme").output
    assert "{" not in shown and "[" not in shown, shown
    rows = [[c.strip() for c in line.split(None, 1)] for line in shown.splitlines() if line.strip()]
    assert ["replies.help_reply", "Call us"] in rows and ["keywords.opt_out", "BAJA"] in rows
    added = cli("optouts", "add", A).output
    assert "None" not in added and A in added

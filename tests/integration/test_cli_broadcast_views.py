"""``broadcaster broadcast list | messages | report`` and ``--workspace`` on the broadcast commands:
the HTTP API's bodies on ``--json``, pages that follow their cursor, another workspace's
broadcast "not found" (exit 3), a report written whole or not at all."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from broadcaster.cli._output import EXIT_INPUT, EXIT_NOT_FOUND
from tests.support.cli import cli_on

ROWS = "phone,name\n" + "".join(f"+5255{n:08d},N{n}\n" for n in range(1, 8)) + "xx,bad\n"


@pytest.fixture
def cli(database_url, monkeypatch):
    yield from cli_on(database_url, monkeypatch)


@pytest.fixture
def two_workspaces(cli, tmp_path):
    """Broadcast of acme (7 valid rows, 1 invalid) and one of globex; their ids."""
    path = tmp_path / "clients.csv"
    path.write_text(ROWS)
    cli("codes", "add", "55501", "--kind", "short", "--workspace", "acme")
    cli("codes", "add", "55502", "--kind", "short", "--workspace", "globex")
    later = "2030-01-01T09:00"
    acme = cli(
        "broadcast", "create", str(path), "--from", "55501", "--text", "Hi {name}",
        "--at", later, "--workspace", "acme", "--json",
    )  # fmt: skip
    globex = cli(
        "broadcast", "create", str(path), "--from", "55502", "--text", "Hey {name}",
        "--at", later, "--workspace", "globex", "--json",
    )  # fmt: skip
    return acme["id"], globex["id"]


def test_list_shows_one_workspace_filtered_by_status_in_pages(cli, two_workspaces):
    acme, globex = two_workspaces
    listed = cli("broadcast", "list", "--workspace", "acme", "--json")
    assert [b["id"] for b in listed["items"]] == [acme] and listed["nextCursor"] is None
    # the HTTP API's names
    assert {"shortcode", "expectedMessages", "startDate", "status"} <= set(listed["items"][0])
    assert cli("broadcast", "list", "--workspace", "acme", "--status", "RUNNING", "--json") == {
        "items": [],
        "nextCursor": None,
    }
    # the default workspace has neither
    assert cli("broadcast", "list", "--json")["items"] == []
    cli("broadcast", "stop", str(globex), "--workspace", "globex", "--json")
    assert [
        b["status"] for b in cli("broadcast", "list", "--workspace", "globex", "--json")["items"]
    ] == ["STOPPED"]
    table = cli("broadcast", "list", "--workspace", "acme")
    assert "SCHEDUL" in table and "{" not in table  # a table, never raw JSON


def test_list_shows_progress_and_eta_as_the_http_list_in_80_columns(cli, two_workspaces):
    acme, _ = two_workspaces
    (item,) = cli("broadcast", "list", "--workspace", "acme", "--json")["items"]
    # GET /v1/broadcasts' progress fields: 7 left of 7, at the short code's default 30 msg/s
    assert item["remainingMessages"] == 7 and item["remainingSegments"] == 7
    assert item["progress"] == 0 and item["etaSeconds"] == 1
    table = cli("broadcast", "list", "--workspace", "acme")  # CliRunner's terminal: 80 columns
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines), table
    header = next(line for line in lines if "status" in line)
    assert header.split() == ["id", "name", "status", "start", "exp/sent/dlv/fail", "done", "ETA"]
    row = next(line for line in lines if line.split()[:1] == [str(acme)])
    assert row.split()[-4:] == ["7/0/0/0", "0%", "1", "s"], row


def test_messages_page_by_cursor_and_filter_by_status(cli, two_workspaces):
    acme, _ = two_workspaces
    first = cli("broadcast", "messages", str(acme), "--limit", "5", "--json")
    assert len(first["items"]) == 5 and first["nextCursor"]
    rest = cli(
        "broadcast", "messages", str(acme), "--limit", "5", "--cursor", first["nextCursor"],
        "--json",
    )  # fmt: skip
    assert len(rest["items"]) == 2 and rest["nextCursor"] is None
    tos = [m["to"] for m in first["items"] + rest["items"]]
    assert tos == [f"+5255{n:08d}" for n in range(1, 8)]
    assert {"attempts", "gatewayId", "sentAt", "error"} <= set(rest["items"][0])
    queued = cli("broadcast", "messages", str(acme), "--status", "QUEUE", "--json")
    assert len(queued["items"]) == 7
    assert cli("broadcast", "messages", str(acme), "--status", "ERROR", "--json")["items"] == []
    human = cli("broadcast", "messages", str(acme), "--limit", "5")
    assert f"--cursor {first['nextCursor']}" in human
    bad = cli("broadcast", "messages", str(acme), "--cursor", "!!", code=EXIT_INPUT)
    assert "not a cursor" in bad


def test_another_workspace_s_broadcast_is_not_found(cli, two_workspaces):
    acme, globex = two_workspaces
    for args in (
        ("broadcast", "get", str(acme)),
        ("broadcast", "messages", str(acme)),
        ("broadcast", "suspend", str(acme)),
        ("broadcast", "stop", str(acme)),
        ("broadcast", "delete", str(acme)),
        ("broadcast", "report", str(acme), "-o", "-"),
    ):
        err = cli(*args, "--workspace", "globex", "--json", code=EXIT_NOT_FOUND)
        assert err["type"] == "NotFound"
    # untouched; and the operator (no --workspace) reaches both
    assert cli("broadcast", "get", str(acme), "--json")["status"] == "SCHEDULED"
    assert cli("broadcast", "get", str(globex), "--workspace", "globex", "--json")["id"] == globex


def test_report_matches_the_http_report_in_csv_and_xlsx(cli, two_workspaces, tmp_path):
    acme, _ = two_workspaces
    out = tmp_path / "r.csv"
    said = cli("broadcast", "report", str(acme), "--format", "csv", "-o", str(out), "--json")
    assert said["bytes"] == out.stat().st_size
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rows[0][:4] == ["id", "line", "to", "status"] and len(rows) == 8
    assert rows[1][11] == "Hi N1"
    xlsx = tmp_path / "r.xlsx"
    cli("broadcast", "report", str(acme), "--format", "xlsx", "-o", str(xlsx))
    wb = load_workbook(xlsx, read_only=True)
    assert wb.sheetnames == ["results", "row errors"]
    assert len(list(wb["results"].iter_rows())) == 8
    assert [c.value for c in next(iter(wb["row errors"].iter_rows(min_row=2)))][:2] == [9, "xx"]
    # nothing half-written: an unknown broadcast writes no file, a missing folder is one line
    cli("broadcast", "report", "999", "-o", str(tmp_path / "none.csv"), code=EXIT_NOT_FOUND)
    assert not (tmp_path / "none.csv").exists()
    err = cli("broadcast", "report", str(acme), "-o", str(tmp_path / "no" / "r.csv"), code=2)
    assert "cannot write there" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_report_to_standard_output(cli, two_workspaces):
    acme, _ = two_workspaces
    text = cli("broadcast", "report", str(acme), "-o", "-")
    assert text.lstrip("\ufeff").startswith("id,line,to,status") and text.count("\n") == 8

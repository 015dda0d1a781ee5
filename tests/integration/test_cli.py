"""The command line as scripts use it: ``--json`` outputs, exit codes, clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parents[2] / "broadcaster" / "samples" / "recipients.csv"


def test_segments(run):
    assert run("segments", "Hola", "--json") == {
        "encoding": "GSM-7",
        "segments": 1,
        "units": 4,
        "units_per_segment": 160,
        "characters": 4,
        "exceeded": False,
    }
    assert run("segments", "Olá 😀" * 20, "--json")["encoding"] == "UCS-2"
    assert run("segments", "x" * 1531, "--json")["exceeded"] is True


def test_recipients_check_is_a_dry_run(run):
    report = run(
        "recipients", "check", str(SAMPLE), "--text", "Hi {first_name} {balance}", "--json"
    )
    assert (report["valid"], report["invalid"], report["duplicates"]) == (200, 3, 1)
    assert {"line": 21, "value": "12345", "reason": "too_short"} in report["errors"]
    assert run("codes", "list", "--json") == []  # nothing stored


def test_codes_and_broadcast_lifecycle(run):
    assert run("codes", "add", "55501", "--kind", "short", "--json")["mps"] == 30
    assert run("codes", "add", "5550100", "--kind", "long", "--mps", "2", "--json")["mps"] == 2
    assert [c["code"] for c in run("codes", "list", "--json")] == ["55501", "5550100"]
    created = run(
        "broadcast",
        "create",
        str(SAMPLE),
        "--from",
        "55501",
        "--text",
        "Hi {first_name}, {balance}",
        "--at",
        "2030-01-01T09:00",
        "--tz",
        "America/Mexico_City",
        "--json",
    )
    assert (created["status"], created["expectedMessages"], created["invalidRows"]) == (
        "SCHEDULED",
        200,
        3,
    )
    assert created["startDate"] == "2030-01-01T09:00:00-06:00"
    got = run("broadcast", "get", str(created["id"]), "--json")
    assert got["counts"] == {"QUEUE": 200}
    assert run("broadcast", "suspend", str(created["id"]), "--json")["status"] == "SUSPENDED"
    # suspended before its start time (2030): resume makes it wait for that time again
    assert run("broadcast", "resume", str(created["id"]), "--json")["status"] == "SCHEDULED"
    assert (
        run("broadcast", "delete", str(created["id"]), "--json")["status"] == "DELETED"
    )  # not RUNNING
    created = run(
        "broadcast",
        "create",
        str(SAMPLE),
        "--from",
        "55501",
        "--text",
        "Hi {first_name}, {balance}",
        "--json",
    )
    assert run("broadcast", "suspend", str(created["id"]), "--json")["status"] == "SUSPENDED"
    assert run("broadcast", "resume", str(created["id"]), "--json")["status"] == "RUNNING"
    err = run("broadcast", "delete", str(created["id"]), "--json", code=4)  # RUNNING: stop first
    assert "cannot delete" in err["error"] and err["type"] == "InvalidTransition"
    stopped = run("broadcast", "stop", str(created["id"]), "--json")
    assert stopped == {"id": created["id"], "status": "STOPPED", "cancelled": 200}
    assert run("broadcast", "delete", str(created["id"]), "--json")["messagesRemoved"] == 200
    assert run("broadcast", "get", str(created["id"]), "--json", code=3)["type"] == "NotFound"


def test_bad_input_is_one_clear_error(run, tmp_path):
    bad = tmp_path / "junk.csv"
    bad.write_bytes(b"\x00\x01\x02binary\x00junk" * 100)
    run("codes", "add", "55501", "--kind", "short")
    err = run("broadcast", "create", str(bad), "--from", "55501", "--text", "x", "--json", code=2)
    assert "junk.csv" in err["error"]
    err = run(
        "broadcast", "create", str(SAMPLE), "--from", "00000", "--text", "x", "--json", code=2
    )
    assert "CODE_NOT_ALLOWED" in err["error"]
    out = run("codes", "add", "ABC", "--kind", "short", code=2)
    assert "must be 3-15 digits" in out


def test_json_output_uses_the_http_api_field_names(run):
    """``--json`` speaks the API's names (README changelog): broadcastId, messagesRemoved."""
    run("codes", "add", "55501", "--kind", "short", "--json")
    sent = run(
        "send", "--from", "55501", "--to", "+525512345678", "--text", "hi", "--no-wait", "--json"
    )
    assert sent["status"] == "QUEUE" and isinstance(sent["broadcastId"], int)
    assert "broadcast_id" not in sent and sent["receipts"] == []
    run("broadcast", "stop", str(sent["broadcastId"]), "--json")
    deleted = run("broadcast", "delete", str(sent["broadcastId"]), "--json")
    assert deleted == {"id": sent["broadcastId"], "status": "DELETED", "messagesRemoved": 1}


def _alembic_runs(caplog: pytest.LogCaptureFixture) -> int:
    """How many Alembic runs were logged (each opens one migration context and says so)."""
    return sum(1 for r in caplog.records if r.getMessage().startswith("Context impl"))


def test_reads_run_no_migrations_and_writes_run_them_once(run, caplog):
    run("codes", "list", "--json")  # an empty database gets its schema on first use
    with caplog.at_level(logging.INFO, logger="alembic.runtime.migration"):
        caplog.clear()
        assert run("codes", "list", "--json") == []
        assert _alembic_runs(caplog) == 0
        caplog.clear()
        run("codes", "add", "55501", "--kind", "short", "--json")
        assert _alembic_runs(caplog) == 1
        caplog.clear()
        sent = run(
            "send",
            "--from",
            "55501",
            "--to",
            "+525512345678",
            "--text",
            "hi",
            "--no-wait",
            "--json",
        )
        assert sent["status"] == "QUEUE"
        assert _alembic_runs(caplog) == 1  # was 2: ``send`` asked for the engine twice

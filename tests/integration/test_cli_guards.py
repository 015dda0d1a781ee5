"""Guards of the command line, run as a user runs it (a subprocess): one clear line on stderr,
exit 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from broadcaster.config import Settings, default_secret_problem

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "broadcaster" / "samples" / "recipients.csv"
UNREACHABLE_PG = "postgresql+psycopg://someone:hunter2@127.0.0.1:1/nowhere"


def _run(*args: str, db: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    return subprocess.run(
        [sys.executable, "-m", "broadcaster", *args],
        env={**base, "BROADCASTER_DATABASE_URL": db, "COLUMNS": "300", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    assert _run("codes", "add", "55501", "--kind", "short", db=url).returncode == 0
    return url


def _broadcast_count(db: str) -> int:
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM broadcasts")).scalar_one())
    finally:
        engine.dispose()


def _create(db: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _run(
        "broadcast",
        "create",
        str(SAMPLE),
        "--from",
        "55501",
        "--text",
        "Hi",
        *extra,
        "--json",
        db=db,
    )


def test_a_start_more_than_a_minute_in_the_past_is_refused_unless_now(db):
    # JSON mode puts the error on stdout for scripts; people get one line on stderr.
    people = _run(
        "broadcast",
        "create",
        str(SAMPLE),
        "--from",
        "55501",
        "--text",
        "Hi",
        "--at",
        "2025-12-01T09:30",
        db=db,
    )
    _refused(people, "in the past", "--now")
    assert _broadcast_count(db) == 0  # nothing stored
    started = _create(db, "--at", "2025-12-01T09:30", "--now")
    assert started.returncode == 0, started.stderr
    view = json.loads(started.stdout)
    assert view["status"] == "SCHEDULED" and view["startDate"].startswith("20")
    assert not view["startDate"].startswith("2025-12-01T09:30")


def test_an_unknown_region_is_one_line(db):
    _refused(_run("recipients", "check", str(SAMPLE), "--region", "XX", db=db), "'XX'", "region")
    _refused(
        _run(
            "broadcast",
            "create",
            str(SAMPLE),
            "--from",
            "55501",
            "--text",
            "Hi",
            "--region",
            "XX",
            db=db,
        ),
        "'XX'",
    )


def test_an_unreachable_database_is_one_line_without_its_password():
    line = _refused(_run("codes", "list", db=UNREACHABLE_PG), "cannot reach the database", ":1/")
    assert "hunter2" not in line


def test_a_missing_directory_for_sqlite_is_one_line(tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    _refused(_run("codes", "list", db=f"sqlite:///{missing}/b.db"), str(missing), "does not exist")


@pytest.mark.parametrize("command", [("api",), ("worker", "send"), ("worker", "control")])
def test_default_secrets_are_refused_with_a_shared_database(command):
    line = _refused(_run(*command, db=UNREACHABLE_PG), "BROADCASTER_DLR_SECRET", "change-me")
    assert "BROADCASTER_CALLBACK_SECRET" in line and "openssl rand" in line


@pytest.mark.parametrize(
    ("database_url", "dlr", "callback", "refused"),
    [
        (UNREACHABLE_PG, "change-me", "change-me", ("DLR", "CALLBACK")),
        (UNREACHABLE_PG, "x" * 32, "change-me", ("CALLBACK",)),
        (UNREACHABLE_PG, "x" * 32, "y" * 32, ()),
        ("sqlite:///b.db", "change-me", "change-me", ()),  # one machine: the defaults may stay
    ],
)
def test_which_settings_pass_the_secret_check(database_url, dlr, callback, refused):
    problem = default_secret_problem(
        Settings(database_url=database_url, dlr_secret=dlr, callback_secret=callback)
    )
    if not refused:
        assert problem is None
    else:
        assert problem is not None
        assert {w for w in ("DLR", "CALLBACK") if f"BROADCASTER_{w}_SECRET" in problem} == set(
            refused
        )

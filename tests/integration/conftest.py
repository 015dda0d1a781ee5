"""Fixtures the integration tests share from tests/support/."""

import json
import os
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from broadcaster.cli import main
from broadcaster.config import get_settings
from tests.support.kannel import kannel  # noqa: F401  (fixture: a real Kannel, or a loud skip)
from tests.support.services import PrivatePostgres

#: In CI (``.ci/run`` sets CI=1 and installs PostgreSQL) a missing cluster fails, never skips.
IN_CI = bool(os.environ.get("CI"))


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A cluster of the test's own (fsync off): never the machine's shared PostgreSQL, which a
    test may not restart and whose commits other test runs slow down."""
    try:
        pg = PrivatePostgres().start()
    except (RuntimeError, OSError) as exc:  # skip locally; in CI (.ci/run installs them) fail
        if IN_CI:
            raise
        pytest.skip(f"no PostgreSQL binaries to start a private cluster: {exc}")
    yield pg
    pg.destroy()


@pytest.fixture
def run(sqlite_url, monkeypatch):
    """The CLI in-process on a fresh SQLite file; its output, JSON-decoded with ``--json``."""
    monkeypatch.setenv("BROADCASTER_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if "--json" in args else result.output

    yield invoke
    get_settings.cache_clear()

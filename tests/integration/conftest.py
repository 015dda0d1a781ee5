"""Fixtures the integration tests share from tests/support/."""

import json

import pytest
from click.testing import CliRunner

from broadcaster.cli import main
from broadcaster.config import get_settings
from tests.support.kannel import kannel  # noqa: F401  (fixture: a real Kannel, or a loud skip)


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

"""The command line in-process for tests: one invoke helper on any database URL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from broadcaster.cli import main
from broadcaster.config import get_settings

Invoke = Callable[..., Any]


def cli_on(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """``invoke(*args, code=0)``: runs ``broadcaster ARGS`` on ``database_url``, asserts its exit
    code and answers its JSON (with ``--json``) or its whole output (stdout and stderr)."""
    monkeypatch.setenv("BROADCASTER_DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, (result.output, result.stderr)
        assert "Traceback" not in result.output
        return json.loads(result.stdout) if "--json" in args else result.output

    yield invoke
    get_settings.cache_clear()

"""Every command's ``--help`` ends with an example (the whole command tree, walked)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from broadcaster.cli import main


def _paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += _paths(command, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


@pytest.mark.parametrize("path", _paths(main), ids=lambda p: " ".join(p) or "broadcaster")
def test_help_has_an_example(path):
    result = CliRunner().invoke(main, [*path, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Example: broadcaster" in result.output, result.output

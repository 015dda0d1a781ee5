"""Commands of the HTTP API area: API keys and workspaces."""

from __future__ import annotations

COMMANDS: tuple = ()

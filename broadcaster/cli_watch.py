"""The drop-folder command: broadcaster watch DIR."""

from __future__ import annotations

COMMANDS: tuple = ()

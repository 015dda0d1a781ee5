"""Headless Chromium for the dashboard tests, driven by Playwright.

The browser is Debian's ``chromium`` (``scripts/setup.sh`` installs it): Playwright is given its
path, so no browser build is ever downloaded. Without it the browser tests skip on a developer's
machine and fail under ``CI``, where a skipped browser test would hide a broken setup.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

#: The installed browser, Debian's package first.
CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
#: Widths the page must stay readable at: a phone and a laptop.
NARROW, WIDE = 420, 1280


def require_chromium() -> str:
    """The browser's path; skips the test without one (or without Playwright), except under CI
    where it fails."""
    if CHROMIUM is not None and importlib.util.find_spec("playwright") is not None:
        return CHROMIUM
    why = (
        "Chromium or Playwright is not installed "
        "(scripts/setup.sh installs Debian's chromium and the dev extras)"
    )
    if os.environ.get("CI"):
        pytest.fail(why + ": under CI the browser test must run")
    pytest.skip(why + ": the page is checked without a browser only")


class Tab:
    """One page in the browser with the few helpers the tests use: evaluate, wait, screenshot."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page, self.shots = page, shots

    async def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        return await self.page.evaluate(expression)

    async def until(self, expression: str, timeout_s: float = 10.0) -> Any:
        """Polls ``expression`` until it is truthy and returns its value (fails at the deadline).

        Polled from here rather than with ``wait_for_function``, which evaluates a string inside
        the page and so is refused by the page's CSP (no ``unsafe-eval``), as it should be.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.js(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for: {expression}"
            await asyncio.sleep(0.1)

    async def shot(self, name: str) -> Path:
        """A full-page screenshot into the test's tmp dir (never committed)."""
        path = self.shots / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@asynccontextmanager
async def open_tab(tmp_path: Path, url: str, *, width: int = WIDE) -> AsyncIterator[Tab]:
    """Launches headless Chromium on ``url`` and closes it (and its processes) afterwards."""
    from playwright.async_api import async_playwright

    executable = require_chromium()
    shots = tmp_path / "screenshots"
    shots.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            context = await browser.new_context(
                viewport={"width": width, "height": 900}, accept_downloads=True
            )
            page = await context.new_page()
            await page.goto(url)
            yield Tab(page, shots)
        finally:
            await browser.close()

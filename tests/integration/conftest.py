"""Fixtures the integration tests share from tests/support/."""

from tests.support.kannel import kannel  # noqa: F401  (fixture: a real Kannel, or a loud skip)

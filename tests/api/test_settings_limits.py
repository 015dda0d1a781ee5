"""API limits come from ``BROADCASTER_API_*`` like every other setting (issue 16)."""

from __future__ import annotations

import os
from dataclasses import fields

import pytest
from pydantic import ValidationError

from broadcaster.api.context import CTX
from broadcaster.api.limits import ApiLimits
from broadcaster.config import Settings


async def test_rate_limit_set_from_the_environment_holds_in_a_running_app(make_api, monkeypatch):
    monkeypatch.setenv("BROADCASTER_API_RATE_PER_S", "0.01")
    monkeypatch.setenv("BROADCASTER_API_RATE_BURST", "2")
    api = await make_api(limits=None)  # the app reads its limits from the settings
    assert api.client.app[CTX].settings.api_rate_burst == 2
    statuses = [(await api.call("GET", "/v1/codes")).status for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_page_max_set_from_the_environment_bounds_list_pages(make_api, monkeypatch):
    monkeypatch.setenv("BROADCASTER_API_PAGE_MAX", "7")
    monkeypatch.setenv("BROADCASTER_API_RATE_BURST", "1000")
    api = await make_api(limits=None)
    assert (await api.call("GET", "/v1/broadcasts?limit=7")).status == 200
    resp = await api.call("GET", "/v1/broadcasts?limit=8")
    assert resp.status == 400 and "7" in (await resp.text())


def test_every_limit_has_a_setting_with_the_same_default(monkeypatch):
    for name in list(os.environ):
        if name.startswith("BROADCASTER_API_"):
            monkeypatch.delenv(name)
    settings = Settings(database_url="sqlite://")
    for f in fields(ApiLimits):
        assert hasattr(settings, f"api_{f.name}"), f"BROADCASTER_API_{f.name.upper()} is missing"
        if f.name != "upload_max_bytes":  # 0 there means "max_file_bytes"
            assert getattr(settings, f"api_{f.name}") == f.default, f.name
    limits = ApiLimits.from_settings(settings)
    assert limits == ApiLimits(upload_max_bytes=settings.max_file_bytes)


def test_a_bad_limit_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("BROADCASTER_API_RATE_BURST", "0")
    with pytest.raises(ValidationError, match="api_rate_burst"):
        Settings(database_url="sqlite://")

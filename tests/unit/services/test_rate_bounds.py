"""Rates enter bounded, MIN_MPS..MAX_MPS messages/s, wherever they enter (issue 11 item 8)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from broadcaster.config import Settings
from broadcaster.constants import MAX_MPS, MIN_MPS
from broadcaster.errors import InputError
from broadcaster.providers.accounts import AccountConfigError, load_accounts
from broadcaster.services.codes import validate_code
from broadcaster.services.sending import bounded_rate

# (mps, accepted)
RATES = [
    (None, True),
    (MIN_MPS, True),
    (1.0, True),
    (MAX_MPS, True),
    (1e-300, False),
    (0.009, False),
    (0.0, False),
    (-1.0, False),
    (100_000.5, False),
    (float("inf"), False),
    (float("nan"), False),
]


@pytest.mark.parametrize(("mps", "accepted"), RATES)
def test_validate_code_bounds_the_rate(mps: float | None, accepted: bool) -> None:
    if accepted:
        validate_code("55501", "short", mps)
        return
    with pytest.raises(InputError, match=r"mps must be from 0.01 to 100000 messages/s"):
        validate_code("55501", "short", mps)


@pytest.mark.parametrize(("mps", "accepted"), [r for r in RATES if r[0] is not None])
@pytest.mark.parametrize("field", ["long_code_mps", "short_code_mps", "alphanumeric_mps"])
def test_settings_bound_the_default_rates(field: str, mps: float, accepted: bool) -> None:
    if accepted:
        assert getattr(Settings(**{field: mps}), field) == mps
        return
    with pytest.raises(ValidationError):
        Settings(**{field: mps})


@pytest.mark.parametrize(("mps", "accepted"), [r for r in RATES if r[0] is not None])
def test_account_ceilings_are_bounded(mps: float, accepted: bool) -> None:
    if accepted:
        assert Settings(account_mps={"a": mps}).account_mps == {"a": mps}
    else:
        with pytest.raises(ValidationError):
            Settings(account_mps={"a": mps})
    account = {"provider": "kannel", "base_url": "http://k:13013", "username": "u"}
    raw = json.dumps({"k": {**account, "password": "p", "mps": mps}})
    if accepted:
        assert load_accounts(raw)["k"].mps == mps
        return
    with pytest.raises(AccountConfigError, match=r"^account 'k': mps: "):
        load_accounts(raw)


@pytest.mark.parametrize(
    ("stored", "used"),
    [
        (1e-300, MIN_MPS),
        (0.0, MIN_MPS),
        (-3.0, MIN_MPS),
        (float("nan"), MIN_MPS),
        (5.0, 5.0),
        (1e300, MAX_MPS),
    ],
)
def test_a_stored_rate_is_bounded_before_it_reaches_a_bucket(stored: float, used: float) -> None:
    assert bounded_rate(stored) == used

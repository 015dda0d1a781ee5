"""Sender codes: the numbers and names broadcasts are sent from, each with its own rate."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from broadcaster.config import Settings
from broadcaster.constants import MAX_MPS, MIN_MPS
from broadcaster.errors import InputError, NotFound
from broadcaster.store import codes_repo

KINDS = ("long", "short", "alphanumeric")
_ALNUM = re.compile(r"^[A-Za-z0-9 ]{1,11}$")
_DIGITS = re.compile(r"^\+?[0-9]{3,15}$")  # ASCII digits only: "١٢٣٤٥" is not a code


@dataclass(frozen=True, slots=True)
class SenderCode:
    code: str
    kind: str
    mps: float  # effective messages (segments) per second
    mps_configured: float | None
    provider: str
    account: str | None

    @property
    def route_key(self) -> str:
        """Which adapter sends for this code: its account when it names one, else its provider."""
        return self.account or self.provider

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "kind": self.kind,
            "mps": self.mps,
            "mps_configured": self.mps_configured,
            "provider": self.provider,
            "account": self.account,
        }


def default_mps(kind: str, settings: Settings) -> float:
    """The seeds' defaults: long codes 1 msg/s, short codes higher, configurable per code."""
    return {
        "long": settings.long_code_mps,
        "short": settings.short_code_mps,
        "alphanumeric": settings.alphanumeric_mps,
    }[kind]


def to_sender_code(row: dict[str, Any], settings: Settings) -> SenderCode:
    return SenderCode(
        code=row["code"],
        kind=row["kind"],
        mps=row["mps"] if row["mps"] is not None else default_mps(row["kind"], settings),
        mps_configured=row["mps"],
        provider=row["provider"] or settings.provider,
        account=row["account"],
    )


def account_ceilings(settings: Settings) -> dict[str, float]:
    """Account-wide rate ceilings: from the gateway accounts, then explicit overrides."""
    from broadcaster.providers.accounts import account_mps, cached_accounts

    return {**account_mps(cached_accounts(settings.accounts)), **settings.account_mps}


def validate_code(code: str, kind: str, mps: float | None) -> None:
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "alphanumeric" and not _ALNUM.fullmatch(code):
        raise InputError(f"alphanumeric sender {code!r} must be 1-11 letters, digits or spaces")
    if kind != "alphanumeric" and not _DIGITS.fullmatch(code):
        raise InputError(f"{kind} code {code!r} must be 3-15 digits")
    if mps is not None and not MIN_MPS <= mps <= MAX_MPS:
        raise InputError(f"mps must be from {MIN_MPS:g} to {MAX_MPS:g} messages/s, not {mps:g}")


def add_code(
    engine: Engine,
    settings: Settings,
    code: str,
    kind: str,
    *,
    mps: float | None = None,
    provider: str | None = None,
    account: str | None = None,
    workspace: str = codes_repo.DEFAULT_WORKSPACE,
) -> SenderCode:
    """Add a sender code, or update its kind and rate when it exists (idempotent for scripts)."""
    validate_code(code, kind, mps)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        found = codes_repo.find_code(conn, ws, code)
        values = {"kind": kind, "mps": mps, "provider": provider, "account": account}
        if found:
            codes_repo.update_code(conn, found["id"], **values)
            row = codes_repo.find_code(conn, ws, code)
        else:
            row = codes_repo.insert_code(conn, ws, code=code, **values)
    assert row is not None
    return to_sender_code(row, settings)


def list_codes(
    engine: Engine, settings: Settings, workspace: str = codes_repo.DEFAULT_WORKSPACE
) -> list[SenderCode]:
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        return [to_sender_code(r, settings) for r in codes_repo.list_codes(conn, ws)]


def get_code(engine: Engine, settings: Settings, code: str, workspace_id: int) -> SenderCode:
    with engine.connect() as conn:
        row = codes_repo.find_code(conn, workspace_id, code)
    if row is None:
        raise NotFound(
            f"sender code {code!r} is not registered (add it: broadcaster codes add {code} --kind …)"
        )
    return to_sender_code(row, settings)

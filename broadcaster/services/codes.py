"""Sender codes: the numbers and names broadcasts are sent from, each with its own rate."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from broadcaster.config import Settings
from broadcaster.constants import MAX_MPS, MIN_MPS
from broadcaster.errors import Conflict, InputError, NotFound
from broadcaster.store import codes_repo
from broadcaster.store.db import Connection, Engine, IntegrityError

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


def owner_key(code: str) -> str:
    """The key a code is owned under: ``+55501`` is ``55501``, ``ACME`` is ``acme``.

    So that a workspace cannot take a code another owns by writing it another way.
    """
    return code.lstrip("+").casefold()


def _configured(settings: Settings) -> str:
    """Which providers and accounts a sender code may name, for error messages."""
    from broadcaster.providers.registry import BUILT_IN_PROVIDERS

    accounts = _accounts(settings)
    listed = ", ".join(f"{n} ({a.provider})" for n, a in sorted(accounts.items())) or "none"
    return (
        f"configured providers: {', '.join(BUILT_IN_PROVIDERS)}; "
        f"accounts (BROADCASTER_ACCOUNTS): {listed}"
    )


def _accounts(settings: Settings) -> dict[str, Any]:
    from broadcaster.providers.accounts import AccountConfigError, cached_accounts

    try:
        return dict(cached_accounts(settings.accounts))
    except AccountConfigError as exc:
        raise InputError(f"BROADCASTER_ACCOUNTS: {exc}") from None


def check_route(settings: Settings, provider: str | None, account: str | None) -> None:
    """Refuse a provider or account that cannot send, naming the configured ones.

    A code with an unknown route is accepted by nothing downstream: every beat tick and every
    chunk would fail on it (``unknown provider 'kanel'``). The built-in providers send on their
    own; kannel, vonage and opentext need an account in ``BROADCASTER_ACCOUNTS``.
    """
    from broadcaster.providers.registry import BUILT_IN_PROVIDERS

    accounts = _accounts(settings)
    if account is not None:
        found = accounts.get(account)
        if found is None:
            raise InputError(f"unknown account {account!r}; {_configured(settings)}")
        if provider is not None and provider not in (found.provider, account):
            raise InputError(
                f"account {account!r} is a {found.provider} account, not {provider!r}; "
                f"{_configured(settings)}"
            )
        return
    effective = provider or settings.provider
    if effective in BUILT_IN_PROVIDERS or effective in accounts:
        return
    of_kind = sorted(n for n, a in accounts.items() if a.provider == effective)
    if of_kind:
        raise InputError(
            f"provider {effective!r} sends only through an account: add --account "
            f"{' or '.join(of_kind)}; {_configured(settings)}"
        )
    raise InputError(f"unknown provider {effective!r}; {_configured(settings)}")


def _owner_name(conn: Connection, owner_id: int) -> str:
    return codes_repo.workspace_name(conn, owner_id) or f"#{owner_id}"


def _may_register(conn: Connection, code: str, ws: int, workspace: str) -> None:
    """Claim an unowned code for ``ws``; refuse one another workspace owns or shares out."""
    key = owner_key(code)
    owner = codes_repo.code_owner(conn, key)
    if owner is None:
        codes_repo.claim_code(conn, key, ws)
        return
    if owner == ws:
        return
    name = _owner_name(conn, owner)
    if codes_repo.is_shared_with(conn, key, ws):
        raise Conflict(
            f"sender code {code!r} belongs to workspace {name!r} and is shared with "
            f"{workspace!r}: its kind, rate and route are the owner's "
            f"(change them with: broadcaster codes add {code} --workspace {name} …)"
        )
    raise Conflict(
        f"sender code {code!r} belongs to workspace {name!r}; only an operator can share it: "
        f"broadcaster codes share {code} --workspace {workspace}"
    )


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
    """Add a sender code, or update its kind and rate when it exists (idempotent for scripts).

    A code string belongs to the first workspace that registers it (``Conflict`` for any other
    unless an operator shares it); the owner's changes apply to every workspace it is shared
    with, because a shared code is one code at the gateway with one rate.
    """
    validate_code(code, kind, mps)
    check_route(settings, provider, account)
    try:
        with engine.begin() as conn:
            ws = codes_repo.ensure_workspace(conn, workspace)
            _may_register(conn, code, ws, workspace)
            found = codes_repo.find_code(conn, ws, code)
            values = {"kind": kind, "mps": mps, "provider": provider, "account": account}
            if found:
                codes_repo.update_code(conn, found["id"], **values)
            else:
                codes_repo.insert_code(conn, ws, code=code, **values)
            codes_repo.update_shared_copies(conn, code, ws, owner_key(code), **values)
            row = codes_repo.find_code(conn, ws, code)
    except IntegrityError:  # a concurrent registration claimed it between look-up and insert
        raise Conflict(
            f"sender code {code!r} was registered by a concurrent request; run it again to see "
            "by whom (only an operator can share a code: broadcaster codes share)"
        ) from None
    assert row is not None
    return to_sender_code(row, settings)


def share_code(
    engine: Engine, settings: Settings, code: str, workspace: str
) -> tuple[SenderCode, str]:
    """Let ``workspace`` send from ``code`` too (operator only); returns the code and its owner.

    The shared workspace gets a copy of the owner's registration (kind, rate, route), kept in
    step by the owner's ``codes add``; both send through one bucket, the code's own.
    """
    with engine.begin() as conn:
        key = owner_key(code)
        owner = codes_repo.code_owner(conn, key)
        source = codes_repo.find_code(conn, owner, code) if owner is not None else None
        if owner is None or source is None:
            raise NotFound(
                f"sender code {code!r} has no owner yet: register it in its workspace first "
                f"(broadcaster codes add {code} --kind … --workspace OWNER)"
            )
        ws = codes_repo.ensure_workspace(conn, workspace)
        name = _owner_name(conn, owner)
        if ws == owner:
            raise InputError(f"workspace {workspace!r} owns sender code {code!r} already")
        codes_repo.add_share(conn, key, ws)
        values = {k: source[k] for k in ("kind", "mps", "provider", "account")}
        found = codes_repo.find_code(conn, ws, code)
        if found:
            codes_repo.update_code(conn, found["id"], **values)
        else:
            codes_repo.insert_code(conn, ws, code=code, **values)
        row = codes_repo.find_code(conn, ws, code)
    assert row is not None
    return to_sender_code(row, settings), name


def may_use(conn: Connection, workspace_id: int, code: str) -> bool:
    """Whether ``workspace_id`` may send from ``code``: it owns it, or it is shared with it.

    A code with no owner on record (a row written by hand) stays usable by its own workspace.
    """
    key = owner_key(code)
    owner = codes_repo.code_owner(conn, key)
    return (
        owner is None or owner == workspace_id or codes_repo.is_shared_with(conn, key, workspace_id)
    )


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


@dataclass(frozen=True, slots=True)
class RemovedCode:
    """What ``codes remove`` did: the code, and how many workspaces it was shared with lost it."""

    code: str
    removed: bool
    shares_removed: int


def remove_code(
    engine: Engine, code: str, workspace: str = codes_repo.DEFAULT_WORKSPACE
) -> RemovedCode:
    """Remove a sender code from ``workspace``; NotFound when the workspace has no such code.

    The owner removing it removes it for every workspace it shares it with (one code at the
    gateway) and frees the code for anyone to register; a workspace it is shared with removes
    only its own use of it. Refused (Conflict) while a broadcast that is not finished sends from
    it in any workspace that would lose it.
    """
    key = owner_key(code)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        if codes_repo.find_code(conn, ws, code) is None:
            raise NotFound(f"sender code {code!r} is not registered in workspace {workspace!r}")
        owner = codes_repo.code_owner(conn, key)
        losing = [ws]
        if owner == ws:
            losing += [w for w in codes_repo.shared_workspace_ids(conn, key) if w != ws]
        user = codes_repo.in_use(conn, losing, code)
        if user is not None:
            bid, status, user_ws = user
            # Another workspace's broadcast is not named: its ids are that workspace's own.
            which = (
                f"broadcast {bid} ({status}), which is not finished"
                if user_ws == ws
                else "a broadcast that is not finished in a workspace it is shared with"
            )
            raise Conflict(
                f"sender code {code!r} is used by {which}; stop it (or wait for it to end) first"
            )
        codes_repo.delete_code(conn, losing, code, key)
        if owner == ws:
            codes_repo.release_code(conn, key)
    return RemovedCode(code=code, removed=True, shares_removed=len(losing) - 1)

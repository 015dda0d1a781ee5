"""Gateway accounts: which gateway, where, with which credentials, at what account-wide rate.

Accounts come as one JSON object, name → fields (the lead's settings read it from
``BROADCASTER_ACCOUNTS``)::

    {"kannel-main": {"provider": "kannel", "base_url": "http://kannel:13013",
                     "username": "broadcaster", "password": "…", "mps": 100,
                     "extra": {"smsc": "operator-a"}},
     "kpn":         {"provider": "vonage", "client_id": "…", "client_secret": "…"},
     "opentext-eu": {"provider": "opentext", "base_url": "https://api.eu.cloudmessaging.opentext.com",
                     "username": "…", "password": "…", "extra": {"billing_code": "PROMO"}}}

Secrets (``password``, ``api_key``, ``api_secret``, ``client_secret``, ``dlr_secret``) are ``SecretStr``: a repr,
a log line or a validation error shows ``**********``, never the value. ``extra`` holds the
few provider-specific knobs in ``EXTRA_KEYS`` (an unknown key is refused: typos surface at
start-up, not as a silently ignored setting); it is not secret.

``build_account_provider`` turns an account into its adapter for kannel, vonage and opentext;
for messangi and simulator it returns None (the registry builds those itself).
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from broadcaster.constants import MAX_MPS, MIN_MPS
from broadcaster.providers.base import Provider
from broadcaster.providers.http import HttpOptions
from broadcaster.providers.kannel import KannelProvider
from broadcaster.providers.opentext import OpenTextProvider
from broadcaster.providers.vonage import KPN_BASE_URL, KPN_TOKEN_URL, VonageProvider

ProviderName = Literal["messangi", "simulator", "kannel", "vonage", "opentext"]

#: Fields each provider cannot do without.
REQUIRED: dict[str, tuple[str, ...]] = {
    "kannel": ("base_url", "username", "password"),
    "vonage": ("client_id", "client_secret"),
    "opentext": ("base_url", "username", "password"),
    "messangi": ("base_url", "api_key"),
    "simulator": (),
}
#: ``extra`` keys each adapter understands (None: not checked here, the registry reads them).
EXTRA_KEYS: dict[str, frozenset[str] | None] = {
    "kannel": frozenset({"smsc", "dlr_mask", "max_segments", "concurrency"}),
    "vonage": frozenset({"send_path", "token_margin_s", "concurrency"}),
    "opentext": frozenset(
        {
            "billing_code",
            "customer_reference",
            "max_destinations_per_job",
            "international_prefix",
            "concurrency",
        }
    ),
    "messangi": None,
    "simulator": None,
}


class AccountConfigError(ValueError):
    """``BROADCASTER_ACCOUNTS`` cannot be read; the message names the account and field, never a secret."""


class AccountConfig(BaseModel):
    """One gateway account."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    #: The account's name (the key in ``BROADCASTER_ACCOUNTS``; sender codes name it).
    name: str
    provider: ProviderName
    #: API base: Kannel's sendsms URL (``http://host:13013``), the Vonage SMS base, OpenText's host.
    base_url: str | None = None
    #: Kannel sendsms-user, OpenText Basic auth.
    username: str | None = None
    password: SecretStr | None = None
    #: Messangi bearer key (and any key/secret pair a future adapter needs).
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    #: OAuth2 client credentials (Vonage/KPN).
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str | None = None
    #: The secret its receipts must carry (``/v1/dlr/<account>?secret=…``); unset: the shared
    #: ``BROADCASTER_DLR_SECRET``. One per account, so one gateway cannot post another's receipts.
    dlr_secret: SecretStr | None = None
    #: Account-wide ceiling in messages (segments) per second, across all its sender codes.
    mps: Annotated[float, Field(ge=MIN_MPS, le=MAX_MPS)] | None = None
    #: Provider-specific knobs (``EXTRA_KEYS``); not secret.
    extra: dict[str, Any] = {}

    @model_validator(mode="after")
    def _complete(self) -> AccountConfig:
        missing = [f for f in REQUIRED[self.provider] if getattr(self, f) in (None, "")]
        if missing:
            raise ValueError(f"{self.provider} account needs {', '.join(missing)}")
        allowed = EXTRA_KEYS[self.provider]
        unknown = sorted(set(self.extra) - allowed) if allowed is not None else []
        if unknown:
            raise ValueError(
                f"unknown extra for {self.provider}: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(allowed or ()))})"
            )
        return self

    def secret(self, field: str) -> str:
        """The plain value of a secret field ('' when unset); for adapters only."""
        value = getattr(self, field)
        return value.get_secret_value() if isinstance(value, SecretStr) else ""


def load_accounts(raw_json: str | None) -> dict[str, AccountConfig]:
    """Accounts from a JSON object name → fields; empty or unset means none.

    ``name`` inside the fields may be left out (the key is the name) but must match when given.
    Raises ``AccountConfigError`` naming the account and field, never echoing a value.
    """
    if raw_json is None or not raw_json.strip():
        return {}
    try:
        raw = json.loads(raw_json)
    except json.JSONDecodeError as exc:
        raise AccountConfigError(
            f"accounts: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(raw, dict):
        raise AccountConfigError("accounts: expected a JSON object of name → account")
    accounts: dict[str, AccountConfig] = {}
    for name, fields in raw.items():
        if not isinstance(fields, dict):
            raise AccountConfigError(f"account {name!r}: expected an object")
        if fields.get("name", name) != name:
            raise AccountConfigError(f"account {name!r}: its name field says {fields['name']!r}")
        try:
            accounts[name] = AccountConfig(**{**fields, "name": name})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'account'}: {e['msg']}"
                for e in exc.errors()
            )
            raise AccountConfigError(f"account {name!r}: {problems}") from None
    return accounts


@lru_cache(maxsize=8)
def cached_accounts(raw_json: str | None) -> dict[str, AccountConfig]:
    """``load_accounts`` parsed once per distinct setting (it is read on every chunk)."""
    return load_accounts(raw_json)


def account_mps(accounts: dict[str, AccountConfig]) -> dict[str, float]:
    """Account-wide ceilings, name → messages per second, for accounts that set one."""
    return {name: a.mps for name, a in accounts.items() if a.mps is not None}


def build_account_provider(
    account: AccountConfig,
    *,
    timeout_s: float,
    max_attempts: int,
    concurrency: int,
    deadline_s: float,
    callback_url: str | None = None,
    name: str | None = None,
) -> Provider | None:
    """The adapter for ``account``, or None for messangi/simulator (the registry builds those).

    ``callback_url`` is where receipts go when a message names none. ``name`` is the adapter's
    ``name`` (default: the provider type, "kannel"…; pass the account name when several
    accounts of one type need telling apart). An ``extra.concurrency`` lowers ``concurrency``
    for this account (a small Kannel, say), never raises it.
    """
    extra = dict(account.extra)
    concurrency = min(concurrency, int(extra.pop("concurrency", concurrency)))
    options = HttpOptions(
        timeout_s=timeout_s,
        max_attempts=max_attempts,
        concurrency=concurrency,
        deadline_s=deadline_s,
        callback_url=callback_url,
        name=name or account.provider,
    )
    if account.provider == "kannel":
        assert account.base_url and account.username
        return KannelProvider(
            account.base_url,
            account.username,
            account.secret("password"),
            options=options,
            **extra,
        )
    if account.provider == "vonage":
        assert account.client_id
        return VonageProvider(
            account.base_url or KPN_BASE_URL,
            account.client_id,
            account.secret("client_secret"),
            token_url=account.token_url or KPN_TOKEN_URL,
            options=options,
            **extra,
        )
    if account.provider == "opentext":
        assert account.base_url and account.username
        return OpenTextProvider(
            account.base_url,
            account.username,
            account.secret("password"),
            options=replace(options, callback_url=None),  # polled: it takes no receipt URL
            **extra,
        )
    return None

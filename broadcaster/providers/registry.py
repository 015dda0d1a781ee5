"""Which adapter sends: ``build_provider(settings)``.

The built-in carrier simulator speaks the Messangi API, so "simulator" is the Messangi adapter
pointed at the simulator (``messangi_base_url`` defaults to it, ``http://127.0.0.1:8025/v1``).
"""

from __future__ import annotations

from urllib.parse import quote

from broadcaster.config import Settings
from broadcaster.providers.base import Provider
from broadcaster.providers.http import HttpOptions
from broadcaster.providers.messangi import MessangiProvider

#: Path of our API that receives a gateway's delivery receipts (``broadcaster/api/receipts.py``).
RECEIPT_PATH = "/v1/dlr/{provider}"
#: Providers ``build_provider`` builds without an account (the others need one in
#: ``BROADCASTER_ACCOUNTS``).
BUILT_IN_PROVIDERS = ("messangi", "simulator")
#: Share of the lease a whole chunk may spend sending, leaving time to store the results.
LEASE_SHARE_FOR_SENDING = 0.8


def receipt_secret(settings: Settings, key: str) -> str:
    """The secret receipts to ``/v1/dlr/<key>`` must carry: the account's own, else the shared one."""
    from broadcaster.providers.accounts import cached_accounts

    account = cached_accounts(settings.accounts).get(key)
    if account is not None and account.dlr_secret is not None:
        return account.secret("dlr_secret")
    return settings.dlr_secret


def receipt_callback_url(settings: Settings, provider: str) -> str:
    """Where gateways post receipts; the route's secret rides along so strangers cannot post."""
    base = settings.public_url.rstrip("/")
    secret = quote(receipt_secret(settings, provider), safe="")
    return f"{base}{RECEIPT_PATH.format(provider=provider)}?secret={secret}"


def send_deadline_s(settings: Settings) -> float:
    """One message's send deadline, so that its result is written well inside its lease.

    A message is claimed right before its own request starts (``services/inflight.py``), so the
    deadline runs from its claim: a share of the lease, leaving time to write the result.
    """
    return settings.lease_s * LEASE_SHARE_FOR_SENDING


def http_options(settings: Settings, key: str) -> HttpOptions:
    """The HTTP adapters' shared options for the routing key ``key``, from the settings: one
    place for the timeouts, attempts, concurrency, deadline and receipt URL of every gateway."""
    return HttpOptions(
        timeout_s=settings.gateway_timeout_s,
        max_attempts=settings.gateway_max_attempts,
        concurrency=settings.send_concurrency,
        deadline_s=send_deadline_s(settings),
        callback_url=receipt_callback_url(settings, key),
        name=key,
    )


def build_named_provider(settings: Settings, key: str) -> Provider:
    """The adapter behind a routing key: a gateway account's name, or a built-in provider name.

    Sender codes that name an account (``codes add … --account kannel-main``) send through that
    account's gateway, and its receipts come back to ``/v1/dlr/<account>``.
    """
    from broadcaster.providers.accounts import build_account_provider, cached_accounts

    accounts = cached_accounts(settings.accounts)
    if key in accounts:
        account = accounts[key]
        if account.provider in ("simulator", "messangi"):
            update = {
                "provider": account.provider,
                "messangi_base_url": account.base_url or settings.messangi_base_url,
            }
            if account.api_key is not None:
                update["messangi_api_key"] = account.secret("api_key")
            return build_provider(settings.model_copy(update=update), name=key)
        o = http_options(settings, key)
        built = build_account_provider(
            account,
            timeout_s=o.timeout_s,
            max_attempts=o.max_attempts,
            concurrency=settings.send_concurrency,
            deadline_s=o.deadline_s,
            callback_url=o.callback_url,
            name=key,
        )
        assert built is not None
        return built
    return build_provider(settings.model_copy(update={"provider": key}))


def build_provider(settings: Settings, name: str | None = None) -> Provider:
    """The adapter ``settings.provider`` names."""
    if settings.provider in BUILT_IN_PROVIDERS:
        key = name or settings.provider
        return MessangiProvider(
            settings.messangi_base_url,
            settings.messangi_api_key,
            options=http_options(settings, key),
        )
    raise ValueError(f"unknown provider {settings.provider!r}")

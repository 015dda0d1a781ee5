"""Keep client callback URLs out of our own network (SSRF guard).

A client names the URL; we POST to it from inside our network. Left unguarded, a callback URL of
``http://169.254.169.254/…`` or ``http://10.0.0.5:6379/`` would make broadcaster a proxy into the
cloud metadata service or an internal Redis. So a callback URL must be http(s), carry no
credentials, and every address its host resolves to must be public.

Three checks, from cheapest to strongest:

* :func:`check_callback_url_static` — no I/O: scheme, credentials, literal addresses, and names
  that always mean this machine (``localhost``). Safe inside a database transaction.
* :func:`check_callback_url` / :func:`check_callback_url_async` — resolve the host
  (``getaddrinfo``) and refuse it if *any* address is not public.
* :class:`GuardedResolver` — the resolver of the callback HTTP session: the addresses aiohttp
  connects to are the ones it checked, so a name that re-binds to ``127.0.0.1`` between the check
  and the connection (DNS rebinding) is refused at connect time too.

Address rules are an explicit table rather than ``ipaddress``'s ``is_global``, whose answers
changed between Python releases (3.11 calls multicast and 6to4-wrapped loopback "global").
Addresses that embed an IPv4 address (IPv4-mapped, IPv4-translated, NAT64, 6to4) are judged by
the embedded one; their prefixes are in the table too, so an embedding the judgement does not
recognise is refused rather than taken as public.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from broadcaster.errors import InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})
#: Column width of ``callback_deliveries.url``.
MAX_URL_CHARS = 500
#: Names that mean this machine without asking DNS (RFC 6761).
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
#: (network, why it is refused), first match wins. Everything not listed is public.
REFUSED_NETWORKS: tuple[tuple[_V4 | _V6, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "shared (carrier-grade NAT)"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "reserved"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.88.99.0/24"), "reserved"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),  # includes 255.255.255.255
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("::/96"), "reserved"),  # deprecated IPv4-compatible addresses
    (_V6("::ffff:0:0/96"), "IPv4-mapped"),  # judged by the IPv4 address inside first
    (_V6("::ffff:0:0:0/96"), "IPv4-translated"),  # SIIT (RFC 2765); likewise
    (_V6("64:ff9b::/96"), "IPv4-embedding (NAT64)"),  # likewise
    (_V6("2002::/16"), "IPv4-embedding (6to4)"),  # likewise
    (_V6("64:ff9b:1::/48"), "private"),  # local-use NAT64
    (_V6("100::/64"), "reserved"),  # discard-only
    (_V6("2001::/23"), "reserved"),  # IETF protocol assignments, Teredo
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("3fff::/20"), "documentation"),
    (_V6("fc00::/7"), "private"),  # unique local
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "private"),  # deprecated site-local
    (_V6("ff00::/8"), "multicast"),
)
_NAT64 = _V6("64:ff9b::/96")
_TRANSLATED = _V6("::ffff:0:0:0/96")


class RefusedAddress(OSError):
    """A callback host resolved to an address that is not public (raised inside aiohttp)."""


def address_problem(address: IPAddress | str) -> str | None:
    """Why ``address`` must not be contacted ("loopback", "private"…), or None if it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = address_problem(embedded)
            return f"IPv4-embedding {inner}" if inner else None
    for network, why in REFUSED_NETWORKS:
        if ip.version == network.version and ip in network:
            return why
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


def _parse(url: str) -> yarl.URL:
    """The URL as aiohttp will read it (yarl), or InputError naming what is wrong."""
    if not isinstance(url, str) or not url:
        raise InputError("callback URL is empty")
    if len(url) > MAX_URL_CHARS:
        raise InputError(f"callback URL is longer than {MAX_URL_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InputError(f"callback URL {url!r} contains whitespace or control characters")
    try:
        parsed = yarl.URL(url)
    except ValueError as exc:
        raise InputError(f"callback URL {url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise InputError(f"callback URL {url!r} must be http or https")
    if parsed.user is not None or parsed.password is not None:
        raise InputError(f"callback URL {url!r} must not carry credentials")
    if not parsed.host:
        raise InputError(f"callback URL {url!r} has no host")
    if parsed.port is None or not 0 < parsed.port < 65536:
        raise InputError(f"callback URL {url!r} has no valid port")
    return parsed


def _literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, including legacy forms (``127.1``, ``0x7f.1``, ``2130706433``)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _refuse(url: str, host: str, address: Any, why: str) -> InputError:
    where = host if str(address) == host else f"{host} ({address})"
    return InputError(f"callback URL {url!r} is refused: {where} is a {why} address")


def check_callback_url_static(url: str, *, allow_private: bool) -> yarl.URL:
    """Every check that needs no network; returns the parsed URL. Raises InputError.

    A host that is not an address literal still has to pass :func:`check_callback_url` (or the
    :class:`GuardedResolver`) before anything is sent to it.
    """
    parsed = _parse(url)
    if allow_private:
        return parsed
    host = parsed.host or ""
    literal = _literal(host)
    if literal is not None:
        why = address_problem(literal)
        if why:
            raise _refuse(url, host, literal, why)
    elif host.rstrip(".").lower() in _LOCAL_NAMES or host.rstrip(".").lower().endswith(
        ".localhost"
    ):
        raise _refuse(url, host, host, "loopback")
    return parsed


def _judge(url: str, host: str, addresses: Iterable[str]) -> None:
    seen = False
    for address in addresses:
        seen = True
        why = address_problem(address)
        if why:
            raise _refuse(url, host, address, why)
    if not seen:
        raise InputError(f"callback URL {url!r} is refused: {host} resolves to no address")


def check_callback_url(url: str, *, allow_private: bool) -> None:
    """Refuse ``url`` unless it is http(s), without credentials, and all its addresses are public.

    Resolves the host with ``getaddrinfo`` (blocking). A name that does not resolve raises
    ``socket.gaierror`` (an OSError): that may be temporary, so it is not an InputError.
    """
    parsed = check_callback_url_static(url, allow_private=allow_private)
    if allow_private:
        return
    infos = socket.getaddrinfo(parsed.host, parsed.port, type=socket.SOCK_STREAM)
    _judge(url, parsed.host or "", (str(info[4][0]) for info in infos))


async def check_callback_url_async(url: str, *, allow_private: bool) -> None:
    """:func:`check_callback_url` on the running loop's resolver (does not block the loop)."""
    parsed = check_callback_url_static(url, allow_private=allow_private)
    if allow_private:
        return
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(parsed.host, parsed.port, type=socket.SOCK_STREAM)
    _judge(url, parsed.host or "", (str(info[4][0]) for info in infos))


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses (``RefusedAddress``) any name with a non-public address.

    aiohttp connects only to what its resolver returns, so the addresses checked here are the
    addresses connected to. Address literals in URLs bypass resolvers in aiohttp: those are
    covered by :func:`check_callback_url_static`, and redirects must not be followed.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            why = address_problem(result["host"])
            if why:
                raise RefusedAddress(f"{host} resolves to {result['host']}, a {why} address")
        if not results:
            raise RefusedAddress(f"{host} resolves to no address")
        return results

    async def close(self) -> None:
        await self._inner.close()

"""A TCP relay: a service on loopback, reached from a network namespace the test made.

Worker "hosts" in their own namespaces (tests/integration/test_multi_host.py) see the root
namespace only through their veth pair, while Redis, PostgreSQL and the simulator listen on
127.0.0.1. This relay listens on the root end of each veth and forwards every connection to the
loopback port, so no service is ever bound beyond loopback::

    python -m tests.support.relay 10.231.0.1:6379=127.0.0.1:6379 10.231.0.5:6379=127.0.0.1:6379

It prints ``relay ready`` once every listener is bound, and runs until killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

#: Bytes read per hop: a Redis pipeline or a gateway request fits in one read.
READ_BYTES = 1 << 16


def parse(spec: str) -> tuple[str, int, str, int]:
    """``LISTEN_HOST:PORT=TARGET_HOST:PORT`` → the four parts."""
    listen, target = spec.split("=", 1)
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)
    return lhost, int(lport), thost, int(tport)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close, so each side sees the other's close."""
    try:
        while data := await reader.read(READ_BYTES):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()


def _handler(thost: str, tport: int):  # type: ignore[no-untyped-def]
    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(thost, tport)
        except OSError:
            client_w.transport.abort()
            return
        await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))
        for w in (client_w, upstream_w):
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()

    return relay


async def serve(specs: list[str]) -> None:
    servers = []
    for spec in specs:
        lhost, lport, thost, tport = parse(spec)
        servers.append(await asyncio.start_server(_handler(thost, tport), lhost, lport))
    print("relay ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(sys.argv[1:]))
    else:
        uvloop.run(serve(sys.argv[1:]))


if __name__ == "__main__":
    main()

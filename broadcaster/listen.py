"""Listening sockets for our servers: a busy port is one clear error, never a traceback.

``broadcaster api`` and ``broadcaster simulator`` bind their socket here before building the
application, so a port someone else holds is refused at once, naming it.
"""

from __future__ import annotations

import errno
import socket

from broadcaster.errors import BroadcasterError

#: Pending connections the kernel queues before the server accepts them (aiohttp's default).
BACKLOG = 128


class PortBusy(BroadcasterError):
    """The port asked for is taken (or not ours to bind)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; :class:`PortBusy` when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        reason = (
            "is already in use"
            if exc.errno == errno.EADDRINUSE
            else f"cannot be bound ({exc.strerror})"
        )
        raise PortBusy(
            f"port {port} on {host} {reason}: stop what holds it or pick another --port"
        ) from None
    sock.setblocking(False)
    return sock


def url(host: str, port: int) -> str:
    """``http://host:port`` with an IPv6 host in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

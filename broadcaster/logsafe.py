"""One helper for log lines that print outside data: ``log.warning("… %s", printable(value))``.

A value from a gateway, a client or a file (a receipt's ``externalId``, a request path, a file
name, an error a gateway sent) may hold a newline, a carriage return, an ANSI escape or a
bidirectional override. Printed raw, it forges a line in the log or rewrites what a terminal
shows. :func:`printable` escapes every such character (and the backslash, so an escape cannot be
faked either) and cuts very long values, so one log call always writes one honest line.
"""

from __future__ import annotations

import unicodedata

#: Longest value written to a log line; the rest is counted, not printed.
MAX_LOGGED_CHARS = 200
#: Unicode categories escaped: controls, format characters (bidi overrides, zero-width), line
#: and paragraph separators, surrogates and unassigned code points.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escape(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if unicodedata.category(ch) not in _ESCAPED_CATEGORIES:
        return ch
    point = ord(ch)
    if point <= 0xFF:
        return f"\\x{point:02x}"
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


def printable(value: object, limit: int = MAX_LOGGED_CHARS) -> str:
    """``value`` as text safe for one log line: control characters escaped, at most ``limit``."""
    text = value if isinstance(value, str) else str(value)
    cut = text[:limit]
    out = "".join(_escape(ch) for ch in cut)
    if len(text) > limit:
        out += f"…(+{len(text) - limit} chars)"
    return out

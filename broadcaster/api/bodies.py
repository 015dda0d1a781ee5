"""Reading request input: capped JSON bodies, typed fields, query parameters, cursors.

Every refusal names its field. Strings are refused when they hold NUL characters or lone
surrogates (PostgreSQL and UTF-8 cannot store them) rather than failing deep in the database.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from json.scanner import py_make_scanner  # type: ignore[attr-defined]
from typing import Any

from aiohttp import web
from yarl import URL

from broadcaster.api.body_gate import BIG_BODY_BYTES, GATE_KEY
from broadcaster.api.problems import Problem, bad_request, invalid
from broadcaster.api.state import PRINCIPAL, request_key, state
from broadcaster.constants import ID64_MAX as ID64_MAX  # re-exported for the routes
from broadcaster.constants import INT32_MAX as INT32_MAX
from broadcaster.domain import wire
from broadcaster.domain.wire import encode_cursor as encode_cursor  # re-exported for the routes
from broadcaster.ingest import RecipientRow

RAW_BODY = request_key("raw_body", bytes)
READ_CHUNK_BYTES = 64 * 1024
JSON_TYPES = ("application/json",)
MAX_CALLBACKS = 10
MAX_CALLBACK_CHARS = 500
MAX_PARAM_CHARS = 1_000
MAX_PHONE_CHARS = 64
#: Longest client ``externalId`` / ``clientId`` (seed 001), the column's width.
MAX_CLIENT_ID_CHARS = 100


def too_large(detail: str, field: str | None = None) -> Problem:
    return Problem(413, detail, field=field)


async def read_body(request: web.Request, cap_bytes: int, workspace: str | None = None) -> bytes:
    """The raw body, at most ``cap_bytes`` (413 beyond); read once, kept on the request.

    A body of ``BIG_BODY_BYTES`` or more first takes a slot of the process's
    :class:`~broadcaster.api.body_gate.BodyGate` for the rest of the request (429/503 when
    none is free), charged to ``workspace`` (default: the authenticated key's)."""
    if RAW_BODY in request:
        return request[RAW_BODY]  # type: ignore[no-any-return]
    if request.content_length is not None and request.content_length > cap_bytes:
        raise too_large(
            f"the body is {request.content_length:,} bytes, over the limit of {cap_bytes:,}"
        )
    if workspace is None and PRINCIPAL in request:
        workspace = request[PRINCIPAL].workspace
    gate = request.app[GATE_KEY]
    if (request.content_length or 0) >= BIG_BODY_BYTES:
        await gate.enter(request, workspace)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_chunked(READ_CHUNK_BYTES):
        if total < BIG_BODY_BYTES <= total + len(chunk):  # a body without Content-Length
            await gate.enter(request, workspace)
        total += len(chunk)
        if total > cap_bytes:
            raise too_large(f"the body is over the limit of {cap_bytes:,} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request[RAW_BODY] = body
    return body


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


#: A JSON body of at least this many bytes is parsed on a thread by the pure-Python scanner.
THREAD_PARSE_MIN_BYTES = BIG_BODY_BYTES


#: What a parsed value costs beyond its own size: its slot in the list or object holding it.
_SLOT_BYTES = 8
#: What a new object key costs beyond the string: its (key, value) pair while the object is read
#: and its entry in the dict's table.
_ENTRY_BYTES = 100


class JsonOverBudget(Exception):
    """The parsed values of a body would take more memory than the request may use."""


class _Budget:
    """Bytes the parsed values of one body may still take (``sys.getsizeof`` of each value as
    the parser makes it, plus its slot): the parse stops as soon as they run out."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def spend(self, value: Any, extra: int = _SLOT_BYTES) -> Any:
        self.left -= sys.getsizeof(value) + extra
        if self.left < 0:
            raise JsonOverBudget
        return value


class _CountedKeys(dict[str, str]):
    """The decoder's key memo: each new key of an object is charged to the budget."""

    def __init__(self, budget: _Budget) -> None:
        super().__init__()
        self.budget = budget

    def setdefault(self, key: str, default: str | None = None) -> str:
        if key not in self:
            self.budget.spend(key, _ENTRY_BYTES)
        return super().setdefault(key, key if default is None else default)


def _decoder(*, yielding: bool, budget_bytes: int = 0) -> json.JSONDecoder:
    decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constants)
    if yielding:
        # json's C scanner holds the GIL for the whole document: a 15 MB body of small items
        # stalled the event loop (every tenant's request) for 2-8 s, even on another thread.
        # The Python scanner lets the GIL go every few ms (strings are still read in C).
        if budget_bytes:
            _charge(decoder, _Budget(budget_bytes))
        decoder.scan_once = py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder


def _charge(decoder: json.JSONDecoder, budget: _Budget) -> None:
    """Make every value the (Python) scanner builds pay into ``budget``.

    Tiny JSON makes many big Python objects: 16 MB of ``[]`` were 5.6 million lists (~400 MB),
    of ``1.5`` 4 million Decimals; the body's byte cap alone did not bound the parse.
    """
    parse_object = decoder.parse_object  # type: ignore[attr-defined]
    parse_array = decoder.parse_array  # type: ignore[attr-defined]
    parse_string = decoder.parse_string  # type: ignore[attr-defined]

    def obj(*args: Any) -> tuple[Any, int]:
        value, end = parse_object(*args)
        return budget.spend(value), end

    def array(*args: Any) -> tuple[Any, int]:
        value, end = parse_array(*args)
        return budget.spend(value), end

    def string(*args: Any) -> tuple[str, int]:
        value, end = parse_string(*args)
        return budget.spend(value), end

    decoder.parse_object = obj  # type: ignore[attr-defined]
    decoder.parse_array = array  # type: ignore[attr-defined]
    decoder.parse_string = string  # type: ignore[attr-defined]
    decoder.parse_int = lambda text: budget.spend(int(text))
    decoder.parse_float = lambda text: budget.spend(Decimal(text))
    decoder.memo = _CountedKeys(budget)  # type: ignore[attr-defined]


def _parse(body: bytes, *, yielding: bool, budget_bytes: int = 0) -> Any:
    """As ``json.loads(body)`` (the same encodings), with our decoder (a new one per call: the
    Python scanner's memo is not to be shared between threads); a ``yielding`` parse stops with
    :class:`JsonOverBudget` once its values take more than ``budget_bytes`` (0: no limit)."""
    text = body.decode(json.detect_encoding(body), "surrogatepass")
    return _decoder(yielding=yielding, budget_bytes=budget_bytes).decode(text)


def is_json(request: web.Request) -> bool:
    ct = request.content_type
    return ct in JSON_TYPES or (ct.startswith("application/") and ct.endswith("+json"))


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    """The JSON body (floats as Decimal, so ``10.65`` keeps its digits); {} if optional and empty."""
    body = await read_body(request, state(request).limits.json_max_bytes)
    if optional and not body.strip():
        return {}
    if not is_json(request):
        raise Problem(
            415,
            f"send JSON with Content-Type: application/json, not {request.content_type!r}",
            field="Content-Type",
        )
    limits = state(request).limits
    try:
        if len(body) < THREAD_PARSE_MIN_BYTES:
            return _parse(body, yielding=False)
        loop = asyncio.get_running_loop()
        parse = functools.partial(
            _parse, body, yielding=True, budget_bytes=limits.json_max_memory_bytes
        )
        return await loop.run_in_executor(state(request).parse_pool, parse)
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None
    except JsonOverBudget:
        raise too_large(
            f"the body's JSON values would take over {limits.json_max_memory_bytes:,} bytes "
            "of memory once parsed (json_max_memory_bytes): send fewer or larger items per "
            "request, or upload the recipients as a file"
        ) from None


def _has_nul(text: str) -> bool:
    return "\x00" in text


#: Routes whose query carries a gateway's octets, read by the route itself: Kannel's ``%a`` of a
#: UCS-2 MO is UTF-16BE, NUL octets included ("STOP" is ``%00S%00T%00O%00P``). The MO parser
#: decodes it and refuses a NUL left in any decoded field (``providers/inbound.py``).
RAW_QUERY_PREFIXES = ("/v1/inbound/",)


@web.middleware
async def url_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A URL whose decoded path or query holds a NUL character is 400 before any route sees it.

    Path and query values reach SQL as they are (``DELETE /v1/codes/{code}``, seed 004's
    ``campaignName``...): PostgreSQL cannot store NUL and answered 500; SQLite stored it.
    """
    if _has_nul(request.path):
        raise bad_request("the URL's path must not contain NUL characters (%00)", "url")
    if request.path.startswith(RAW_QUERY_PREFIXES):
        return await handler(request)
    for name, value in request.query.items():
        if _has_nul(name) or _has_nul(value):
            field = name if not _has_nul(name) else "url"
            raise bad_request(f"{field}: must not contain NUL characters (%00)", field)
    return await handler(request)


def clean_str(value: str, field: str) -> str:
    if "\x00" in value:
        raise invalid(f"{field}: must not contain NUL characters", field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"{field}: must be valid Unicode (no lone surrogates)", field) from None
    return value


def scalar_text(value: Any, field: str) -> str:
    """A JSON scalar as the text a template inserts: numbers keep their written digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, str):
        return clean_str(value, field)
    raise invalid(f"{field}: must be a string or a number", field)


class Fields:
    """Typed access to a JSON object (or a multipart form's text fields)."""

    def __init__(self, data: Any, *, form: bool = False) -> None:
        if not isinstance(data, dict):
            raise invalid("the body must be a JSON object")
        self.data, self.form = data, form

    def _get(self, name: str, aliases: Sequence[str]) -> tuple[str, Any]:
        for key in (name, *aliases):
            if key in self.data and self.data[key] is not None:
                return key, self.data[key]
        return name, None

    def text(
        self,
        name: str,
        *,
        required: bool = False,
        max_chars: int = 200,
        min_chars: int = 1,
        aliases: Sequence[str] = (),
    ) -> str | None:
        key, value = self._get(name, aliases)
        if value is None:
            if required:
                raise invalid(f"{name}: is required", name)
            return None
        if not isinstance(value, str):
            raise invalid(f"{key}: must be a string", key)
        clean_str(value, key)
        if len(value.strip()) < min_chars:
            raise invalid(f"{key}: must not be empty", key)
        if len(value) > max_chars:
            raise invalid(f"{key}: must be at most {max_chars} characters", key)
        return value

    def flag(self, name: str, default: bool) -> bool:
        _, value = self._get(name, ())
        if value is None:
            return default
        if self.form and isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if not isinstance(value, bool):
            raise invalid(f"{name}: must be true or false", name)
        return value

    def number(self, name: str, *, minimum: float, maximum: float) -> float | None:
        _, value = self._get(name, ())
        if value is None:
            return None
        if self.form and isinstance(value, str):
            try:
                value = Decimal(value)
            except ArithmeticError:
                raise invalid(f"{name}: must be a number", name) from None
        finite = isinstance(value, int) or (isinstance(value, Decimal) and value.is_finite())
        if isinstance(value, bool) or not finite:
            raise invalid(f"{name}: must be a number", name)
        try:
            number = float(value)
        except OverflowError:
            number = float("inf")
        if not minimum < number <= maximum:
            raise invalid(f"{name}: must be above {minimum:g} and at most {maximum:g}", name)
        return number

    def items(
        self, name: str, *, required: bool = False, max_items: int, aliases: Sequence[str] = ()
    ) -> list[Any]:
        key, value = self._get(name, aliases)
        if value is None:
            if required:
                raise invalid(f"{name}: is required", name)
            return []
        if not isinstance(value, list):
            raise invalid(f"{key}: must be a list", key)
        if len(value) > max_items:
            raise invalid(f"{key}: at most {max_items:,} items in one request", key)
        return value

    def callbacks(self, name: str = "callbacks") -> tuple[str, ...]:
        """Webhook URLs: a list, or one string with commas (as seed 001 writes them)."""
        _, value = self._get(name, ())
        if value is None:
            return ()
        if isinstance(value, str):
            value = [u.strip() for u in value.split(",") if u.strip()]
        if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
            raise invalid(f"{name}: must be a list of URLs or one comma-separated string", name)
        if len(value) > MAX_CALLBACKS:
            raise invalid(f"{name}: at most {MAX_CALLBACKS} URLs", name)
        for url in value:
            clean_str(url, name)
            try:
                parsed = URL(url)
            except (ValueError, TypeError):
                raise invalid(f"{name}: {url[:100]!r} is not a URL", name) from None
            if (
                len(url) > MAX_CALLBACK_CHARS
                or parsed.scheme not in ("http", "https")
                or not parsed.host
            ):
                raise invalid(
                    f"{name}: {url[:100]!r} must be an http(s) URL of at most "
                    f"{MAX_CALLBACK_CHARS} characters",
                    name,
                )
        return tuple(value)


def client_ids(f: Fields) -> tuple[str | None, str | None]:
    """The client's own ``externalId`` and ``clientId`` (seed 001); our message id stays the
    gateway's idempotency key, these are only stored and echoed."""
    return (
        f.text("externalId", max_chars=MAX_CLIENT_ID_CHARS),
        f.text("clientId", max_chars=MAX_CLIENT_ID_CHARS),
    )


def recipient_rows(
    items: list[Any],
    field: str,
    default_ids: tuple[str | None, str | None] = (None, None),
) -> list[RecipientRow]:
    """JSON recipients as rows: ``"+5255…"`` or ``{"to": "+5255…", "params": ["Ana", 10.65]}``.

    ``to:`` (with the colon, as seed 001's batch example spells it), ``phone`` and ``mobile`` are
    read as ``to``. Line n is the n-th recipient, as in an uploaded JSON file. An object's own
    ``externalId`` / ``clientId`` win over the body's (``default_ids``).
    """
    rows = []
    for i, item in enumerate(items):
        at = f"{field}[{i}]"
        params: Any = []
        ids = default_ids
        if isinstance(item, dict):
            own = Fields(item)
            mine = (
                own.text("externalId", max_chars=MAX_CLIENT_ID_CHARS),
                own.text("clientId", max_chars=MAX_CLIENT_ID_CHARS),
            )
            ids = (mine[0] or default_ids[0], mine[1] or default_ids[1])
            phone = next(
                (item[k] for k in ("to", "to:", "phone", "mobile") if item.get(k) is not None), None
            )
            params = item.get("params")
            params = [] if params is None else params
            if phone is None:
                raise invalid(f'{at}: needs a "to" number', at)
            if not isinstance(params, list):
                raise invalid(f"{at}.params: must be a list", f"{at}.params")
        else:
            phone = item
        if (
            isinstance(phone, bool)
            or not isinstance(phone, (str, int))
            or (isinstance(phone, int) and phone < 0)
        ):
            raise invalid(f'{at}: a recipient is a number string or an object with "to"', at)
        phone_text = scalar_text(phone, at)
        if len(phone_text) > MAX_PHONE_CHARS:
            raise invalid(f"{at}: a phone number has at most {MAX_PHONE_CHARS} characters", at)
        values = tuple(scalar_text(p, f"{at}.params[{j}]") for j, p in enumerate(params))
        if any(len(v) > MAX_PARAM_CHARS for v in values):
            raise invalid(
                f"{at}.params: values have at most {MAX_PARAM_CHARS} characters", f"{at}.params"
            )
        rows.append(RecipientRow(i + 1, phone_text.strip(), values, ids[0], ids[1]))
    return rows


# ----------------------------------------------------------------------------- query parameters


def query_int(request: web.Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise bad_request(f"{name}: must be a whole number from {minimum} to {maximum}", name)
    value = int(raw)
    if not minimum <= value <= maximum:
        raise bad_request(f"{name}: must be from {minimum} to {maximum}", name)
    return value


def query_choice(
    request: web.Request, name: str, choices: Sequence[str], default: str | None = None
) -> str | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw not in choices:
        shown = ", ".join(choices)
        raise bad_request(f"{name}: must be one of {shown}", name)
    return raw


def page_limit(request: web.Request) -> int:
    limits = state(request).limits
    return query_int(request, "limit", limits.page_default, 1, limits.page_max)


def decode_cursor(request: web.Request, maxima: tuple[int, ...]) -> tuple[int, ...] | None:
    """The keyset position a previous page returned as ``nextCursor``; 400 for anything else."""
    raw = request.query.get("cursor")
    if raw is None or raw == "":
        return None
    try:
        return wire.decode_cursor(raw, maxima)
    except ValueError:
        raise bad_request("cursor: not a cursor this API returned", "cursor") from None


#: The ``{id}`` of a route: 1 to 18 ASCII digits ("\d" matches "١٢٣", and int() reads it).
ID = r"{id:[0-9]{1,18}}"


def path_id(request: web.Request, maximum: int = ID64_MAX, what: str = "resource") -> int:
    """An id from the path (the routes match 1-18 digits); beyond the column's range: 404."""
    value = int(request.match_info["id"])
    if not 1 <= value <= maximum:
        raise Problem(404, f"{what} {value} does not exist")
    return value

"""Inbound (MO) messages: store each once, act on its keyword, confirm it, forward it.

One transaction stores the message (unique per route and gateway id), updates the suppression
list (STOP adds an ``inbound`` entry, START removes one) and queues the workspace's callback:
a gateway that retries its webhook changes nothing. The confirmation comes after, through the
normal send path: a one-message broadcast from the code that received the keyword, tied to the
inbound message by a unique column, so it is made once however often the MO is processed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from broadcaster.config import Settings
from broadcaster.domain.keywords import Keyword, KeywordLists, classify, reply_text
from broadcaster.domain.wire import to_wire
from broadcaster.errors import BroadcasterError, InputError
from broadcaster.logsafe import printable
from broadcaster.providers.inbound import Inbound
from broadcaster.services.broadcasts import NewBroadcast, create_from_table
from broadcaster.services.client_callbacks import enqueue_inbound
from broadcaster.services.codes import owner_key
from broadcaster.services.messages import one_row_table
from broadcaster.services.views import InboundView
from broadcaster.store import codes_repo, inbound_repo, optouts_repo
from broadcaster.store.db import Connection, Engine, IntegrityError, utcnow

log = logging.getLogger(__name__)

#: Most inbound messages one page of ``GET /v1/inbound`` returns.
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class Received:
    """What the endpoint answers: the stored id, whether it was new, what it asked for."""

    id: int
    new: bool
    keyword: str
    known: bool  # a workspace owns the code it was sent to
    reply_broadcast_id: int | None = None


def _apply_keyword(
    conn: Connection, ws: int, msg: Inbound, keyword: Keyword, route: str, now: Any
) -> None:
    if keyword is Keyword.OPT_OUT:
        detail = f"{msg.text.strip()[:40]!r} to {msg.to} via {route}"
        optouts_repo.add(conn, ws, [(msg.sender, optouts_repo.SOURCE_INBOUND, detail)], now)
    elif keyword is Keyword.OPT_IN:  # undoes a STOP, never an operator's or a gateway's entry
        optouts_repo.remove(conn, ws, msg.sender, sources=[optouts_repo.SOURCE_INBOUND])


def _receiving_workspace(conn: Connection, settings: Settings, route: str, to: str) -> int | None:
    """The workspace that owns code ``to`` when the code receives through ``route``, else None.

    An MO counts only on the route its code sends through (its account, else its provider, else
    the default provider), as a receipt applies only to messages of its route: a gateway account
    (or whoever holds its secret) cannot opt numbers out of, or make replies from, codes routed
    elsewhere. Another route's MO is stored like one to an unowned code (``known: false``).
    """
    key = owner_key(to)
    ws = codes_repo.code_owner(conn, key)
    if ws is None:
        return None
    for row in codes_repo.list_codes(conn, ws):
        if owner_key(row["code"]) == key:
            if (row["account"] or row["provider"] or settings.provider) == route:
                return ws
            log.info(
                "inbound to %s through route %s: the code sends through another route",
                printable(to),
                printable(route),
            )
            return None
    return None


def _store(
    engine: Engine, settings: Settings, route: str, msg: Inbound
) -> tuple[int, bool, Keyword, int | None, dict[str, Any]]:
    now = utcnow()
    with engine.begin() as conn:
        ws = _receiving_workspace(conn, settings, route, msg.to)
        prefs = inbound_repo.settings_of(conn, ws) if ws is not None else {}
        keyword = classify(msg.text, KeywordLists.from_settings(prefs.get("keywords")))
        row = {
            "route": route,
            "gateway_id": msg.id,
            "workspace_id": ws,
            "sender": msg.sender,
            "recipient": msg.to,
            "text": msg.text,
            "keyword": keyword.value,
            "reported_at": (msg.received_at or "")[:40] or None,
            "received_at": now,
        }
        iid, new = inbound_repo.insert_once(conn, row)
        if new and ws is not None:
            _apply_keyword(conn, ws, msg, keyword, route, now)
            urls = [u for u in [prefs.get("inbound_callback_url")] if isinstance(u, str) and u]
            if urls:
                payload = {"type": "inbound", **to_wire(InboundView.of({**row, "id": iid}))}
                enqueue_inbound(conn, iid, urls, payload, now, settings.callback_allow_private)
    return iid, new, keyword, ws, prefs


def receive(engine: Engine, settings: Settings, route: str, msg: Inbound) -> Received:
    """Store ``msg`` (once), apply its keyword, and confirm it (once)."""
    iid, new, keyword, ws, prefs = _store(engine, settings, route, msg)
    reply = None
    if ws is not None:
        reply = _confirm(engine, settings, ws, iid, msg, reply_text(keyword, prefs.get("replies")))
    return Received(iid, new, keyword.value, ws is not None, reply)


def _confirm(
    engine: Engine, settings: Settings, ws: int, iid: int, msg: Inbound, text: str | None
) -> int | None:
    """The confirmation broadcast of inbound ``iid``: made now, or the one made before."""
    with engine.connect() as conn:
        done = inbound_repo.reply_of(conn, iid)
        name = codes_repo.workspace_name(conn, ws)
    if done is not None or text is None or name is None:
        return done
    req = NewBroadcast(
        sender=msg.to,
        text=text,
        name=f"reply to inbound {iid}",
        workspace=name,
        start_now=True,
        reply_to_inbound=iid,
    )
    try:
        view = create_from_table(engine, settings, one_row_table(msg.sender, source="reply"), req)
    except IntegrityError:  # a concurrent delivery of the same MO made it first
        with engine.connect() as conn:
            return inbound_repo.reply_of(conn, iid)
    except BroadcasterError as exc:  # e.g. a code that cannot send: stored, not confirmed
        log.warning("inbound %s not confirmed: %s", iid, printable(str(exc)))
        return None
    return view.id


def list_inbound(
    engine: Engine, workspace: str, *, before: int | None = None, limit: int = 100
) -> list[InboundView]:
    """A workspace's inbound messages, newest first (``before``: an id, for the next page)."""
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        rows = inbound_repo.page(conn, ws, before=before, limit=max(1, min(limit, MAX_PAGE)))
    return [InboundView.of(r) for r in rows]


#: Keys a workspace's settings may hold (``PUT /v1/settings``, ``broadcaster inbound settings``).
SETTING_KEYS = ("keywords", "replies", "inbound_callback_url")


def workspace_settings(engine: Engine, workspace: str) -> dict[str, Any]:
    with engine.begin() as conn:
        return inbound_repo.settings_of(conn, codes_repo.ensure_workspace(conn, workspace))


def update_settings(engine: Engine, workspace: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` into the workspace's settings (a key set to None is removed)."""
    unknown = sorted(set(changes) - set(SETTING_KEYS))
    if unknown:
        raise InputError(
            f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTING_KEYS)}"
        )
    _check_settings(changes)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        merged = {**inbound_repo.settings_of(conn, ws), **changes}
        merged = {k: v for k, v in merged.items() if v is not None}
        inbound_repo.save_settings(conn, ws, merged, utcnow())
    return merged


#: Longest reply text a workspace may set (10 GSM segments).
MAX_REPLY_CHARS = 1530
#: Most words one keyword list may hold.
MAX_KEYWORDS = 100
REPLY_KEYS = ("stop_reply", "start_reply", "help_reply")
LIST_KEYS = ("opt_out", "opt_in", "help")


def _check_settings(changes: dict[str, Any]) -> None:
    """Refuse a setting of the wrong shape, naming it (stored settings are always usable)."""
    kw, replies, url = (changes.get(k) for k in SETTING_KEYS)
    if kw is not None:
        if not isinstance(kw, dict) or set(kw) - set(LIST_KEYS):
            raise InputError(f"keywords: an object with lists {', '.join(LIST_KEYS)}")
        for name, words in kw.items():
            ok = isinstance(words, list) and len(words) <= MAX_KEYWORDS
            if not ok or not all(isinstance(w, str) and 0 < len(w) <= 40 for w in words):
                raise InputError(f"keywords.{name}: a list of at most {MAX_KEYWORDS} words")
    if replies is not None:
        if not isinstance(replies, dict) or set(replies) - set(REPLY_KEYS):
            raise InputError(f"replies: an object with texts {', '.join(REPLY_KEYS)}")
        for name, text in replies.items():
            if text is not None and (not isinstance(text, str) or len(text) > MAX_REPLY_CHARS):
                raise InputError(
                    f"replies.{name}: a text of at most {MAX_REPLY_CHARS} characters, or null"
                )
    if url is not None and (not isinstance(url, str) or len(url) > 500):
        raise InputError("inbound_callback_url: a URL of at most 500 characters, or null")

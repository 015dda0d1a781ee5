"""Compliance keywords of inbound texts (STOP, START, HELP in several languages).

A text is a keyword only when it is the whole message, once whitespace and punctuation around
it are trimmed, compared without case and accents: "Stop!", "arrêt" and "Opt out" (separators
inside a listed word are ignored) are keywords, "stop sending me that" is not (carriers and CTIA match whole messages so a sentence is never taken
for a request). Pure: the lists come in as arguments, defaults are here.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Keyword(StrEnum):
    #: The sender asks to receive nothing more.
    OPT_OUT = "OPT_OUT"
    #: The sender asks to receive messages again.
    OPT_IN = "OPT_IN"
    #: The sender asks what this is.
    HELP = "HELP"
    #: Any other text: stored and forwarded, nothing else.
    OTHER = "OTHER"


DEFAULT_OPT_OUT = (
    *("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"),  # CTIA
    *("BAJA", "ALTO", "CANCELAR"),  # Spanish
    "ARRET",  # French (ARRÊT)
    *("PARAR", "SAIR"),  # Portuguese
    "STOPP",  # German
)
DEFAULT_OPT_IN = ("START", "UNSTOP", "YES", "ALTA")
DEFAULT_HELP = ("HELP", "AYUDA", "INFO")

#: Trimmed around the word: whitespace and ASCII and common Unicode punctuation.
_TRIM = string.whitespace + string.punctuation + "¡¿«»“”‘’…·"


#: Separators inside a keyword a subscriber may type: "OPT OUT" (the FCC's wording), "opt-out",
#: "Stop all" are OPTOUT and STOPALL. Only between letters: "STOP STOP" is still no keyword.
_INNER = re.compile(r"[\s\-_.·]+")


def fold(text: str) -> str:
    """Upper case, accents removed (NFKD, combining marks dropped), invisible format characters
    (zero-width space, BOM, soft hyphen: phones and copy-paste insert them) removed, trimmed of
    punctuation."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(
        ch
        for ch in decomposed
        if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf"
    )
    return bare.strip(_TRIM).upper()


def _joined(word: str) -> str:
    return _INNER.sub("", word)


@dataclass(frozen=True, slots=True)
class KeywordLists:
    """One workspace's keyword lists, already folded."""

    opt_out: frozenset[str]
    opt_in: frozenset[str]
    help: frozenset[str]

    @classmethod
    def of(
        cls,
        opt_out: Iterable[str] = DEFAULT_OPT_OUT,
        opt_in: Iterable[str] = DEFAULT_OPT_IN,
        help: Iterable[str] = DEFAULT_HELP,
    ) -> KeywordLists:
        return cls(
            frozenset(fold(w) for w in opt_out),
            frozenset(fold(w) for w in opt_in),
            frozenset(fold(w) for w in help),
        )

    @classmethod
    def from_settings(cls, stored: Mapping[str, object] | None) -> KeywordLists:
        """Lists from a workspace's settings (keys ``opt_out``, ``opt_in``, ``help``); a key that
        is missing keeps its default."""
        stored = stored or {}

        def pick(key: str, default: Iterable[str]) -> Iterable[str]:
            value = stored.get(key)
            return [str(w) for w in value] if isinstance(value, list) else default

        return cls.of(
            pick("opt_out", DEFAULT_OPT_OUT),
            pick("opt_in", DEFAULT_OPT_IN),
            pick("help", DEFAULT_HELP),
        )


DEFAULT_LISTS = KeywordLists.of()


def classify(text: str, lists: KeywordLists = DEFAULT_LISTS) -> Keyword:
    """What an inbound text asks for; opt-out wins if a word is in two lists (the safe side)."""
    word = fold(text)
    for candidate in (word, _joined(word)):
        if candidate in lists.opt_out:
            return Keyword.OPT_OUT
    for candidate in (word, _joined(word)):
        if candidate in lists.opt_in:
            return Keyword.OPT_IN
        if candidate in lists.help:
            return Keyword.HELP
    return Keyword.OTHER


#: Reply texts when a workspace sets none; ``None`` in a workspace's settings turns one off.
DEFAULT_REPLIES: dict[Keyword, str] = {
    Keyword.OPT_OUT: "You are unsubscribed and will receive no more messages. Reply START to resubscribe.",
    Keyword.OPT_IN: "You are subscribed again. Reply STOP to unsubscribe, HELP for help.",
    Keyword.HELP: "Reply STOP to unsubscribe, START to resubscribe.",
}
_REPLY_KEYS = {
    Keyword.OPT_OUT: "stop_reply",
    Keyword.OPT_IN: "start_reply",
    Keyword.HELP: "help_reply",
}


def reply_text(keyword: Keyword, stored: Mapping[str, object] | None) -> str | None:
    """The confirmation to send for ``keyword``, or None (no reply: OTHER, or turned off)."""
    if keyword not in DEFAULT_REPLIES:
        return None
    stored = stored or {}
    key = _REPLY_KEYS[keyword]
    if key in stored:
        value = stored[key]
        return str(value) if value else None
    return DEFAULT_REPLIES[keyword]

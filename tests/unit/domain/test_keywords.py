"""Inbound keywords: whole message, no case, no accents, per-workspace lists."""

from __future__ import annotations

import pytest

from broadcaster.domain.keywords import Keyword, KeywordLists, classify, fold, reply_text

K = Keyword


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", K.OPT_OUT),
        ("stop", K.OPT_OUT),
        ("  Stop!  ", K.OPT_OUT),
        ("StopAll", K.OPT_OUT),
        ("unsubscribe.", K.OPT_OUT),
        ("CANCEL", K.OPT_OUT),
        ("end", K.OPT_OUT),
        ("quit", K.OPT_OUT),
        ("OPTOUT", K.OPT_OUT),
        ("revoke", K.OPT_OUT),
        ("baja", K.OPT_OUT),
        ("¡BAJA!", K.OPT_OUT),
        ("alto", K.OPT_OUT),
        ("Cancelar", K.OPT_OUT),
        ("ARRÊT", K.OPT_OUT),
        ("arrêt", K.OPT_OUT),
        ("Arret", K.OPT_OUT),
        ("parar", K.OPT_OUT),
        ("SAIR", K.OPT_OUT),
        ("Stopp", K.OPT_OUT),
        ("\tSTOP\n", K.OPT_OUT),
        ("START", K.OPT_IN),
        ("unstop", K.OPT_IN),
        ("Yes", K.OPT_IN),
        ("alta", K.OPT_IN),
        ("HELP", K.HELP),
        ("ayuda?", K.HELP),
        ("info", K.HELP),
        ("stop sending me this", K.OTHER),
        ("STOP STOP", K.OTHER),
        ("please stop", K.OTHER),
        ("", K.OTHER),
        ("hello", K.OTHER),
        ("STOPPED", K.OTHER),
        # the FCC's "opt out" and other separators typed inside a listed word
        ("Opt out", K.OPT_OUT),
        ("OPT-OUT", K.OPT_OUT),
        ("opt_out", K.OPT_OUT),
        ("Stop all", K.OPT_OUT),
        ("un-stop", K.OPT_IN),
        ("stop stop", K.OTHER),
        ("opt in", K.OTHER),
        # invisible format characters a phone or a copy-paste adds
        ("\u200bSTOP", K.OPT_OUT),
        ("\ufeffBaja", K.OPT_OUT),
        ("ST\u00adOP", K.OPT_OUT),
        ("STOP\u2060", K.OPT_OUT),
        # an emoji is no punctuation: not a bare keyword
        ("STOP 🛑", K.OTHER),
    ],
)
def test_default_lists(text: str, expected: Keyword) -> None:
    assert classify(text) is expected


@pytest.mark.parametrize(
    ("stored", "text", "expected"),
    [
        ({"opt_out": ["FIN"]}, "fin", K.OPT_OUT),
        ({"opt_out": ["FIN"]}, "STOP", K.OTHER),  # a workspace list replaces the default
        ({"opt_out": ["FIN"]}, "START", K.OPT_IN),  # other lists keep their defaults
        ({"help": ["HILFE"]}, "hilfe!", K.HELP),
        ({"opt_in": ["ÉTÉ"]}, "ete", K.OPT_IN),
        (None, "STOP", K.OPT_OUT),
        ({"opt_out": "not a list"}, "STOP", K.OPT_OUT),
    ],
)
def test_workspace_lists(stored: dict[str, object] | None, text: str, expected: Keyword) -> None:
    assert classify(text, KeywordLists.from_settings(stored)) is expected


def test_opt_out_wins_over_a_word_in_two_lists() -> None:
    lists = KeywordLists.of(opt_out=["YES"], opt_in=["YES"])
    assert classify("yes", lists) is K.OPT_OUT


@pytest.mark.parametrize(("raw", "folded"), [("Arrêt", "ARRET"), (" ¿Ayuda? ", "AYUDA")])
def test_fold(raw: str, folded: str) -> None:
    assert fold(raw) == folded


@pytest.mark.parametrize(
    ("keyword", "stored", "has_reply"),
    [
        (K.OPT_OUT, None, True),
        (K.OPT_IN, None, True),
        (K.HELP, None, True),
        (K.OTHER, None, False),
        (K.HELP, {"help_reply": "Acme: call 555"}, True),
        (K.OPT_OUT, {"stop_reply": None}, False),
    ],
)
def test_reply_text(keyword: Keyword, stored: dict[str, object] | None, has_reply: bool) -> None:
    assert (reply_text(keyword, stored) is not None) is has_reply


def test_reply_text_from_workspace() -> None:
    assert reply_text(K.HELP, {"help_reply": "Acme: call 555"}) == "Acme: call 555"

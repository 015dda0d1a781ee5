"""Seed 004's signature as docs/seed-api.md publishes it: the worked example's numbers."""

from __future__ import annotations

import hashlib

from broadcaster.api.seed004_sign import seed_signature, signature_matches
from broadcaster.services.apikeys import seed_secret_of

#: docs/seed-api.md's worked example.
KEY = "bk_0123456789ab_exampleSecretDoNotUse"
PUBLIC = "pk_00112233445566778899aabbccddeeff"
TO = '{"text":"Hi","to":["+525500000001"]}'
PARAMS = ["7", "-1", "55501", "ana", "true", "Spring sale", "16-08-2027 17:49", PUBLIC]


def test_worked_example_matches_the_docs() -> None:
    secret = seed_secret_of(KEY)
    # the numbers printed in docs/seed-api.md (also computed there with openssl and sha256sum)
    assert secret == "e91d4a892637949e05d3a194b4c61a7ca0c1ec4e64a0dbca728d7f4c055a4fc0"
    to_hash = hashlib.sha256(TO.encode()).hexdigest()
    assert to_hash == "0b7fe3b4c420eb5839bca2b5a815dd90048f5ce85cdb91d01d769d796424e8db"
    expected = "3cbc201ec19cb0b172b0b7feb530219e885424b52e64c1c92e14c2e009383e2f"
    assert seed_signature(PARAMS, [to_hash], secret) == expected
    assert signature_matches(expected, PARAMS, [to_hash], secret)


def test_any_change_breaks_it() -> None:
    secret = seed_secret_of(KEY)
    good = seed_signature(PARAMS, [], secret)
    assert not signature_matches(good.upper(), PARAMS, [], secret)  # lowercase hex only
    assert not signature_matches(good, [*PARAMS[:-1], PUBLIC[:-1] + "0"], [], secret)
    assert not signature_matches(good, PARAMS, [hashlib.sha256(b"x").hexdigest()], secret)
    assert not signature_matches(good, PARAMS, [], seed_secret_of(KEY + "x"))
    assert not signature_matches("é" * 64, PARAMS, [], secret)
    assert not signature_matches(good[:-1], PARAMS, [], secret)


def test_worked_example_with_the_replay_guard_matches_the_docs() -> None:
    secret = seed_secret_of(KEY)
    to_hash = hashlib.sha256(TO.encode()).hexdigest()
    guard = ("1818783000", "n0nce-2027-08-16-a")
    expected = "42ebe5b40e049d8c2f1ad244b77d195d53026e35825eb3f4b467a9a162d4b7f4"
    assert seed_signature(PARAMS, [to_hash], secret, guard) == expected
    # the guard's parts come after the POST digests, before the secret, nothing between
    text = "".join(PARAMS) + to_hash + "1818783000" + "n0nce-2027-08-16-a" + secret
    assert hashlib.sha256(text.encode()).hexdigest() == expected
    assert signature_matches(expected, PARAMS, [to_hash], secret, guard)
    assert not signature_matches(expected, PARAMS, [to_hash], secret)
    assert not signature_matches(expected, PARAMS, [to_hash], secret, (guard[0], "n0nce-other"))

"""Bounded rendering: placeholders per template, a value's length, the text that is stored.

Issue 11 item 2: ``{0}`` x 3,333 with long values built and stored every message in full.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

from broadcaster.constants import MAX_PARAM_CHARS, MAX_SENDABLE_CHARS, MAX_TEMPLATE_PLACEHOLDERS
from broadcaster.domain.phones import PhoneNormalizer
from broadcaster.domain.segments import measure, measure_truncated
from broadcaster.domain.states import MessageStatus
from broadcaster.domain.templates import MissingValue, parse_template
from broadcaster.errors import TemplateError
from broadcaster.ingest import RecipientRow
from broadcaster.services.recipients import Draft, RowError, build_drafts

# (template, params, max_chars, text, characters, complete)
BOUNDED = [
    ("Hola {0}", ["Ana"], 100, "Hola Ana", 8, True),
    ("Hola {0}", ["Ana"], 8, "Hola Ana", 8, True),
    ("Hola {0}", ["Ana"], 7, "Hola An", 8, False),
    ("Hola {0}", ["Ana"], 3, "Hol", 8, False),
    ("{0}{0}{0}", ["abc"], 4, "abca", 9, False),
    ("{0}-{1}", ["", "x"], 10, "-x", 2, True),
    ("{0}", ["x" * 60_000], 1530, "x" * 1530, 60_000, False),
    ("{0}" * 100, ["y" * 1_000], 1530, "y" * 1530, 100_000, False),
    ("é{0}😀", ["ü"], 2, "éü", 3, False),
]


@pytest.mark.parametrize(("text", "params", "max_chars", "out", "characters", "complete"), BOUNDED)
def test_render_bounded(
    text: str, params: list[str], max_chars: int, out: str, characters: int, complete: bool
) -> None:
    rendered = parse_template(text).render_bounded(params, max_chars=max_chars)
    assert (rendered.text, rendered.characters, rendered.complete) == (out, characters, complete)
    full = parse_template(text).render(params)
    assert full.startswith(rendered.text) and len(full) == characters


def test_render_bounded_names_the_missing_value() -> None:
    with pytest.raises(MissingValue, match=r"\{1\}"):
        parse_template("{0} {1}").render_bounded(["a"], max_chars=10)


def test_render_bounded_does_not_build_the_whole_text() -> None:
    # Given the 60,000-character cell under 100 placeholders (a 6,000,000-char text)
    template = parse_template("{0}" * MAX_TEMPLATE_PLACEHOLDERS)
    value = "z" * 60_000
    # When it is rendered with the stored bound
    tracemalloc.start()
    rendered = template.render_bounded([value], max_chars=MAX_SENDABLE_CHARS)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # Then only the bound was built, and the length is still known
    assert len(rendered.text) == MAX_SENDABLE_CHARS and rendered.characters == 6_000_000
    assert peak < 100_000, peak


# (count of placeholders, accepted)
PLACEHOLDER_COUNTS = [
    (1, True),
    (MAX_TEMPLATE_PLACEHOLDERS, True),
    (MAX_TEMPLATE_PLACEHOLDERS + 1, False),
    (3_333, False),
]


@pytest.mark.parametrize(("count", "accepted"), PLACEHOLDER_COUNTS)
@pytest.mark.parametrize("token", ["{0}", "<0>", "{name}"])
def test_placeholders_per_template(count: int, accepted: bool, token: str) -> None:
    text = "Hi " + token * count
    if accepted:
        assert parse_template(text).source == text
        return
    with pytest.raises(TemplateError) as err:
        parse_template(text)
    assert str(err.value) == (
        f"template has {count:,} placeholders; the limit is {MAX_TEMPLATE_PLACEHOLDERS}"
    )


def test_escaped_braces_are_not_placeholders() -> None:
    assert parse_template("{{0}}" * 500).parts == ("{0}" * 500,)


# (prefix, characters, segments, exceeded)
TRUNCATED = [
    ("a" * 1530, 1530, 10, False),
    ("a" * 1530, 1531, 11, True),
    ("a" * 1530, 60_000, 393, True),
    ("é" * 10, 10, 1, False),
    ("ж" * 1530, 1531, 23, True),
    ("ж" * 5, 70, 1, False),
    ("ж" * 5, 71, 2, False),
]


@pytest.mark.parametrize(("prefix", "characters", "segments", "exceeded"), TRUNCATED)
def test_measure_truncated_is_a_lower_bound(
    prefix: str, characters: int, segments: int, exceeded: bool
) -> None:
    info = measure_truncated(prefix, characters)
    assert (info.segments, info.exceeded, info.characters) == (segments, exceeded, characters)
    whole = measure(prefix + prefix[-1] * (characters - len(prefix)))
    assert info.segments <= whole.segments and info.exceeded == whole.exceeded


def _drafts(text: str, *params: str) -> list[Draft | RowError]:
    rows = [RecipientRow(1, "+525500000001", params)]
    return list(build_drafts(rows, parse_template(text), PhoneNormalizer(None), None))


# (template, value length, outcome: "QUEUE", "SEGMENTS_EXCEEDED" or a row error's reason)
ROWS = [
    ("Hi {0}", 10, MessageStatus.QUEUE.value),
    ("Hi {0}", 1_527, MessageStatus.QUEUE.value),  # 1,530 characters: 10 segments
    ("Hi {0}", 1_528, MessageStatus.SEGMENTS_EXCEEDED.value),
    ("{0} {0}", 1_000, MessageStatus.SEGMENTS_EXCEEDED.value),
    ("{0}" * 100, 1_000, MessageStatus.SEGMENTS_EXCEEDED.value),
    ("Hi {0}", MAX_PARAM_CHARS, MessageStatus.SEGMENTS_EXCEEDED.value),
    ("Hi {0}", MAX_PARAM_CHARS + 1, "value of {0} has 1,601 characters; the limit is 1,600"),
    ("Hi {0}", 60_000, "value of {0} has 60,000 characters; the limit is 1,600"),
]


@pytest.mark.parametrize(("text", "length", "outcome"), ROWS)
def test_stored_text_is_bounded(text: str, length: int, outcome: str) -> None:
    (item,) = _drafts(text, "v" * length)
    if isinstance(item, RowError):
        assert item.reason == outcome
        return
    assert item.status.value == outcome
    assert len(item.text) <= MAX_SENDABLE_CHARS
    if item.status == MessageStatus.SEGMENTS_EXCEEDED:
        assert item.segments > 10


def test_a_long_unused_column_is_not_refused() -> None:
    (item,) = _drafts("Hi {0}", "Ana", "x" * 60_000)
    assert isinstance(item, Draft) and item.text == "Hi Ana"


def test_bounded_drafts_are_fast() -> None:
    # 1,000 rows of the attack's shape: bounded work per row, not 100,000 characters each
    template = parse_template("{0}" * 100)
    rows = [RecipientRow(i + 1, f"+5255{i:08d}", ("q" * 1_000,)) for i in range(1_000)]
    started = time.perf_counter()
    items = list(build_drafts(rows, template, PhoneNormalizer(None), None))
    assert all(isinstance(i, Draft) and len(i.text) == MAX_SENDABLE_CHARS for i in items)
    assert time.perf_counter() - started < 5

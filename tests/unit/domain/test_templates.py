"""Templates: placeholder syntax, rendering, missing values, parse errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from broadcaster.domain.templates import MissingValue, parse_template
from broadcaster.errors import TemplateError

# (template, params, named, rendered)
RENDERS: list[tuple[str, Sequence[str], Mapping[str, str] | None, str]] = [
    ("Hola {0}", ["Ana"], None, "Hola Ana"),
    ("Hola <0>", ["Ana"], None, "Hola Ana"),
    ("{0}{1}<0>", ["a", "b"], None, "aba"),
    ("{01}", ["a", "b"], None, "b"),
    ("{2}", ["a", "b", "c", "d"], None, "c"),
    ("Hola {first_name}", [], {"first_name": "Ana"}, "Hola Ana"),
    ("Hola {First_Name}", [], {"first_name": "Ana"}, "Hola Ana"),  # names ignore case
    ("Hola {first_name}", [], {"FIRST_NAME": "Ana"}, "Hola Ana"),
    ("Hola {first_name}", [], {"First_Name": "Ana"}, "Hola Ana"),
    ("Tel {teléfono}", [], {"teléfono": "55"}, "Tel 55"),
    ("{0} owes {amount}", ["Ana"], {"amount": "10"}, "Ana owes 10"),
    # literal braces and angle brackets
    ("{{0}} is {0}", ["x"], None, "{0} is x"),
    ("{{}}", [], None, "{}"),
    ("{{{0}}}", ["x"], None, "{x}"),
    ("ends with {{", [], None, "ends with {"),
    ("a < b and <b> and <0>", ["x"], None, "a < b and <b> and x"),
    ("<>", [], None, "<>"),
    ("<0", ["x"], None, "<0"),
    ("0>", ["x"], None, "0>"),
    ("<<0>>", ["x"], None, "<x>"),
    ("< 0>", ["x"], None, "< 0>"),
    ("<\u0663>", ["x"], None, "<\u0663>"),  # only ASCII digits make a placeholder
    # values are inserted as they are, never expanded again
    ("value {0}", ["{1}", "no"], None, "value {1}"),
    ("value {0}", ["<1>", "no"], None, "value <1>"),
    ("value {0}", ["{name}"], {"name": "no"}, "value {name}"),
    ("value {0}", ["{{"], None, "value {{"),
    # an empty string is a value
    ("empty [{0}]", [""], None, "empty []"),
    ("empty [{name}]", [], {"name": ""}, "empty []"),
    # text without placeholders
    ("no placeholders", [], None, "no placeholders"),
    ("€ {0} \U0001f600", ["ñ"], None, "€ ñ \U0001f600"),
]


@pytest.mark.parametrize(("text", "params", "named", "rendered"), RENDERS)
def test_render(
    text: str, params: Sequence[str], named: Mapping[str, str] | None, rendered: str
) -> None:
    template = parse_template(text)
    assert template.render(params, named) == rendered
    assert template.missing(params, named) == []
    assert template.source == text


# (template, params, named, placeholders the row cannot fill)
MISSING: list[tuple[str, Sequence[Any], Mapping[str, Any] | None, list[str]]] = [
    ("Hola {0} {1}", ["Ana"], None, ["{1}"]),
    ("Hola <1> {first_name}", ["Ana"], None, ["{1}", "{first_name}"]),
    ("Hola {first_name} <1>", ["Ana"], {}, ["{first_name}", "{1}"]),
    ("{1} <1> {1}", [], None, ["{1}"]),  # once, in the brace spelling
    ("{a} {A} {a}", [], {}, ["{a}"]),  # once, as first written
    ("{name}", ["Ana"], {"other": "x"}, ["{name}"]),
    ("{0}", [None], None, ["{0}"]),  # None is no value
    ("{name}", [], {"name": None}, ["{name}"]),
    ("{0}{5}", ["a", "b"], None, ["{5}"]),
]


@pytest.mark.parametrize(("text", "params", "named", "missing"), MISSING)
def test_missing_values(
    text: str, params: Sequence[Any], named: Mapping[str, Any] | None, missing: list[str]
) -> None:
    template = parse_template(text)
    assert template.missing(params, named) == missing
    with pytest.raises(MissingValue) as raised:
        template.render(params, named)
    assert raised.value.placeholder == missing[0]  # the first one met
    assert isinstance(raised.value, ValueError)


# (template, words the error must contain)
ERRORS: list[tuple[str, str]] = [
    ("", "empty"),
    ("   \n", "empty"),
    ("{", "column 1: unclosed {"),
    ("a { b", "column 3: unclosed {"),
    ("Hola {0", "column 6: unclosed {"),
    ("{a{b}}", "column 1: unclosed {"),
    ("{{{", "column 3: unclosed {"),
    ("}", "column 1: lone }"),
    ("a } b", "column 3: lone }"),
    ("Hola 0}", "column 7: lone }"),
    ("}}}", "column 3: lone }"),
    ("{}", "{} is not a placeholder"),
    ("{first name}", "{first name} is not a placeholder"),
    ("{ 0 }", "{ 0 } is not a placeholder"),
    ("{-1}", "{-1} is not a placeholder"),
    ("{1st}", "{1st} is not a placeholder"),
    ("ok {0} then {a.b}", "column 13: {a.b} is not a placeholder"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_template(text)


# (template, positional, names)
INVENTORY: list[tuple[str, set[int], set[str]]] = [
    ("no placeholders", set(), set()),
    ("{0} <0> {3}", {0, 3}, set()),
    ("{First_Name} {first_name} {city} <1>", {1}, {"First_Name", "city"}),
    ("{{0}} <b>", set(), set()),
]


@pytest.mark.parametrize(("text", "positional", "names"), INVENTORY)
def test_what_a_template_needs(text: str, positional: set[int], names: set[str]) -> None:
    template = parse_template(text)
    assert template.positional == positional
    assert template.names == names


def test_parts_are_merged_literals_and_placeholders() -> None:
    template = parse_template("{{a}} {0}{0} b")
    assert [p if isinstance(p, str) else p.label for p in template.parts] == [
        "{a} ",
        "{0}",
        "{0}",
        " b",
    ]

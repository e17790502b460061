"""Query templating: every variable filled, values escaped for the string they land in, unknowns refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bellwether.analysis.templating import TemplateError, Variables, escape_regex, escape_string, render


def variables(**changes: str) -> Variables:
    base = {"name": "llama", "namespace": "ml", "region": "us-east", "revision": "5d1e88f0", "role": "canary"}
    base.update(changes)
    return Variables(interval_seconds=30, **base)


def unquote(literal: str) -> str:
    """What PromQL (like Go's strconv.Unquote) reads from the inside of a double-quoted string."""
    out, i = [], 0
    table = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
    while i < len(literal):
        if literal[i] == "\\":
            out.append(table[literal[i + 1]])
            i += 2
        else:
            assert literal[i] != '"', f"unescaped quote in {literal!r}"
            out.append(literal[i])
            i += 1
    return "".join(out)


def test_every_variable_is_filled_and_interval_becomes_a_promql_range() -> None:
    query = 'sum(rate(x{namespace="{{namespace}}",deployment="{{ name }}",region="{{region}}",revision="{{revision}}",role="{{role}}"}[{{interval}}]))'
    assert render(query, variables()) == (
        'sum(rate(x{namespace="ml",deployment="llama",region="us-east",revision="5d1e88f0",role="canary"}[30s]))'
    )
    assert render("rate(x[{{interval}}])", Variables("a", "b", "c", "d", "stable", 90)) == "rate(x[1m30s])"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ('x{namespace="{{namespcae}}"}', ["{{namespcae}}", "allowed"]),
        ('x{namespace="{{"}', ["starts no template variable"]),
        ('x{a="{{ region }}", b="{{Region}}"}', ["{{Region}}"]),
    ],
)
def test_an_unknown_or_broken_placeholder_is_an_error_naming_it(query: str, words: list[str]) -> None:
    with pytest.raises(TemplateError) as error:
        render(query, variables())
    assert all(w in str(error.value) for w in words), str(error.value)


def test_a_value_with_quotes_and_backslashes_cannot_break_out_of_its_matcher() -> None:
    hostile = 'ml"} or vector(1) or x{a="\\'
    rendered = render('up{namespace="{{namespace}}"}', variables(namespace=hostile))
    inside = rendered[len('up{namespace="') : -len('"}')]
    assert unquote(inside) == hostile


def test_in_a_regex_matcher_a_value_matches_only_itself() -> None:
    rendered = render('up{deployment=~"{{name}}", region!~"{{region}}"}', variables(name="a.b+c", region="x|y"))
    assert rendered == 'up{deployment=~"a\\\\.b\\\\+c", region!~"x\\\\|y"}'
    assert unquote(rendered.split('"')[1]) == escape_regex("a.b+c")


def test_single_quoted_strings_escape_their_own_quote() -> None:
    rendered = render("up{namespace='{{namespace}}'}", variables(namespace="it's"))
    assert rendered == "up{namespace='it\\'s'}"


def test_a_value_outside_any_string_must_be_a_plain_word() -> None:
    assert render("{{revision}}_total", variables()) == "5d1e88f0_total"
    with pytest.raises(TemplateError, match="outside a quoted string"):
        render("{{namespace}}", variables(namespace="a) or vector(1"))


def test_an_escaped_quote_in_the_query_itself_does_not_end_the_string() -> None:
    rendered = render('up{a="x\\"y", namespace="{{namespace}}"}', variables(namespace='q"'))
    assert rendered == 'up{a="x\\"y", namespace="q\\""}'


@given(st.text(max_size=40))
def test_escaping_round_trips_any_text(value: str) -> None:
    assert unquote(escape_string(value)) == value

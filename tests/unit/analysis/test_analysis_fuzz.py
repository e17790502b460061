"""Query templating under hostile input: any query text and any values give a query or a TemplateError,
and a value can never add query text outside the string literal it was put in.

The check reads the rendered query the way PromQL's lexer does (code, string literals with their
escapes, `#` comments) and compares it with the template read the same way: the same pieces in the same
order, code and comments unchanged, and each string literal, once un-escaped, holding exactly the
template's text with the values in place (in a regex matcher, the values as patterns that match only
themselves).
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bellwether.analysis.templating import TemplateError, Variables, render
from bellwether.api.units import format_duration

NAMES = ("name", "namespace", "region", "revision", "role")
RE2_SPECIAL = set("\\.+*?()|[]{}^$")
PLAIN_WORD = re.compile(r"[A-Za-z0-9_.:-]+")

hostile_text = st.text(
    alphabet=st.sampled_from([*"\"'`\\\n\r\t#{}()[]|.*+?^$ ,=~!", "a", "b", "1", "é", "\u2028", "\x00"])
    | st.characters(),
    max_size=16,
)
variables = st.builds(
    Variables,
    name=hostile_text,
    namespace=hostile_text,
    region=hostile_text,
    revision=hostile_text,
    role=hostile_text,
    interval_seconds=st.floats(min_value=0, max_value=10 * 24 * 3600, allow_nan=False),
)
fast = settings(max_examples=400, deadline=None)


# -- reading a query the way PromQL's lexer does ---------------------------------------------------------


class Unreadable(AssertionError):
    pass


def lex(query: str) -> list[tuple[str, str]]:
    """(kind, text) pieces: "code", "comment", or a string literal kind `"` `'` `` ` `` with its decoded text."""
    out: list[tuple[str, str]] = []
    code: list[str] = []
    i = 0

    def flush() -> None:
        if code:
            out.append(("code", "".join(code)))
            code.clear()

    while i < len(query):
        ch = query[i]
        if ch in "\"'`":
            flush()
            text, i = _string(query, i)
            out.append((ch, text))
        elif ch == "#":
            flush()
            end = query.find("\n", i)
            end = len(query) if end < 0 else end
            out.append(("comment", query[i:end]))
            i = end
        else:
            code.append(ch)
            i += 1
    flush()
    return out


def _string(query: str, start: int) -> tuple[str, int]:
    """The decoded text of the string literal opening at `start`, and the index after it. As in Go, only
    the literal's own quote may be escaped, and a raw newline ends nothing: it is an error."""
    quote = query[start]
    escapes = {"\\": "\\", quote: quote, "n": "\n", "r": "\r", "t": "\t"}
    out: list[str] = []
    i = start + 1
    while i < len(query):
        ch = query[i]
        if ch == quote:
            return "".join(out), i + 1
        if quote != "`" and ch == "\n":
            raise Unreadable(f"raw newline in a {quote} string: {query!r}")
        if quote != "`" and ch == "\\":
            if i + 1 >= len(query) or query[i + 1] not in escapes:
                raise Unreadable(f"unknown escape in {query!r} at {i}")
            out.append(escapes[query[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise Unreadable(f"unterminated {quote} string in {query!r}")


def unregex(pattern: str) -> str:
    """The text an RE2 pattern of escaped literals matches; fails if any special character is unescaped."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            assert i + 1 < len(pattern) and pattern[i + 1] in RE2_SPECIAL, f"odd escape in {pattern!r}"
            out.append(pattern[i + 1])
            i += 2
            continue
        assert pattern[i] not in RE2_SPECIAL, f"unescaped {pattern[i]!r} in regex {pattern!r}"
        out.append(pattern[i])
        i += 1
    return "".join(out)


def fill(text: str, values: Variables) -> str:
    """`text` with every placeholder replaced by its raw value."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.value(m.group(1)), text)


# -- templates that are valid PromQL, with placeholders in every kind of place ----------------------------

plain = st.text(alphabet="abcxyz_019", max_size=5)
literal_text = st.text(alphabet="abcxyz_019 .:-+*()[]|^$?/", max_size=5)  # no quote, backslash or newline


def placeholder(variable: str) -> st.SearchStrategy[str]:
    return st.sampled_from(["{{%s}}", "{{ %s }}"]).map(lambda form: form % variable)


@st.composite
def literal(draw: st.DrawFn, quote: str, regex: bool) -> str:
    parts = draw(st.lists(st.sampled_from(NAMES).flatmap(placeholder) | (plain if regex else literal_text), max_size=4))
    return quote + "".join(parts) + quote


@st.composite
def matcher(draw: st.DrawFn) -> str:
    op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
    quote = draw(st.sampled_from(['"', "'", "`"]))
    space = draw(st.sampled_from(["", " "]))
    return draw(plain.filter(bool)) + space + op + space + draw(literal(quote, regex="~" in op))


@st.composite
def comment(draw: st.DrawFn) -> str:
    words = st.text(alphabet="ab \"'`", max_size=6) | st.sampled_from(NAMES).flatmap(placeholder)
    return "# " + "".join(draw(st.lists(words, max_size=4))) + "\n"


@st.composite
def templates(draw: st.DrawFn) -> str:
    matchers = ",".join(draw(st.lists(matcher(), min_size=1, max_size=4)))
    metric = draw(st.sampled_from(["http_requests_total", "{{revision}}_total", "x_{{ role }}"]))
    body = f"sum(rate({metric}{{{matchers}}}[{{{{interval}}}}]))"
    extra = draw(st.sampled_from(["", ' / on() group_left label_replace(vector(1), "a", "{{name}}", "b", "")']))
    before, after = draw(st.lists(comment(), max_size=2)), draw(st.lists(comment(), max_size=1))
    return "".join(before) + body + extra + ("\n" + "".join(after) if after else "")


# -- properties --------------------------------------------------------------------------------------------


@fast
@given(
    st.text(max_size=80) | st.sampled_from(['{{name}}"', "{{ interval}}", "{{{{name}}}}", "'{{role}}", "`{{x}}"]),
    variables,
)
def test_any_query_and_any_values_give_a_query_or_a_template_error(query: str, values: Variables) -> None:
    try:
        rendered = render(query, values)
    except TemplateError as e:
        assert str(e) and "\n" not in str(e).split(": ", 1)[0]
    else:
        assert isinstance(rendered, str)


@fast
@given(templates(), variables)
def test_a_value_never_adds_query_text_outside_its_string_literal(template: str, values: Variables) -> None:
    try:
        rendered = render(template, values)
    except TemplateError as e:
        # Only two refusals are allowed: a non-word value outside strings, a backtick in a raw string.
        assert "outside a quoted string" in str(e) or "backtick" in str(e), str(e)
        return
    want, got = lex(template), lex(rendered)
    assert [kind for kind, _ in got] == [kind for kind, _ in want], f"{template!r} -> {rendered!r}"
    previous = ""
    for (kind, expected), (_, text) in zip(want, got, strict=True):
        if kind == "comment":
            assert text == expected  # Prometheus ignores comments: nothing is filled in there
        elif kind == "code":
            assert text == fill(expected, values)
            for bare in re.findall(r"\{\{\s*(\w+)\s*\}\}", expected):
                assert bare == "interval" or PLAIN_WORD.fullmatch(values.value(bare))
        elif previous.rstrip().endswith(("=~", "!~")):
            assert unregex(text) == fill(expected, values)
        else:
            assert text == fill(expected, values)
        previous = text if kind == "code" else ""


def test_the_interval_is_always_a_promql_duration() -> None:
    for seconds in (0, 0.4, 1, 59.6, 90, 3600, 86400 * 3 + 1):
        assert re.fullmatch(r"(\d+h)?(\d+m)?(\d+s)?", format_duration(max(1.0, seconds)))


def test_a_quote_in_a_comment_does_not_hide_a_value_from_escaping() -> None:
    template = '# the canary\'s error rate\nsum(rate(x{revision="{{revision}}"}[5m]))'
    hostile = 'x"} or vector(1) or x{a="'
    values = Variables("n", "ns", "r", hostile, "canary", 30)
    rendered = render(template, values)
    assert [kind for kind, _ in lex(rendered)] == ["comment", "code", '"', "code"]
    assert lex(rendered)[2] == ('"', hostile)

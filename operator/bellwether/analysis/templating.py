"""Strict PromQL templating: `{{variable}}` placeholders filled with escaped values.

Values come from object names the user controls, so they are escaped for where they land: inside a
double-quoted PromQL string a `"` or `\\` would otherwise end the label matcher and let the rest of
the value become query text; inside a regex matcher (`=~"..."`, `!~"..."`) they are also regex-escaped,
so a name matches itself and nothing else. `#` comments are left as written (Prometheus ignores them),
so an apostrophe in a comment cannot flip what counts as inside a string. An unknown variable is an
error here as it already is at `kubectl apply` time (the CRD's CEL rule and the model use the same list).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from bellwether.api.metrics import ALLOWED_VARIABLES, TEMPLATE_VARIABLES, query_problem
from bellwether.api.units import format_duration

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


class TemplateError(ValueError):
    """A query that cannot be rendered; the message names the placeholder and what is allowed."""


@dataclass(frozen=True)
class Variables:
    name: str
    namespace: str
    region: str
    revision: str
    role: str
    interval_seconds: float

    def value(self, variable: str) -> str:
        if variable == "interval":
            return format_duration(max(1.0, self.interval_seconds))
        if variable not in TEMPLATE_VARIABLES:
            raise TemplateError(f"{{{{{variable}}}}} is not a template variable; allowed: {ALLOWED_VARIABLES}")
        text: str = getattr(self, variable)
        return text


def escape_string(value: str, quote: str = '"') -> str:
    """The inside of a PromQL string quoted with `quote` that reads back as exactly `value`.

    Like Go, PromQL accepts only the string's own quote character as an escaped quote.
    """
    return (
        value.replace("\\", "\\\\")
        .replace(quote, "\\" + quote)
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )


def escape_regex(value: str) -> str:
    """`value` as an RE2 pattern matching only itself (PromQL anchors regex matchers on both ends)."""
    return _RE2_SPECIAL.sub(r"\\\1", value)


@dataclass(frozen=True)
class _Slot:
    """A placeholder, and where it stands: outside any string (`quote` None) or inside one."""

    variable: str
    quote: str | None
    regex: bool  # inside a regex matcher's pattern


def render(query: str, variables: Variables) -> str:
    """The query with every placeholder replaced; placeholders inside strings are escaped for that string."""
    out: list[str] = []
    for part in _parts(query):
        if isinstance(part, str):
            out.append(part)
            continue
        variable, raw = part.variable, variables.value(part.variable)
        if part.quote is None:
            out.append(raw if variable == "interval" else _bare(raw, variable))
        elif part.quote == "`":
            out.append(escape_regex(_raw_string(raw, variable)) if part.regex else _raw_string(raw, variable))
        else:
            out.append(escape_string(escape_regex(raw) if part.regex else raw, part.quote))
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def _parts(query: str) -> tuple[str | _Slot, ...]:
    """The query as literal text and placeholders. Kept per query: a handful of queries are rendered
    for every window of every ModelDeployment, and reading one character by character costs more than
    filling it in."""
    problem = query_problem(query)
    if problem:
        raise TemplateError(f"query {problem}")
    parts: list[str | _Slot] = []
    text: list[str] = []  # literal text since the last placeholder
    i = 0
    quote: str | None = None  # the quote character of the string literal we are in, if any
    regex = False  # that string is a regex matcher's pattern
    while i < len(query):
        placeholder = _PLACEHOLDER.match(query, i)
        if placeholder:
            parts += ["".join(text), _Slot(placeholder.group(1), quote, regex)]
            text = []
            i = placeholder.end()
            continue
        ch = query[i]
        if quote is None and ch == "#":
            # A comment runs to the end of the line. Prometheus ignores it, so it is copied as written
            # (placeholders too): a quote in it must not open a string, nor a value's newline end it.
            end = query.find("\n", i)
            end = len(query) if end < 0 else end
            text.append(query[i:end])
            i = end
            continue
        if quote is None and ch in "\"'`":
            # A value before the quote is a plain word or a duration: never the end of `=~` or `!~`.
            quote, regex = ch, "".join(text).rstrip().endswith(("=~", "!~"))
        elif quote is not None and ch == "\\" and quote != "`":
            text.append(query[i : i + 2])  # an escape inside a string, e.g. \" does not end it
            i += 2
            continue
        elif ch == quote:
            quote, regex = None, False
        text.append(ch)
        i += 1
    parts.append("".join(text))
    return tuple(p for p in parts if p != "")


def _bare(value: str, variable: str) -> str:
    """A value outside any string: only safe if it cannot change the query's structure."""
    if re.fullmatch(r"[A-Za-z0-9_.:-]+", value) is None:
        raise TemplateError(
            f"{{{{{variable}}}}} is used outside a quoted string and its value {value!r} is not a plain word; "
            f'put it in a label matcher, e.g. revision="{{{{{variable}}}}}"'
        )
    return value


def _raw_string(value: str, variable: str) -> str:
    """Backtick strings have no escapes, so a value with a backtick cannot go in one."""
    if "`" in value:
        raise TemplateError(f"{{{{{variable}}}}} holds a backtick and cannot go in a `raw string`; use double quotes")
    return value

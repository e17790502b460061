"""How often Prometheus scrapes what a query selects, and whether the query's ranges can see it.

`rate(x[30s])` needs two samples inside its 30 s window. With a 30 s scrape interval it often has one
and returns nothing, and `bellwether check` used to blame the labels. Prometheus says how often it
scrapes each target (`/api/v1/targets`, `scrapeInterval`); a range shorter than about four scrape
intervals (Grafana's rule for `$__rate_interval`) misses samples whenever a scrape is late or fails.

Which targets a query reads is known only as far as target labels go: a matcher on a label the
target carries (job, namespace, pod, or what relabelling put there) must match it; matchers on labels
the target lacks (the series' own labels) say nothing, so they keep the target. The slowest of the
targets kept sets the interval, and the message says how many there were.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import promql_parser

from bellwether.api.units import format_duration

SCRAPES_PER_RANGE = 4


@dataclass(frozen=True)
class Target:
    labels: dict[str, str]
    interval: float  # seconds between scrapes


@dataclass(frozen=True)
class RangeCheck:
    range_seconds: float
    scrape_seconds: float
    targets: int  # how many active targets the range's selector may read
    matched: bool  # False: no target's labels matched, so every target was taken

    @property
    def too_short(self) -> bool:
        return self.range_seconds < SCRAPES_PER_RANGE * self.scrape_seconds


def targets_of(data: Any) -> list[Target]:
    """The active targets of a `/api/v1/targets` answer's `data`, with their scrape intervals."""
    found = []
    for target in (data or {}).get("activeTargets") or []:
        raw = target.get("scrapeInterval")
        if not isinstance(raw, str) or not raw:
            continue
        try:
            seconds = promql_parser.parse_duration(raw).total_seconds()
        except ValueError:
            continue
        labels = {k: v for k, v in (target.get("labels") or {}).items() if isinstance(v, str)}
        found.append(Target(labels, seconds))
    return found


def _matches(matcher: promql_parser.Matcher, value: str) -> bool:
    op = matcher.op
    if op == promql_parser.MatchOp.Equal:
        return value == matcher.value
    if op == promql_parser.MatchOp.NotEqual:
        return value != matcher.value
    try:
        found = re.fullmatch(matcher.value, value) is not None
    except re.error:
        return True  # an RE2 pattern Python cannot read: do not rule the target out on it
    return found if op == promql_parser.MatchOp.Re else not found


def may_read(selector: promql_parser.VectorSelector, target: Target) -> bool:
    """Whether the selector may select series of the target, judged on the labels the target has."""
    return all(_matches(m, target.labels[m.name]) for m in selector.matchers.matchers if m.name in target.labels)


def ranges(query: str) -> list[tuple[promql_parser.VectorSelector, float]]:
    """Every range selector of a (rendered) query: its vector selector and its range in seconds; none
    for a query that does not parse (Prometheus will say what is wrong with it)."""
    found: list[tuple[promql_parser.VectorSelector, float]] = []

    def visit(expr: promql_parser.Expr) -> bool:
        if isinstance(expr, promql_parser.MatrixSelector):
            found.append((expr.vector_selector, expr.range.total_seconds()))
        return True

    try:
        promql_parser.walk(promql_parser.parse(query), visit)
    except ValueError:
        return []
    return found


def check_ranges(query: str, targets: Sequence[Target]) -> list[RangeCheck]:
    """For each range of the query, the scrape interval of the slowest target it may read."""
    if not targets:
        return []
    out = []
    for selector, seconds in ranges(query):
        kept = [t for t in targets if may_read(selector, t)]
        pool = kept or list(targets)
        out.append(RangeCheck(seconds, max(t.interval for t in pool), len(pool), bool(kept)))
    return out


def warning(checks: Sequence[RangeCheck], interval_seconds: float) -> str | None:
    """One line on the shortest range that is too short, naming `{{interval}}` when it is that."""
    short = sorted((c for c in checks if c.too_short), key=lambda c: c.range_seconds)
    if not short:
        return None
    c = short[0]
    what = "{{interval}}" if abs(c.range_seconds - interval_seconds) < 1e-6 else "the range"
    which = (
        f"the slowest of the {c.targets} target(s) the query's labels match"
        if c.matched
        else f"the slowest of all {c.targets} active targets: no target's labels match the query"
    )
    need = format_duration(SCRAPES_PER_RANGE * c.scrape_seconds)
    return (
        f"{what} is {format_duration(c.range_seconds)}, shorter than {SCRAPES_PER_RANGE} scrape intervals of "
        f"{format_duration(c.scrape_seconds)} ({which}): rate() over it sees one or two samples and often returns "
        f"nothing; make spec.analysis.interval at least {need}, or scrape more often"
    )
